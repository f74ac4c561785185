"""The ``local`` target: the model served on this machine.

Two runtimes:

* ``container``: the model's image (built with :func:`mlem_lib.build.docker.build_docker`) runs
  with ``network_mode="host"`` and ``PORT``/``MLEM_HOST`` in its environment
  (engines started with ``--bridge=none`` cannot publish ports).
* ``process``: our server (``python -m mlem_lib.serve.container``) as a
  detached background process serving a private copy of the model; its PID,
  log file and model copies live in ``<name>.run/`` next to the state file.

``runtime: auto`` picks the container runtime when a Docker engine answers.
An update stops the old server (it holds the port), starts the new one and
smoke-tests it; when that fails the old one is started again.

Example:
    >>> deploy("deployments/local.yaml", "models/rf").url  # doctest: +SKIP
    'http://127.0.0.1:8080'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from mlem_lib.deploy.base import ModelSource, Target
from mlem_lib.deploy.declaration import BaseDeclaration
from mlem_lib.deploy.smoke import check_http, wait_healthy
from mlem_lib.deploy.state import DeploymentState, DeploymentStatus
from mlem_lib.errors import DeploymentError, DockerUnavailableError, RolledBackError
from mlem_lib.meta import ModelMeta
from mlem_lib.processes import pid_alive, stop_pid
from mlem_lib.processes import start_time as _start_time
from mlem_lib.serve.settings import server_environment

LABEL = "mlem.deployment"


class LocalDeclaration(BaseDeclaration):
    """The model served on this machine, in a container or as a background process."""

    type: Literal["local"] = "local"
    runtime: Literal["auto", "process", "container"] = Field(
        "auto", description="container when a Docker engine answers (auto), else a process")
    host: str = "127.0.0.1"
    port: int = Field(8080, gt=0, lt=65536)
    image: str | None = Field(None, description="image name (default: mlem-<name>:<hash>)")
    base: str | None = Field(None, description="base image of the build")
    environment: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(
        [], description="names of environment variables the server gets from the deployer's "
                        "environment (the server gets nothing else of it; values are never "
                        "written anywhere)")


def docker_client() -> Any:
    """A pinged docker SDK client for ``DOCKER_HOST`` (see :mod:`mlem_lib.build.docker`).

    Raises:
        DockerUnavailableError: no engine answers.
    """
    from mlem_lib.build.docker import docker_client as client

    return client()


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class LocalTarget(Target):
    """Serve the model on this machine (container or background process)."""

    Declaration = LocalDeclaration
    decl: LocalDeclaration

    @property
    def url(self) -> str:
        return f"http://{self.decl.host}:{self.decl.port}"

    @property
    def run_dir(self) -> Path:
        from mlem_lib.storage import get_fs, is_local

        fs, path = get_fs(self.state_url)
        if is_local(fs):
            return Path(path).parent / f"{self.decl.name}.run"
        return Path.home() / ".cache" / "mlem_lib" / "deploy" / f"{self.decl.name}.run"

    def _runtime(self, current: DeploymentState | None = None) -> str:
        if current is not None and current.target.get("runtime"):
            return str(current.target["runtime"])
        if self.decl.runtime != "auto":
            return self.decl.runtime
        try:
            docker_client()
        except DockerUnavailableError:
            return "process"
        return "container"

    # --- rollout -------------------------------------------------------------
    def rollout(self, source: ModelSource,
                current: DeploymentState | None) -> DeploymentState:
        runtime = self._runtime()
        if runtime == "container":
            return self._rollout_container(source, current)
        return self._rollout_process(source, current)

    def rollback(self, current: DeploymentState) -> DeploymentState:
        previous = current.previous
        assert previous is not None
        if previous.target.get("runtime") == "container":
            meta = self._image_meta(str(previous.image_id))
            state = self._launch_container(str(previous.image), str(previous.image_id), meta,
                                           current)
        else:
            from mlem_lib.locate import read_model_meta

            copy = str(previous.target.get("model_copy", ""))
            if not os.path.exists(copy + ".mlem"):
                raise DeploymentError(f"the copy of the previous model ({copy}) is gone: "
                                      "deploy it again instead")
            state = self._launch_process(copy, read_model_meta(copy), current)
        return state.model_copy(update={"model_path": previous.model_path})

    def _stop_current(self, current: DeploymentState | None) -> None:
        if current is None:
            return
        if current.target.get("runtime") == "container":
            self._stop_container(current.target.get("container_id"), remove=False)
        else:
            stop_pid(int(current.target.get("pid", 0)), current.target.get("started"))

    def _smoke(self, meta: ModelMeta, alive: Any) -> None:
        wait_healthy(self.url, self.decl.wait_timeout, self.decl.poll_interval, alive=alive)
        check_http(self.url, meta, self.decl.smoke_method, data_file=self.decl.smoke_data)

    def _restore(self, current: DeploymentState | None, error: BaseException) -> None:
        """Start the previous version again after ``error`` and raise RolledBackError."""
        if current is None:
            raise error
        self.progress(f"rollout failed ({error}); starting the previous version again")
        try:
            if current.target.get("runtime") == "container":
                restored = self._restart_container(current)
            else:
                restored = self._restart_process(current)
        except DeploymentError as exc:
            raise DeploymentError(
                f"rollout failed ({error}) and the previous version did not start again: "
                f"{exc}") from error
        # deploy() saves this: same version as before, new process/container ids
        raise RolledBackError(f"{error} (rolled back: the previous version runs again)",
                              restored_state=restored, reason=error) from error

    # --- process runtime -----------------------------------------------------
    def _model_copy(self, model: str, meta: ModelMeta) -> str:
        from mlem_lib.deploy.package import copy_model

        dest = self.run_dir / "models" / meta.model_hash[:16]
        if (dest / "model.mlem").exists():
            return str(dest / "model")
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        copy_model(model, str(tmp))
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        return str(dest / "model")

    def _prune_models(self, keep: set[str]) -> None:
        models = self.run_dir / "models"
        if not models.is_dir():
            return
        for entry in models.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)

    def _stop_leftover(self, current: DeploymentState | None) -> None:
        """Stop a server an interrupted run started but never recorded."""
        pidfile = self.run_dir / "server.pid"
        try:
            pid_s, _, started = pidfile.read_text().partition(" ")
        except FileNotFoundError:
            return
        pid = int(pid_s or 0)
        if current is None or int(current.target.get("pid", 0)) != pid:
            stop_pid(pid, started.strip() or None)
        pidfile.unlink(missing_ok=True)

    def _spawn(self, model_path: str) -> tuple[int, str | None, Path]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / "server.log"
        env = server_environment(self.decl.environment, MLEM_MODEL=model_path,
                                 PORT=str(self.decl.port), MLEM_HOST=self.decl.host)
        env.update(self.decl.server_env())
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlem_lib.serve.container", "serve"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, cwd=str(self.run_dir))
        started = _start_time(proc.pid)
        (self.run_dir / "server.pid").write_text(f"{proc.pid} {started or ''}")
        self._children = getattr(self, "_children", {})
        self._children[proc.pid] = proc
        return proc.pid, started, log_path

    def _process_alive(self, pid: int, log_path: Path) -> Any:
        def check() -> str | None:
            proc = getattr(self, "_children", {}).get(pid)
            code = proc.poll() if proc is not None else (None if pid_alive(pid) else -1)
            if code is None:
                return None
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            return f"server process exited with code {code}: " + " | ".join(tail)
        return check

    def _start_process(self, model_path: str, meta_hash: str, model: str | None,
                       meta: ModelMeta) -> DeploymentState:
        if _port_in_use(self.decl.host, self.decl.port):
            raise DeploymentError(
                f"port {self.decl.port} on {self.decl.host} is taken by another program "
                "(field 'port' of the declaration)")
        pid, started, log_path = self._spawn(model_path)
        try:
            self._smoke(meta, self._process_alive(pid, log_path))
        except DeploymentError:
            stop_pid(pid, started)
            (self.run_dir / "server.pid").unlink(missing_ok=True)
            raise
        (self.run_dir / "server.pid").unlink(missing_ok=True)
        return DeploymentState(
            name=self.decl.name, type="local", model_hash=meta_hash, model_path=model,
            url=self.url, target={"runtime": "process", "pid": pid, "started": started,
                                  "model_copy": model_path, "log": str(log_path)})

    def _rollout_process(self, source: ModelSource,
                         current: DeploymentState | None) -> DeploymentState:
        meta = source.meta
        self._stop_leftover(current)
        self.progress(f"copying model {meta.model_hash[:12]} to {self.run_dir}")
        model_path = self._model_copy(source.path, meta)
        return self._launch_process(model_path, meta, current)

    def _launch_process(self, model_path: str, meta: ModelMeta,
                        current: DeploymentState | None) -> DeploymentState:
        if current is not None:
            self.progress("stopping the running version")
            self._stop_current(current)
        self.progress(f"starting the server at {self.url}")
        try:
            state = self._start_process(model_path, meta.model_hash, None, meta)
        except DeploymentError as exc:
            self._restore(current, exc)
            raise
        keep = {meta.model_hash[:16]} | ({current.model_hash[:16]} if current else set())
        self._prune_models(keep)
        return state

    def _restart_process(self, current: DeploymentState) -> DeploymentState:
        from mlem_lib.locate import read_model_meta

        model_path = str(current.target["model_copy"])
        meta = read_model_meta(model_path)
        restored = self._start_process(model_path, current.model_hash, current.model_path, meta)
        return restored.model_copy(update={"previous": current.previous,
                                           "deployed_at": current.deployed_at})

    # --- container runtime ---------------------------------------------------
    def _container_alive(self, container: Any) -> Any:
        def check() -> str | None:
            container.reload()
            if container.status in ("exited", "dead"):
                tail = container.logs(tail=5).decode(errors="replace").strip()
                return f"container exited: {tail.replace(chr(10), ' | ')}"
            return None
        return check

    def _stop_container(self, container_id: str | None, remove: bool) -> None:
        if not container_id:
            return
        from docker.errors import NotFound

        client = docker_client()
        try:
            c = client.containers.get(container_id)
            c.stop(timeout=10)
            if remove:
                c.remove(force=True)
        except NotFound:
            pass

    def _build_image(self, source: ModelSource) -> tuple[str, str]:
        from docker.errors import ImageNotFound

        from mlem_lib.build.docker import build_docker

        meta = source.meta
        client = docker_client()
        runtime = "" if self.decl.model_runtime == "native" else f"-{self.decl.model_runtime}"
        image = self.decl.image or f"mlem-{self.decl.name}:{meta.model_hash[:12]}{runtime}"
        if self.decl.image is None:
            try:
                found = client.images.get(image)
                self.progress(f"image {image} already built")
                return image, str(found.id)
            except ImageNotFound:
                pass
        self.progress(f"building image {image}")
        built = build_docker(source.path, image, base=self.decl.base,
                             pip=self.decl.image_requirements(meta) or None,
                             model_version=source.version, progress=self.progress)
        return image, str(built.image_id)

    def _image_meta(self, image_id: str) -> ModelMeta:
        """The metadata of the model inside an image this target built."""
        import io
        import tarfile

        from mlem_lib import mlemfile
        from mlem_lib.build.dockerfile import MODEL_DIR
        from mlem_lib.build.model_files import MODEL_NAME
        from mlem_lib.locate import require_model

        client = docker_client()
        container = client.containers.create(image_id, command=["true"])
        try:
            stream, _ = container.get_archive(f"{MODEL_DIR}/{MODEL_NAME}.mlem")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile(f"{MODEL_NAME}.mlem")
                assert member is not None
                text = member.read()
        finally:
            container.remove(force=True)
        return require_model(mlemfile.parse(text, f"{image_id}:{MODEL_NAME}.mlem"), image_id)

    def _run_container(self, image: str, image_id: str, meta: ModelMeta, model: str | None,
                       name: str) -> DeploymentState:
        from docker.errors import NotFound

        client = docker_client()
        with contextlib.suppress(NotFound):  # left by an interrupted run
            client.containers.get(name).remove(force=True)
        if _port_in_use(self.decl.host, self.decl.port):
            raise DeploymentError(
                f"port {self.decl.port} on {self.decl.host} is taken by another program "
                "(field 'port' of the declaration)")
        container = client.containers.run(
            image_id, detach=True, name=name, network_mode="host",
            environment={**server_environment(
                self.decl.environment,
                {n: os.environ[n] for n in self.decl.environment if n in os.environ},
                PORT=str(self.decl.port), MLEM_HOST=self.decl.host),
                **self.decl.server_env()},
            labels={LABEL: self.decl.name})
        try:
            self._smoke(meta, self._container_alive(container))
        except DeploymentError:
            container.remove(force=True)
            raise
        return DeploymentState(
            name=self.decl.name, type="local", model_hash=meta.model_hash, model_path=model,
            image=image, image_id=image_id, url=self.url,
            target={"runtime": "container", "container_id": container.id,
                    "container_name": name})

    def _rollout_container(self, source: ModelSource,
                           current: DeploymentState | None) -> DeploymentState:
        image, image_id = self._build_image(source)
        return self._launch_container(image, image_id, source.meta, current)

    def _launch_container(self, image: str, image_id: str, meta: ModelMeta,
                          current: DeploymentState | None) -> DeploymentState:
        name = f"mlem-{self.decl.name}-{meta.model_hash[:12]}"
        keep = current.target.get("container_id") if current is not None else None
        for leftover in docker_client().containers.list(
                all=True, filters={"label": f"{LABEL}={self.decl.name}"}):
            if leftover.id != keep:  # started by an interrupted run, never recorded
                leftover.remove(force=True)
        if current is not None:
            self.progress("stopping the running version")
            self._stop_current(current)
        self.progress(f"starting container {name} at {self.url}")
        try:
            state = self._run_container(image, image_id, meta, None, name)
        except DeploymentError as exc:
            self._restore(current, exc)
            raise
        if current is not None and current.target.get("container_id") != state.target[
                "container_id"]:
            self._stop_container(current.target.get("container_id"), remove=True)
        return state

    def _restart_container(self, current: DeploymentState) -> DeploymentState:
        from docker.errors import NotFound

        client = docker_client()
        try:
            container = client.containers.get(current.target["container_id"])
        except NotFound:
            raise DeploymentError("the previous container is gone") from None
        container.start()
        wait_healthy(self.url, self.decl.wait_timeout, self.decl.poll_interval,
                     alive=self._container_alive(container), model_hash=current.model_hash)
        return current

    # --- status / remove -----------------------------------------------------
    def status(self, current: DeploymentState | None) -> DeploymentStatus:
        base = {"name": self.decl.name, "type": "local", "url": self.url}
        if current is None:
            return DeploymentStatus(**base, deployed=False, healthy=False,
                                    detail="not deployed")
        base["url"] = current.url or self.url
        running, detail = self._running(current)
        healthy = False
        if running:
            try:
                wait_healthy(base["url"], 0.0)
                healthy, detail = True, f"{detail}; /health answers 200"
            except DeploymentError as exc:
                detail = f"{detail}; {exc}"
        return DeploymentStatus(**base, deployed=True, healthy=healthy,
                                model_hash=current.model_hash, detail=detail)

    def _running(self, current: DeploymentState) -> tuple[bool, str]:
        t = current.target
        if t.get("runtime") == "container":
            from docker.errors import NotFound

            try:
                c = docker_client().containers.get(t.get("container_id", ""))
            except NotFound:
                return False, "container is gone"
            except DockerUnavailableError as exc:
                return False, str(exc)
            return c.status == "running", f"container {c.name} is {c.status}"
        pid = int(t.get("pid", 0))
        alive = pid_alive(pid) and _start_time(pid) in (None, t.get("started"))
        return alive, f"process {pid} is {'running' if alive else 'gone'}"

    def remove(self, current: DeploymentState | None, *, force: bool = False) -> None:
        if current is not None and current.target.get("runtime") == "container":
            self._stop_container(current.target.get("container_id"), remove=True)
        elif current is not None:
            stop_pid(int(current.target.get("pid", 0)), current.target.get("started"))
        self._stop_leftover(None)
        if self._runtime(current) == "container" or self.decl.runtime == "container":
            try:
                client = docker_client()
            except DockerUnavailableError:
                client = None
            if client is not None:
                for c in client.containers.list(all=True, filters={"label": f"{LABEL}="
                                                                   f"{self.decl.name}"}):
                    c.remove(force=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)

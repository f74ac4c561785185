"""The ``local`` target: the model served on this machine, updated without downtime.

Two runtimes:

* ``process``: a background process of this Python serving a private copy of the
  model (copies per model hash live in ``<name>.run/models/``, so a rollback still
  has the old model after its source was overwritten);
* ``container``: the model's image (built with
  :func:`mlem_lib.build.docker.build_docker`) on the host network (engines started with
  ``--bridge=none`` cannot publish ports).

``runtime: auto`` picks the container runtime when a Docker engine answers.

The declared ``host:port`` belongs to a small listener process
(:mod:`mlem_lib.deploy.listener`) that keeps the listening socket open for the
deployment's lifetime. Model servers are workers (:mod:`mlem_lib.deploy.worker`) that
accept on that socket. An update:

1. starts the new worker beside the old one, on a private port;
2. waits until the private port's ``/health`` reports the new model hash and the smoke
   request succeeds there (nothing public has changed yet: a failure stops the new
   worker and the old one never noticed);
3. lets the new worker accept on the public socket, then stops the old one gracefully.

Requests during an update all succeed: the socket is never closed. Every process and
container this target starts is recorded (``<name>.run/spawned/``) until the state
names it, so a run that was killed half-way leaves nothing that the next run does not
find and stop.

Example:
    >>> deploy("deployments/local.yaml", "models/rf").url  # doctest: +SKIP
    'http://127.0.0.1:8080'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from mlem_lib.deploy.base import ModelSource, Target
from mlem_lib.deploy.declaration import BaseDeclaration
from mlem_lib.deploy.listener import READY, TAKEN
from mlem_lib.deploy.smoke import SmokeRequest, smoke_test, wait_healthy
from mlem_lib.deploy.state import DeploymentState, DeploymentStatus
from mlem_lib.deploy.worker import FAILED, PRIVATE, PUBLIC, RETIRED
from mlem_lib.errors import (
    DeploymentError,
    DockerUnavailableError,
    RolledBackError,
    SmokeTestError,
)
from mlem_lib.meta import ModelMeta
from mlem_lib.processes import same_process, start_time, stop_pid
from mlem_lib.serve.settings import server_environment

LABEL = "mlem.deployment"
# seconds a retired server keeps answering connections it accepted before SIGTERM
RETIRE_GRACE = 1.0


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


@dataclass
class Worker:
    """A model server this target started (a process or a container)."""

    runtime: str
    private_url: str
    ids: dict[str, Any]
    alive: Callable[[], str | None]
    go_public: Callable[[], None]
    stop: Callable[[], None]


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

    @property
    def listener_address(self) -> str:
        """The listener's abstract unix socket (see ``listener.control_address``)."""
        from mlem_lib.deploy.listener import control_address

        return control_address(f"{self.run_dir.resolve()} {self.decl.host}:{self.decl.port}")

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

    # --- what was started: recorded until the state names it ---------------------------
    @property
    def _spawned(self) -> Path:
        return self.run_dir / "spawned"

    def _record(self, kind: str, ident: str, started: str | None = None) -> None:
        self._spawned.mkdir(parents=True, exist_ok=True)
        (self._spawned / f"{kind}-{ident}").write_text(started or "")

    @staticmethod
    def _tracked(state: DeploymentState | None) -> set[str]:
        if state is None:
            return set()
        t = state.target
        return {f"pid-{t.get('pid')}", f"pid-{t.get('listener_pid')}",
                f"container-{t.get('container_id')}"}

    def _stop_leftovers(self, current: DeploymentState | None) -> None:
        """Stop what an interrupted run started but never recorded in the state."""
        if not self._spawned.is_dir():
            return
        tracked = self._tracked(current)
        for marker in sorted(self._spawned.iterdir()):
            kind, _, ident = marker.name.partition("-")
            if marker.name in tracked:
                continue
            if kind == "pid":
                stop_pid(int(ident), marker.read_text().strip() or None)
            elif kind == "container":
                self._remove_container(ident)
            marker.unlink(missing_ok=True)

    # --- logs -------------------------------------------------------------------------
    @staticmethod
    def _wait_for_line(read: Callable[[], str], marker: str, alive: Callable[[], str | None],
                       timeout: float, what: str, fail: str | None = None) -> str:
        """The rest of the first line of ``read()`` that starts with ``marker``."""
        deadline = time.monotonic() + timeout
        while True:
            for line in read().splitlines():
                if line.startswith(marker):
                    return line[len(marker):].strip()
                if fail and line.startswith(fail):
                    raise DeploymentError(f"{what}: {line}")
            problem = alive()
            if problem:
                raise DeploymentError(f"{what}: {problem}")
            if time.monotonic() >= deadline:
                raise DeploymentError(f"{what}: no answer within {timeout:g}s")
            time.sleep(0.05)

    @staticmethod
    def _tail(text: str) -> str:
        lines = [line for line in text.strip().splitlines() if line.strip()][-5:]
        return " | ".join(lines) or "no output"

    # --- the listener -------------------------------------------------------------------
    def _listener_alive(self, state: DeploymentState | None) -> bool:
        if state is None or not state.target.get("listener_pid"):
            return False
        return same_process(int(state.target["listener_pid"]),
                            state.target.get("listener_started"))

    def _start_listener(self) -> dict[str, Any]:
        """Start the listener of ``host:port``; its ids for the state.

        Raises:
            DeploymentError: the port is taken (the message names the field).
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / "listener.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlem_lib.deploy.listener", "--host", self.decl.host,
                 "--port", str(self.decl.port), "--control", self.listener_address],
                env=server_environment(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        started = start_time(proc.pid)
        self._record("pid", str(proc.pid), started)

        def read() -> str:
            with open(log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")

        def alive() -> str | None:
            code = proc.poll()
            return None if code is None else f"exited with code {code}"

        try:
            self._wait_for_line(read, READY, alive, 30.0, "the listener did not start")
        except DeploymentError:
            stop_pid(proc.pid, started)
            text = read()
            if TAKEN in text:
                raise DeploymentError(
                    f"port {self.decl.port} on {self.decl.host} is taken by another program "
                    f"(field 'port' of the declaration): {self._tail(text)}") from None
            raise
        return {"listener_pid": proc.pid, "listener_started": started}

    def _stop_listener(self, ids: dict[str, Any]) -> None:
        stop_pid(int(ids.get("listener_pid") or 0), ids.get("listener_started"))

    # --- process workers ----------------------------------------------------------------
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
        if models.is_dir():
            for entry in models.iterdir():
                if entry.name not in {k[:16] for k in keep}:
                    shutil.rmtree(entry, ignore_errors=True)

    def _start_process_worker(self, model_path: str) -> Worker:
        log_path = self.run_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
        env = server_environment(self.decl.environment, MLEM_MODEL=model_path,
                                 MLEM_LISTENER=self.listener_address,
                                 MLEM_PRIVATE_HOST="127.0.0.1")
        env.update(self.decl.server_env())
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlem_lib.deploy.worker"], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, cwd=str(self.run_dir))
        started = start_time(proc.pid)
        self._record("pid", str(proc.pid), started)

        def read() -> str:
            return log_path.read_text(errors="replace")

        def alive() -> str | None:
            code = proc.poll()
            return None if code is None else \
                f"the server process exited with code {code}: {self._tail(read())}"

        def stop() -> None:
            stop_pid(proc.pid, started)

        return self._worker("process", read, alive, lambda: os.kill(proc.pid, signal.SIGUSR1),
                            stop, {"pid": proc.pid, "started": started,
                                   "log": str(log_path), "model_copy": model_path})

    def _worker(self, runtime: str, read: Callable[[], str], alive: Callable[[], str | None],
                signal_public: Callable[[], None], stop: Callable[[], None],
                ids: dict[str, Any]) -> Worker:
        try:
            private = self._wait_for_line(read, PRIVATE, alive, self.decl.wait_timeout,
                                          "the new server did not start")
        except BaseException:
            stop()
            raise

        def go_public() -> None:
            signal_public()
            self._wait_for_line(read, PUBLIC, alive, 30.0,
                                "the new server did not take the public port", fail=FAILED)

        return Worker(runtime=runtime, private_url=f"http://{private}",
                      ids={**ids, "private_url": f"http://{private}"}, alive=alive,
                      go_public=go_public, stop=stop)

    # --- container workers --------------------------------------------------------------
    def _build_image(self, source: ModelSource) -> tuple[str, str]:
        # always built: Docker's layer cache makes an unchanged rebuild quick, and an image
        # of the same name from an older mlem_lib may lack the worker this target runs
        from mlem_lib.build.docker import build_docker

        meta = source.meta
        runtime = "" if self.decl.model_runtime == "native" else f"-{self.decl.model_runtime}"
        image = self.decl.image or f"mlem-{self.decl.name}:{meta.model_hash[:12]}{runtime}"
        self.progress(f"building image {image}")
        built = build_docker(source.path, image, base=self.decl.base,
                             pip=self.decl.image_requirements(meta) or None,
                             model_version=source.version)
        return image, str(built.image_id)

    def _remove_container(self, container_id: str | None, stop_first: bool = False) -> None:
        if not container_id:
            return
        from docker.errors import APIError, NotFound

        client = docker_client()
        try:
            container = client.containers.get(container_id)
            if stop_first:
                with contextlib.suppress(APIError):
                    container.stop(timeout=30)  # SIGTERM: finishes what it has
            container.remove(force=True)
        except NotFound:
            return
        except APIError as exc:
            if exc.status_code != 409:  # 409: a removal is already under way; wait for it
                raise
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    client.containers.get(container_id)
                except NotFound:
                    return
                time.sleep(0.2)
            raise

    def _start_container_worker(self, image: str, image_id: str, model_hash: str) -> Worker:
        client = docker_client()
        name = f"mlem-{self.decl.name}-{model_hash[:12]}-{uuid.uuid4().hex[:6]}"
        container = client.containers.run(
            image_id, entrypoint=["python", "-m", "mlem_lib.deploy.worker"], command=[],
            detach=True, name=name, network_mode="host", labels={LABEL: self.decl.name},
            environment={**server_environment(
                self.decl.environment,
                {n: os.environ[n] for n in self.decl.environment if n in os.environ},
                MLEM_LISTENER=self.listener_address, MLEM_PRIVATE_HOST="127.0.0.1"),
                **self.decl.server_env()})
        self._record("container", str(container.id))

        def read() -> str:
            return bytes(container.logs()).decode(errors="replace")

        def alive() -> str | None:
            container.reload()
            if container.status in ("exited", "dead"):
                return f"the container exited: {self._tail(read())}"
            return None

        return self._worker(
            "container", read, alive, lambda: container.kill(signal="SIGUSR1"),
            lambda: self._remove_container(container.id),
            {"container_id": container.id, "container_name": name})

    def _retire_worker(self, state: DeploymentState) -> None:
        """Stop a worker that served publicly without dropping a request.

        It first stops accepting (``SIGUSR2``) and gets a moment to read the requests of
        the connections it already accepted; only then comes the graceful ``SIGTERM``.
        """
        t = state.target
        try:
            if t.get("runtime") == "container":
                container = docker_client().containers.get(t.get("container_id", ""))
                container.kill(signal="SIGUSR2")

                def read() -> str:
                    return bytes(container.logs()).decode(errors="replace")
            else:
                pid = int(t.get("pid") or 0)
                if not same_process(pid, t.get("started")):
                    return
                offset = Path(t["log"]).stat().st_size if t.get("log") else 0
                os.kill(pid, signal.SIGUSR2)

                def read() -> str:
                    with open(t["log"], "rb") as f:
                        f.seek(offset)
                        return f.read().decode(errors="replace")
            self._wait_for_line(read, RETIRED, lambda: None, 10.0, "retiring the old server")
            time.sleep(RETIRE_GRACE)
        except Exception as exc:  # gone already, or an older worker: stop it anyway
            self.progress(f"the previous server did not retire cleanly ({exc})")
        finally:
            self._stop_worker(state)

    def _stop_worker(self, state: DeploymentState) -> None:
        t = state.target
        if t.get("runtime") == "container":
            self._remove_container(t.get("container_id"), stop_first=True)
        else:
            stop_pid(int(t.get("pid") or 0), t.get("started"))

    # --- the switch ---------------------------------------------------------------------
    def _smoke_request(self, meta: ModelMeta) -> SmokeRequest | None:
        try:
            return SmokeRequest.for_model(meta, self.smoke_method, self.smoke_data)
        except SmokeTestError as exc:
            if self.smoke_method or self.smoke_data:  # what the user asked for must work
                raise
            self.progress(f"{exc}: checking /health and the model hash only")
            return None

    def _launch(self, start: Callable[[], Worker], model_hash: str,
                request: SmokeRequest | None, current: DeploymentState | None,
                fields: dict[str, Any], *, restore: bool = True) -> DeploymentState:
        """Start a worker beside ``current``'s, check it privately, switch, stop the old one.

        A failure before the switch stops the new worker (and a listener started for it)
        and leaves ``current`` running untouched. A failure after it runs ``current``
        again (``restore``) and raises :class:`RolledBackError`.
        """
        restart = current is not None and not self._listener_alive(current)
        if restart:
            assert current is not None
            self.progress("no listener holds the port for the running server (started by "
                          "an older mlem_lib, or killed): stopping it first, so this update "
                          "has downtime")
            self._stop_worker(current)
        try:
            listener = self._start_listener() if current is None or restart else {
                key: current.target[key] for key in ("listener_pid", "listener_started")}
            try:
                self.progress("starting the new server beside the running one"
                              if current is not None and not restart
                              else "starting the server")
                worker = start()
                try:
                    smoke_test(worker.private_url, model_hash=model_hash, request=request,
                               timeout=self.decl.wait_timeout,
                               poll=min(self.decl.poll_interval, 0.25), alive=worker.alive)
                    self.progress(f"switching {self.url} to the new server")
                    worker.go_public()
                except BaseException:
                    worker.stop()
                    raise
            except BaseException:
                if current is None or restart:
                    self._stop_listener(listener)
                raise
        except Exception as exc:
            if restart and restore and current is not None:
                self._restore(current, None, exc)
            raise
        if current is not None and not restart:
            self.progress("stopping the previous server (it finishes its requests)")
            self._retire_worker(current)
        state = DeploymentState(
            name=self.decl.name, type=self.decl.type, model_hash=model_hash, url=self.url,
            smoke=request, **fields, target={"runtime": worker.runtime, **worker.ids,
                                             **listener})
        try:
            wait_healthy(self.url, self.decl.wait_timeout, min(self.decl.poll_interval, 0.25),
                         model_hash=model_hash)
        except Exception as exc:
            self._stop_worker(state)
            if current is None or not restore:
                self._stop_listener(listener)
                raise
            self._restore(current, state, exc)
        return state

    def _restore(self, previous: DeploymentState, listener_state: DeploymentState | None,
                 error: BaseException) -> None:
        """Run ``previous`` again after ``error``; raise RolledBackError (or DeploymentError)."""
        self.progress(f"the new version failed ({error}); starting the previous one again")
        try:
            restored = self._relaunch(previous, listener_state, restore=False)
        except Exception as exc:
            raise DeploymentError(f"{error}; and the previous version did not start again: "
                                  f"{exc}") from error
        raise RolledBackError(f"{error} (rolled back: the previous version runs again)",
                              restored_state=restored, reason=error) from error

    def _relaunch(self, state: DeploymentState, current: DeploymentState | None, *,
                  restore: bool = True) -> DeploymentState:
        """Start the version ``state`` recorded, from its model copy or image."""
        fields = {"model_path": state.model_path, "image": state.image,
                  "image_id": state.image_id}
        if state.target.get("runtime") == "container":
            image, image_id = str(state.image), str(state.image_id)

            def start() -> Worker:
                return self._start_container_worker(image, image_id, state.model_hash)
        else:
            copy = str(state.target.get("model_copy", ""))
            if not os.path.exists(copy + ".mlem"):
                raise DeploymentError(f"the copy of that model ({copy}) is gone: deploy it "
                                      "again instead")

            def start() -> Worker:
                return self._start_process_worker(copy)
        new = self._launch(start, state.model_hash, state.smoke, current, fields,
                           restore=restore)
        return new.model_copy(update={"previous": state.previous})

    # --- the verbs ----------------------------------------------------------------------
    def rollout(self, source: ModelSource,
                current: DeploymentState | None) -> DeploymentState:
        meta = source.meta
        request = self._smoke_request(meta)
        self._stop_leftovers(current)
        if self._runtime() == "container":
            image, image_id = self._build_image(source)

            def start() -> Worker:
                return self._start_container_worker(image, image_id, meta.model_hash)
            fields: dict[str, Any] = {"image": image, "image_id": image_id}
        else:
            self.progress(f"copying model {meta.model_hash[:12]} to {self.run_dir}")
            copy = self._model_copy(source.path, meta)

            def start() -> Worker:
                return self._start_process_worker(copy)
            fields = {}
        state = self._launch(start, meta.model_hash, request, current, fields)
        self._prune_models({meta.model_hash} | ({current.model_hash} if current else set()))
        return state

    def rollback(self, current: DeploymentState) -> DeploymentState:
        assert current.previous is not None
        self._stop_leftovers(current)
        state = self._relaunch(current.previous, current)
        self._prune_models({state.model_hash, current.model_hash})
        return state

    def status(self, current: DeploymentState | None) -> DeploymentStatus:
        base: dict[str, Any] = {"name": self.decl.name, "type": self.decl.type, "url": self.url}
        if current is None:
            return DeploymentStatus(**base, deployed=False, healthy=False,
                                    detail="not deployed")
        base["url"] = current.url or self.url
        running, detail = self._running(current)
        healthy = False
        if running:
            try:
                wait_healthy(base["url"], 0.0, model_hash=current.model_hash)
                healthy, detail = True, f"{detail}; /health reports the model"
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
            running, detail = c.status == "running", f"container {c.name} is {c.status}"
        else:
            pid = int(t.get("pid") or 0)
            running = same_process(pid, t.get("started"))
            detail = f"process {pid} is {'running' if running else 'gone'}"
        if t.get("listener_pid"):
            up = self._listener_alive(current)
            detail += f", listener {t['listener_pid']} is {'running' if up else 'gone'}"
        return running, detail

    def remove(self, current: DeploymentState | None, *, force: bool = False) -> None:
        if current is not None:
            self._stop_worker(current)
            self._stop_listener(current.target)
        self._stop_leftovers(None)
        if self._runtime(current) == "container" or self.decl.runtime == "container":
            with contextlib.suppress(DockerUnavailableError):
                client = docker_client()
                for c in client.containers.list(
                        all=True, filters={"label": f"{LABEL}={self.decl.name}"}):
                    c.remove(force=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)

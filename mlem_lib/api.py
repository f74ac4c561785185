"""The public verbs of mlem_lib. The CLI and the Prefect tasks call these.

Importing this module is cheap: every heavy dependency is imported inside the
function that needs it.

Example:
    >>> import mlem_lib.api as mlem
    >>> meta = mlem.save(lambda xs: [x * 2 for x in xs], "memory://demo/double",
    ...                  sample_data=[1, 2, 3])
    >>> mlem.apply("memory://demo/double", [4, 5])
    [8, 10]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlem_lib.build.base import BuildOptions, BuildProgress
    from mlem_lib.build.docker import DockerImage, DockerOptions
    from mlem_lib.build.dockerfile import DockerContext, DockerDirOptions
    from mlem_lib.build.pip import PipOptions, PipPackage
    from mlem_lib.deploy.base import Progress
    from mlem_lib.deploy.state import DeploymentState, DeploymentStatus
    from mlem_lib.meta import DataMeta, ModelMeta

__all__ = ["apply", "apply_remote", "assign", "build", "deploy", "find_latest_version",
           "find_stage_version", "history", "list_models", "load", "load_meta", "register",
           "remove", "rollback", "save", "serve", "show", "status"]


def save(obj: Any, path: str, sample_data: Any = None, *, description: str | None = None,
         labels: list[str] | None = None, input_schema: Any = None,
         extra_requirements: list[str] | str | None = None,
         code_paths: list[str | os.PathLike[str]] | None = None,
         methods: list[str] | None = None, keep_example: bool = True,
         sample_rows: int = 1000) -> ModelMeta | DataMeta:
    """Save a model or a data object with metadata inferred from it.

    Writes the binary at ``path`` and the YAML metadata at ``path.mlem``, atomically:
    a save that fails or is killed part-way leaves the previous version loadable.
    Everything is inferred; the keyword options declare what inference cannot know, as
    MLflow's ``log_model`` options do.

    Args:
        obj: a model (scikit-learn, xgboost, lightgbm, a function or an object with
            predict-like methods) or data (DataFrame, ndarray, list, dict, scalar).
        path: local path or fsspec URL (``memory://``, ``s3://``) without ``.mlem``.
        sample_data: example input; gives the argument schema and, by calling each
            method on a few rows, the return schema. Its first row is kept as the
            request example of ``/docs`` and of deployment smoke tests. A model may also
            be the path of a model file (``model.onnx``, ``model.keras``).
        description: free text written into the metadata.
        labels: tags written into the metadata.
        input_schema: the argument schema, declared instead of inferred from
            ``sample_data``: a data type (``mlem_lib.data.infer_data_type(X)`` adjusted,
            e.g. ``.model_copy(update={"date_format": "epoch_ms"})``), a sample, or a dict
            of method name to either.
        extra_requirements: pip requirement lines the model needs beyond what is found
            (``["shap==0.46.0", "scipy>=1.10"]``); a line replaces the inferred pin of the
            same package.
        code_paths: local ``.py`` files and package folders shipped inside the ``.mlem``
            file (they replace what is found automatically under the same name).
        methods: the methods to expose (default: every predict-like method).
        keep_example: keep the first row of ``sample_data`` in the metadata (turn off for
            data that must not be written to the model's repository: no sample rows are
            kept then either).
        sample_rows: how many rows of ``sample_data`` are kept in the ``.mlem`` file (at
            most about 64 KB of JSON): exports such as ``mlem build MODEL onnx`` check
            their answers on them. 0 keeps none.

    Returns:
        The metadata that was written.

    Raises:
        MethodNotFoundError: a name in ``methods`` is not a method of the model.
        MetadataError: a bad requirement line or code path.

    Example:
        >>> from sklearn.linear_model import LogisticRegression
        >>> meta = save(LogisticRegression(max_iter=500).fit(X, y), "models/lr", sample_data=X)
        >>> meta.model_type.type, sorted(meta.model_type.methods)[:2]
        ('sklearn', ['decision_function', 'predict'])
        >>> save(model, "models/lr", sample_data=X, methods=["predict"],
        ...      extra_requirements=["shap==0.46.0"], code_paths=["src/features.py"])
        ... # doctest: +SKIP
    """
    from mlem_lib.objects import save as _save
    from mlem_lib.transient import reraise_transient

    with reraise_transient(f"saving {path}", storage=True):
        return _save(obj, path, sample_data, description, labels, input_schema=input_schema,
                     extra_requirements=extra_requirements, code_paths=code_paths,
                     methods=methods, keep_example=keep_example,
                     sample_rows=sample_rows)


def load_meta(path: str, *, repo: str | None = None) -> ModelMeta | DataMeta:
    """Read the metadata of a saved object without unpickling anything.

    Args:
        path: the object's path or URL (with or without ``.mlem``), or a registry
            reference such as ``rf@v1.2.0``, ``rf#prod`` or ``rf@latest``.
        repo: the git repository holding a registry reference (default: the current one).

    Example:
        >>> load_meta("models/rf").model_type.type
        'sklearn'
    """
    from mlem_lib.locate import read_meta
    from mlem_lib.transient import reraise_transient

    with reraise_transient(f"reading {path}", storage=True):
        return read_meta(path, repo)


def load(path: str, *, repo: str | None = None, check_requirements: bool = True,
         device: str | None = None) -> Any:
    """Load a saved model or data object after checking its artifacts' sizes and hashes.

    Args:
        path: the object's path or URL, or a registry reference.
        repo: the git repository holding a registry reference.
        check_requirements: warn about recorded packages installed in other versions.
        device: where a PyTorch or transformers model goes (``cpu``, ``cuda:0``, ``mps``);
            default ``$MLEM_DEVICE``, else the CPU, whatever device it was saved from.

    Raises:
        ObjectNotFoundError: nothing is saved there.
        ArtifactIntegrityError: the artifact was truncated or modified.
        UnsafePathError: the metadata points outside the model's folder.

    Example:
        >>> model = load("models/rf")
        >>> model.predict(X.iloc[[0, 60, 120]])
        array([0, 1, 2])
    """
    from mlem_lib.locate import load_found, open_object
    from mlem_lib.transient import reraise_transient

    with reraise_transient(f"loading {path}", storage=True), open_object(path, repo) as found:
        return load_found(found, check_requirements, device)[1]


def apply(model: str | Any, data: Any, method: str = "predict", *, output: str | None = None,
          batch_size: int | None = None, quiet: bool = True, repo: str | None = None,
          column: str | None = None, keep_columns: list[str] | None = None,
          with_input: bool = False) -> Any:
    """Run a model method on data.

    Args:
        model: a saved model's path / reference, or an already loaded model object.
        data: an in-memory value (DataFrame, ndarray, list...) or a file path/URL
            (CSV, Parquet, JSON Lines, .npy, a data ``.mlem``) for batch prediction.
        method: the method to call (``predict``, ``predict_proba``...).
        output: where to write predictions (``.csv``, ``.parquet``, ``.jsonl``, ``.json``,
            ``.npy``; CSV and JSON may end in ``.gz``, ``.bz2``, ``.xz``).
        batch_size: rows per chunk when streaming a file.
        quiet: no progress bar.
        repo: the git repository holding a registry reference.
        column: the input column a model of one column takes (a text model applied to
            the ``text`` column of a CSV).
        keep_columns: input columns written next to the predictions (an ``id``...).
        with_input: write every input column next to the predictions.

    Returns:
        The predictions (for files without ``output``: all of them in memory).

    Example:
        >>> apply("models/rf", X_test, method="predict_proba").shape
        (3, 3)
        >>> X.to_csv("iris.csv", index=False)
        >>> apply("models/rf", "iris.csv", output="preds.csv", batch_size=50).rows
        150
        >>> open("preds.csv").readline().strip()
        'prediction'
    """
    from mlem_lib.apply import apply as _apply
    from mlem_lib.transient import reraise_transient

    with reraise_transient(f"applying a model to {data if isinstance(data, str) else 'data'}",
                           storage=True):
        return _apply(model, data, method=method, output=output, batch_size=batch_size,
                      quiet=quiet, repo=repo, column=column, keep_columns=keep_columns,
                      with_input=with_input)


def show(path: str, *, repo: str | None = None) -> str:
    """A human-readable table of an object's metadata (what ``mlem show`` prints).

    Example:
        >>> "sklearn" in show("models/rf")
        True
    """
    from mlem_lib.describe import describe

    return describe(load_meta(path, repo=repo), path)


def serve(path: str, *, host: str = "127.0.0.1", port: int | None = None, workers: int = 1,
          auth_token: str | None = None, repo: str | None = None) -> None:
    """Serve a model over HTTP with a FastAPI app generated from its metadata (blocks).

    Example:
        >>> serve("models/rf", port=8080)  # doctest: +SKIP
    """
    from mlem_lib.serve.runner import run

    run(path, host=host, port=port, workers=workers, auth_token=auth_token, repo=repo)


def apply_remote(url: str, data: Any, method: str = "predict", *, output: str | None = None,
                 batch_size: int | None = None, auth_token: str | None = None,
                 quiet: bool = True, column: str | None = None,
                 keep_columns: list[str] | None = None, with_input: bool = False) -> Any:
    """Apply a model served at ``url`` (by ``mlem serve``) to data, batching requests.

    ``column``, ``keep_columns`` and ``with_input`` work as in :func:`apply`.

    Example:
        >>> apply_remote("http://127.0.0.1:8080", "data.csv", output="preds.csv")  # doctest: +SKIP
    """
    from mlem_lib.batch import Layout
    from mlem_lib.batch import apply_remote as _apply_remote

    layout = Layout(column=column, keep=list(keep_columns or []) or None,
                    with_input=with_input)
    return _apply_remote(url, data, method=method, output=output, batch_size=batch_size,
                         auth_token=auth_token, quiet=quiet, layout=layout)


@overload
def build(model: str, kind: Literal["pip"],
          options: PipOptions | Mapping[str, object] | None = None, *,
          repo: str | None = None, progress: BuildProgress = None) -> PipPackage: ...
@overload
def build(model: str, kind: Literal["docker"],
          options: DockerOptions | Mapping[str, object] | None = None, *,
          repo: str | None = None, progress: BuildProgress = None) -> DockerImage: ...
@overload
def build(model: str, kind: Literal["docker-dir"],
          options: DockerDirOptions | Mapping[str, object] | None = None, *,
          repo: str | None = None, progress: BuildProgress = None) -> DockerContext: ...
@overload
def build(model: str, kind: str, options: BuildOptions | Mapping[str, object] | None = None,
          *, repo: str | None = None, progress: BuildProgress = None) -> BaseModel: ...
def build(model: str, kind: str, options: BuildOptions | Mapping[str, object] | None = None,
          *, repo: str | None = None, progress: BuildProgress = None) -> BaseModel:
    """Package a saved model as ``kind``: ``pip``, ``docker``, ``docker-dir`` or a plugin's.

    Options are validated by the builder's ``Options`` model (``PipOptions``,
    ``DockerOptions``, ``DockerDirOptions``): an unknown option or a bad value is a
    ``BuildError`` that names it.

    Args:
        model: the saved model's path, URL or registry reference.
        kind: the build kind (``mlem_lib.build.kinds()`` lists them).
        options: the options, as the builder's model or a mapping.
        repo: the git repository holding a registry reference.
        progress: receives build output lines (default: the ``mlem_lib.build`` logger).

    Returns:
        ``PipPackage``, ``DockerImage``, ``DockerContext`` or a plugin builder's result.

    Example:
        >>> build("models/rf", "docker", {"image": "iris-rf:1.0"}).image_id  # doctest: +SKIP
        'sha256:...'
    """
    from mlem_lib.build import build as _build
    from mlem_lib.transient import reraise_transient

    with reraise_transient(f"building {model} as {kind}"):
        return _build(model, kind, options, repo=repo, progress=progress)


def deploy(declaration: str | os.PathLike[str], model: str, *, credentials: object = None,
           repo: str | None = None, state_url: str | None = None, lock_timeout: float = 0.0,
           progress: Progress = None,
           overrides: dict[str, Any] | None = None) -> DeploymentState:
    """Roll a model out to the target a declaration in ``deployments/`` describes.

    Creates or updates; rerunning with the same model does nothing. After the rollout
    the server must report the new model's hash on ``/health`` and answer one request
    built from the saved schema, or the previous version is put back.

    Args:
        declaration: the YAML declaration (``type: local | heroku | sagemaker`` or a
            plugin's target).
        model: the saved model's path / URL or registry reference (``rf@v1.2.0``).
        credentials: ``None`` (the environment), a dict, a pydantic model or a Prefect
            block; the target validates it into its ``Credentials`` model.
        repo: the git repository holding a registry reference.
        state_url: where the state file lives (default: next to the declaration).
        lock_timeout: seconds to wait for another run of the same deployment.
        progress: a callable for progress lines, ``None`` for stderr, ``False`` for none.
        overrides: declaration fields to replace for this run (the file is unchanged):
            ``{"port": 9000}``, ``{"smoke_data": "rows.csv"}`` (the smoke request's rows).

    Returns:
        The recorded :class:`~mlem_lib.deploy.state.DeploymentState`.

    Raises:
        DeclarationError: a bad declaration (the message names the field).
        CredentialsError: missing or refused credentials.
        DeploymentLockedError: another run holds the deployment.
        RolledBackError: the new version failed and the previous one runs again.

    Example:
        >>> deploy("deployments/local.yaml", "models/rf").url  # doctest: +SKIP
        'http://127.0.0.1:8080'
    """
    from mlem_lib.deploy import deploy as _deploy

    return _deploy(declaration, model, credentials=credentials, repo=repo,
                   state_url=state_url, lock_timeout=lock_timeout, progress=progress,
                   overrides=overrides)


def status(declaration: str | os.PathLike[str], *, credentials: object = None,
           state_url: str | None = None) -> DeploymentStatus:
    """What a deployment runs now (its model hash) and whether it is healthy.

    Example:
        >>> status("deployments/local.yaml").healthy  # doctest: +SKIP
        True
    """
    from mlem_lib.deploy import status as _status

    return _status(declaration, credentials=credentials, state_url=state_url)


def remove(declaration: str | os.PathLike[str], *, credentials: object = None,
           state_url: str | None = None, lock_timeout: float = 0.0, force: bool = False,
           progress: Progress = None) -> None:
    """Tear a deployment down and forget its state (a no-op when it is already gone).

    Args:
        force: also delete what this tool did not create, where a target refuses to by
            default.

    Example:
        >>> remove("deployments/local.yaml")  # doctest: +SKIP
    """
    from mlem_lib.deploy import remove as _remove

    _remove(declaration, credentials=credentials, state_url=state_url,
            lock_timeout=lock_timeout, force=force, progress=progress)


def rollback(declaration: str | os.PathLike[str], *, credentials: object = None,
             state_url: str | None = None, lock_timeout: float = 0.0,
             progress: Progress = None) -> DeploymentState:
    """Run the previous version of a deployment again (a second rollback undoes it).

    Raises:
        DeploymentError: nothing deployed, or no previous version recorded.
        RolledBackError: the previous version did not come up; the current one runs again.

    Example:
        >>> rollback("deployments/local.yaml").model_hash  # doctest: +SKIP
    """
    from mlem_lib.deploy import rollback as _rollback

    return _rollback(declaration, credentials=credentials, state_url=state_url,
                     lock_timeout=lock_timeout, progress=progress)


# --- registry ---


def _need_registry(feature: str) -> None:
    from mlem_lib.extras import need

    need("registry", feature)


if TYPE_CHECKING:
    from mlem_lib.registry.metrics import MetricDelta, VersionRecords
    from mlem_lib.registry.models import (
        ModelSummary,
        RegisteredVersion,
        RegistryEvent,
        StageAssignment,
    )


def register(model_path: str, *, name: str | None = None, version: str | None = None,
             bump: str | None = None, repo: str = ".", push: bool = True,
             message: str | None = None, push_git: bool = False,
             force: bool = False, metrics: str | Mapping[str, Any] | None = None,
             plots: str | list[str] | None = None) -> RegisteredVersion:
    """Register a saved model as a new version (git tag ``name@vX.Y.Z``).

    Tracks the binary with DVC, commits the ``.mlem`` and ``.dvc`` files, pushes the
    binary to the default DVC remote and tags the commit. ``push_git`` also pushes the
    commit and the tag to the git remote; ``force`` allows a version lower than the
    latest. ``metrics`` (a JSON file or a mapping) and ``plots`` (a folder or files) are
    committed with the version (see :func:`version_records`). Returns a
    :class:`~mlem_lib.registry.models.RegisteredVersion` (name, version, tag, commit).

    Example:
        >>> register("models/rf", bump="minor").tag  # doctest: +SKIP
        'rf@v0.1.0'
    """
    from mlem_lib import events
    from mlem_lib.registry import register as _register

    _need_registry("registering models")
    found = _register(model_path, name=name, version=version, bump=bump, repo=repo,
                      push=push, message=message, push_git=push_git, force=force,
                      metrics=metrics, plots=plots)
    events.emit(lambda: events.model_event(
        events.MODEL_REGISTERED, name=found.name, version=found.version, repo=repo,
        tag=found.tag, commit=found.commit))
    return found


def assign(name: str, stage: str, *, version: str | None = None,
           repo: str = ".", push: bool = False) -> StageAssignment:
    """Put a model version (default: the latest) in a stage (git tag ``name#stage#N``).

    ``push`` pushes the tag to the git remote (a bare repository or URL as ``repo`` is
    always pushed to). Returns a :class:`~mlem_lib.registry.models.StageAssignment`.

    Example:
        >>> assign("rf", "prod", version="v0.1.0").tag  # doctest: +SKIP
        'rf#prod#1'
    """
    from mlem_lib import events
    from mlem_lib.registry import assign as _assign

    _need_registry("assigning stages")
    found = _assign(name, stage, version=version, repo=repo, push=push)
    events.emit(lambda: events.model_event(
        events.STAGE_ASSIGNED, name=found.name, version=found.version, stage=found.stage,
        repo=repo, tag=found.tag, commit=found.commit))
    return found


def version_records(ref: str, *, repo: str = ".") -> VersionRecords:
    """The metrics and plot files registered with a version (``rf@v1.0.0``, ``rf#prod``).

    Example:
        >>> version_records("rf@v1.0.0").metrics  # doctest: +SKIP
        {'accuracy': 0.97}
    """
    from mlem_lib.registry.metrics import version_records as _records

    _need_registry("reading the registry")
    return _records(ref, repo)


def compare_versions(old: str, new: str, *, repo: str = ".") -> list[MetricDelta]:
    """Metric by metric, both versions' values and ``new - old`` (``MetricDelta``).

    Example:
        >>> [d.delta for d in compare_versions("rf@v1.0.0", "rf@v1.1.0")]  # doctest: +SKIP
        [0.02]
    """
    from mlem_lib.registry.metrics import compare_versions as _compare

    _need_registry("reading the registry")
    return _compare(old, new, repo)


def unassign(name: str, stage: str, *, repo: str = ".", push: bool = False) -> RegistryEvent:
    """Take the version out of a stage (GTO's ``name#stage!#N``).

    Example:
        >>> unassign("rf", "prod").event  # doctest: +SKIP
        'unassignment'
    """
    _need_registry("unassigning stages")
    from mlem_lib.registry.lifecycle import unassign as _unassign

    return _unassign(name, stage, repo=repo, push=push)


def deregister(name: str, version: str, *, repo: str = ".",
               push: bool = False) -> RegistryEvent:
    """Withdraw a registered version (GTO's ``name@vX.Y.Z!``); ``name@latest`` moves back.

    Example:
        >>> deregister("rf", "v1.2.0").event  # doctest: +SKIP
        'deregistration'
    """
    _need_registry("deregistering versions")
    from mlem_lib.registry.lifecycle import deregister as _deregister

    return _deregister(name, version, repo=repo, push=push)


def deprecate(name: str, *, repo: str = ".", push: bool = False) -> RegistryEvent:
    """Deprecate a whole model (GTO's ``name@deprecated``): it leaves ``list_models``.

    Example:
        >>> deprecate("rf").event  # doctest: +SKIP
        'deprecation'
    """
    _need_registry("deprecating models")
    from mlem_lib.registry.lifecycle import deprecate as _deprecate

    return _deprecate(name, repo=repo, push=push)


def find_stage_version(name: str, stage: str, *, repo: str = ".") -> str | None:
    """The version of a model in a stage, or ``None``.

    Example:
        >>> find_stage_version("rf", "prod")  # doctest: +SKIP
        'v0.1.0'
    """
    _need_registry("reading the registry")
    from mlem_lib.registry import find_stage_version as _find

    return _find(name, stage, repo=repo)


def find_latest_version(name: str, *, repo: str = ".") -> str | None:
    """The greatest registered version of a model, or ``None``.

    Example:
        >>> find_latest_version("rf")  # doctest: +SKIP
        'v0.1.0'
    """
    _need_registry("reading the registry")
    from mlem_lib.registry import find_latest_version as _find

    return _find(name, repo=repo)


def list_models(repo: str = ".") -> list[ModelSummary]:
    """Every registered model with its latest version and stages (``ModelSummary``).

    Example:
        >>> [m.name for m in list_models()]  # doctest: +SKIP
        ['rf']
    """
    _need_registry("reading the registry")
    from mlem_lib.registry import list_models as _list

    return list(_list(repo))


def history(name: str, repo: str = ".") -> list[RegistryEvent]:
    """A model's registrations and assignments, newest first (``RegistryEvent``).

    Example:
        >>> [e.event for e in history("rf")]  # doctest: +SKIP
        ['assignment', 'registration']
    """
    _need_registry("reading the registry")
    from mlem_lib.registry import history as _history

    return list(_history(name, repo))

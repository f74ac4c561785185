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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlem_lib.meta import DataMeta, ModelMeta


def save(obj: Any, path: str, sample_data: Any = None, *, description: str | None = None,
         labels: list[str] | None = None) -> ModelMeta | DataMeta:
    """Save a model or a data object with metadata inferred from it.

    Writes the binary at ``path`` and the YAML metadata at ``path.mlem``, atomically:
    a save that fails or is killed part-way leaves the previous version loadable.

    Args:
        obj: a model (scikit-learn, xgboost, lightgbm, a function or an object with
            predict-like methods) or data (DataFrame, ndarray, list, dict, scalar).
        path: local path or fsspec URL (``memory://``, ``s3://``) without ``.mlem``.
        sample_data: example input; gives the argument schema and, by calling each
            method on a few rows, the return schema.
        description: free text written into the metadata.
        labels: tags written into the metadata.

    Returns:
        The metadata that was written.

    Example:
        >>> from sklearn.linear_model import LogisticRegression  # doctest: +SKIP
        >>> save(LogisticRegression().fit(X, y), "models/lr", sample_data=X)  # doctest: +SKIP
    """
    from mlem_lib.objects import save as _save

    return _save(obj, path, sample_data, description, labels)


def load_meta(path: str, *, repo: str | None = None) -> ModelMeta | DataMeta:
    """Read the metadata of a saved object without unpickling anything.

    Args:
        path: the object's path or URL (with or without ``.mlem``), or a registry
            reference such as ``rf@v1.2.0``, ``rf#prod`` or ``rf@latest``.
        repo: the git repository holding a registry reference (default: the current one).

    Example:
        >>> load_meta("models/rf").model_type.type  # doctest: +SKIP
        'sklearn'
    """
    from mlem_lib.locate import resolve_reference

    with resolve_reference(path, repo) as local:
        from mlem_lib import mlemfile

        meta, _, _ = mlemfile.read(local)
        return meta


def load(path: str, *, repo: str | None = None, check_requirements: bool = True) -> Any:
    """Load a saved model or data object after checking its artifact's size and hash.

    Raises:
        ObjectNotFoundError: nothing is saved there.
        ArtifactIntegrityError: the artifact was truncated or modified.
        UnsafePathError: the metadata points outside the model's folder.

    Example:
        >>> model = load("models/rf")  # doctest: +SKIP
        >>> model.predict(X)  # doctest: +SKIP
    """
    from mlem_lib.locate import resolve_reference

    with resolve_reference(path, repo) as local:
        from mlem_lib import mlemfile
        from mlem_lib.objects import load_object

        meta, fs, meta_path = mlemfile.read(local)
        return load_object(meta, fs, meta_path, check_requirements)


def apply(model: str | Any, data: Any, method: str = "predict", *, output: str | None = None,
          batch_size: int | None = None, quiet: bool = True, repo: str | None = None) -> Any:
    """Run a model method on data.

    Args:
        model: a saved model's path / reference, or an already loaded model object.
        data: an in-memory value (DataFrame, ndarray, list...) or a file path/URL
            (CSV, Parquet, JSON Lines, .npy, a data ``.mlem``) for batch prediction.
        method: the method to call (``predict``, ``predict_proba``...).
        output: where to write predictions when ``data`` is a file.
        batch_size: rows per chunk when streaming a file.
        quiet: no progress bar.
        repo: the git repository holding a registry reference.

    Returns:
        The predictions (for files without ``output``: all of them in memory).

    Example:
        >>> apply("models/rf", X_test, method="predict_proba")  # doctest: +SKIP
    """
    from mlem_lib.apply import apply as _apply

    return _apply(model, data, method=method, output=output, batch_size=batch_size,
                  quiet=quiet, repo=repo)


def show(path: str, *, repo: str | None = None) -> str:
    """A human-readable table of an object's metadata (what ``mlem show`` prints).

    Example:
        >>> print(show("models/rf"))  # doctest: +SKIP
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
                 quiet: bool = True) -> Any:
    """Apply a model served at ``url`` (by ``mlem serve``) to data, batching requests.

    Example:
        >>> apply_remote("http://127.0.0.1:8080", "data.csv", output="preds.csv")  # doctest: +SKIP
    """
    from mlem_lib.batch import apply_remote as _apply_remote

    return _apply_remote(url, data, method=method, output=output, batch_size=batch_size,
                         auth_token=auth_token, quiet=quiet)


def build(model: str, kind: str, **options: Any) -> Any:
    """Package a saved model: ``kind`` is ``pip``, ``docker`` or ``docker-dir``.

    Options are those of :func:`mlem_lib.build.pip.build_pip`,
    :func:`mlem_lib.build.docker.build_docker` and
    :func:`mlem_lib.build.docker.build_docker_dir`.

    Example:
        >>> build("models/rf", "docker", image="iris-rf:1.0")  # doctest: +SKIP
    """
    from mlem_lib.build import build as _build

    return _build(model, kind, **options)


def deploy(declaration: str, model: str, **options: Any) -> Any:
    """Roll a model out to the target a declaration in ``deployments/`` describes.

    Creates or updates; rerunning with the same model does nothing. Returns the
    recorded deployment state.

    Example:
        >>> deploy("deployments/local.yaml", "models/rf").url  # doctest: +SKIP
    """
    from mlem_lib.deploy import deploy as _deploy

    return _deploy(declaration, model, **options)


def status(declaration: str, **options: Any) -> Any:
    """What a deployment runs now and whether it is healthy.

    Example:
        >>> status("deployments/local.yaml").healthy  # doctest: +SKIP
    """
    from mlem_lib.deploy import status as _status

    return _status(declaration, **options)


def remove(declaration: str, **options: Any) -> Any:
    """Tear a deployment down (a no-op when it is already gone).

    Example:
        >>> remove("deployments/local.yaml")  # doctest: +SKIP
    """
    from mlem_lib.deploy import remove as _remove

    return _remove(declaration, **options)


# --- registry ---

if TYPE_CHECKING:
    from mlem_lib.registry.models import (
        ModelSummary,
        RegisteredVersion,
        RegistryEvent,
        StageAssignment,
    )


def register(model_path: str, *, name: str | None = None, version: str | None = None,
             bump: str | None = None, repo: str = ".", push: bool = True,
             message: str | None = None) -> RegisteredVersion:
    """Register a saved model as a new version (git tag ``name@vX.Y.Z``).

    Tracks the binary with DVC, commits the ``.mlem`` and ``.dvc`` files, pushes the
    binary to the default DVC remote and tags the commit. Returns a
    :class:`~mlem_lib.registry.models.RegisteredVersion` (name, version, tag, commit).

    Example:
        >>> register("models/rf", bump="minor").tag  # doctest: +SKIP
        'rf@v0.1.0'
    """
    from mlem_lib.registry import register as _register

    return _register(model_path, name=name, version=version, bump=bump, repo=repo, push=push,
                     message=message)


def assign(name: str, stage: str, *, version: str | None = None,
           repo: str = ".") -> StageAssignment:
    """Put a model version (default: the latest) in a stage (git tag ``name#stage#N``).

    Returns a :class:`~mlem_lib.registry.models.StageAssignment`.

    Example:
        >>> assign("rf", "prod", version="v0.1.0").tag  # doctest: +SKIP
        'rf#prod#1'
    """
    from mlem_lib.registry import assign as _assign

    return _assign(name, stage, version=version, repo=repo)


def find_stage_version(name: str, stage: str, *, repo: str = ".") -> str | None:
    """The version of a model in a stage, or ``None``.

    Example:
        >>> find_stage_version("rf", "prod")  # doctest: +SKIP
        'v0.1.0'
    """
    from mlem_lib.registry import find_stage_version as _find

    return _find(name, stage, repo=repo)


def find_latest_version(name: str, *, repo: str = ".") -> str | None:
    """The greatest registered version of a model, or ``None``.

    Example:
        >>> find_latest_version("rf")  # doctest: +SKIP
        'v0.1.0'
    """
    from mlem_lib.registry import find_latest_version as _find

    return _find(name, repo=repo)


def list_models(repo: str = ".") -> list[ModelSummary]:
    """Every registered model with its latest version and stages (``ModelSummary``).

    Example:
        >>> [m.name for m in list_models()]  # doctest: +SKIP
        ['rf']
    """
    from mlem_lib.registry import list_models as _list

    return list(_list(repo))


def history(name: str, repo: str = ".") -> list[RegistryEvent]:
    """A model's registrations and assignments, newest first (``RegistryEvent``).

    Example:
        >>> [e.event for e in history("rf")]  # doctest: +SKIP
        ['assignment', 'registration']
    """
    from mlem_lib.registry import history as _history

    return list(_history(name, repo))

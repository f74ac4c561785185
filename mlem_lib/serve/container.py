"""The entrypoint of generated Docker images: ``python -m mlem_lib.serve.container [serve]``.

SageMaker starts images as ``docker run IMAGE serve``; Heroku runs the CMD with
``$PORT`` set; plain ``docker run`` uses the defaults. Everything comes from
the environment:

* ``MLEM_MODEL``: the model path (default ``/opt/ml/model/model`` when
  ``/opt/ml/model/model.mlem`` exists, which is where SageMaker unpacks
  ``model.tar.gz``, else ``/app/model/model``);
* ``MLEM_HOST`` (default ``0.0.0.0``);
* the port: ``SAGEMAKER_BIND_TO_PORT``, else ``PORT``, else 8080;
* ``MLEM_WORKERS`` (default 1), ``MLEM_AUTH_TOKEN``, ``MLEM_MAX_BODY_MB``,
  ``MLEM_SAGEMAKER_METHOD``.

Example:
    >>> # docker run -e PORT=5000 --network host iris-rf:1.0 serve
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

SAGEMAKER_MODEL = "/opt/ml/model/model"
APP_MODEL = "/app/model/model"
USAGE = "usage: python -m mlem_lib.serve.container [serve]"


def model_path(env: Mapping[str, str] | None = None) -> str:
    """The model to serve: ``MLEM_MODEL``, else SageMaker's location if it exists, else /app.

    Example:
        >>> model_path({"MLEM_MODEL": "/srv/rf"})
        '/srv/rf'
    """
    env = os.environ if env is None else env
    if env.get("MLEM_MODEL"):
        return env["MLEM_MODEL"]
    if os.path.exists(SAGEMAKER_MODEL + ".mlem"):
        return SAGEMAKER_MODEL
    return APP_MODEL


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the container's model; returns the exit code."""
    from mlem_lib.errors import MlemError
    from mlem_lib.serve.runner import run
    from mlem_lib.serve.settings import default_port

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + (__doc__ or ""))
        return 0
    if args and args != ["serve"]:
        print(f"{USAGE}\nunknown arguments: {' '.join(args)}", file=sys.stderr)
        return 2
    try:
        run(model_path(), host=os.environ.get("MLEM_HOST") or "0.0.0.0",
            port=default_port(), workers=int(os.environ.get("MLEM_WORKERS") or 1),
            auth_token=os.environ.get("MLEM_AUTH_TOKEN") or None)
    except MlemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

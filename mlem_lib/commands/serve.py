"""``mlem serve``: serve a saved model over HTTP."""

from __future__ import annotations

import argparse
from typing import Any

DESCRIPTION = """\
Serve a saved model with a FastAPI app generated from its metadata:
POST /<method> for every method (MLEM's {"data": ...} bodies, also CSV, Parquet and .npy),
GET /interface.json, /health, SageMaker's /ping and /invocations, a page to try the model
at /, docs at /docs and Prometheus metrics at /metrics.
Stop it with Ctrl-C or SIGTERM: requests in flight finish first."""

EXAMPLES = """\
examples:
  mlem serve models/rf
  mlem serve models/rf --host 0.0.0.0 --port 9000 --workers 2
  mlem serve models/rf --batch-max-size 64 --batch-max-latency-ms 5
  mlem serve models/rf --runtime onnx      # answered by ONNX Runtime, same interface
  mlem serve rf#prod --auth-token-file /run/secrets/mlem-token --auth-docs
  mlem serve models/rf --log-format json --no-metrics
  curl -X POST localhost:8080/predict -H 'Content-Type: application/json' \\
       -d '{"data": {"values": [{"sepal_length": 5.1, ...}]}}'
MLEM's spellings work too:
  mlem serve models/rf fastapi -c port=3000          (MLEM 0.2)
  mlem serve fastapi --model models/rf --port 3000   (MLEM 0.4)
"""

# MLEM fastapi server options that change nothing here (its serializers, interface
# rewriting and middlewares are MLEM's own); anything else given with -c is an error
MLEM_SERVER_OPTIONS = {"request_serializer", "response_serializer", "standardize",
                       "methods", "middlewares", "debug", "additional_source_files"}


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a model over HTTP (FastAPI + uvicorn)",
                       description=DESCRIPTION, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", nargs="?",
                   help="model path or URL (with or without .mlem), a registry reference "
                        "like rf@v1.0.0 / rf#prod, or a registered name (its latest version)")
    p.add_argument("server", nargs="?", help="MLEM's server name: fastapi (the only one)")
    p.add_argument("-m", "--model", help="the model, when the first argument is the server "
                                         "(MLEM 0.4: mlem serve fastapi --model models/rf)")
    p.add_argument("-c", "--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="server option, MLEM style: host, port")
    p.add_argument("-p", "--project", help="MLEM project (folder, bucket or git repository) "
                                           "the model path is in")
    p.add_argument("--rev", help="git revision of --project (or of this repository)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=None,
                   help="TCP port (default: $PORT, else 8080)")
    p.add_argument("--workers", type=int, default=1,
                   help="uvicorn worker processes (default 1)")
    p.add_argument("--auth-token-file", default=None, metavar="PATH",
                   help="require 'Authorization: Bearer TOKEN' on model endpoints, with "
                        "TOKEN read from this file (default: $MLEM_AUTH_TOKEN_FILE, else "
                        "$MLEM_AUTH_TOKEN; /health and /ping stay open)")
    p.add_argument("--auth-token", default=None, metavar="TOKEN",
                   help="the token itself; other users see it in `ps`: prefer "
                        "--auth-token-file or $MLEM_AUTH_TOKEN")
    p.add_argument("--auth-docs", action="store_true", default=None,
                   help="require the token on /docs, /openapi.json and /interface.json "
                        "too (default: $MLEM_AUTH_DOCS)")
    p.add_argument("--max-body-mb", type=float, default=None,
                   help="reject request bodies larger than this with 413 "
                        "(default: $MLEM_MAX_BODY_MB, else 100)")
    p.add_argument("--batch-max-size", type=int, default=None, metavar="ROWS",
                   help="merge concurrent requests to a method into one model call of up to "
                        "ROWS rows; each caller still gets its own rows back (default: "
                        "$MLEM_BATCH_MAX_SIZE, else 0: off)")
    p.add_argument("--batch-max-latency-ms", type=float, default=None, metavar="MS",
                   help="the longest a request waits for others to join its batch; a lone "
                        "request never waits (default: $MLEM_BATCH_MAX_LATENCY_MS, else 5)")
    p.add_argument("--runtime", choices=("native", "onnx", "auto"), default=None,
                   help="what answers the model's methods: native (the model itself), onnx "
                        "(its ONNX export, made on the fly with a parity check and cached "
                        "by model hash; methods the graph lacks stay native) or auto (onnx "
                        "when the export passes its parity check, else native, saying why) "
                        "(default: $MLEM_MODEL_RUNTIME, else native)")
    p.add_argument("--onnx-model", default=None, metavar="PATH",
                   help="with --runtime onnx|auto: an export of this model made with `mlem "
                        "build MODEL onnx` to use instead of exporting one")
    p.add_argument("--no-metrics", dest="metrics", action="store_false", default=None,
                   help="no Prometheus metrics at /metrics (default: on, unless "
                        "$MLEM_METRICS=0)")
    p.add_argument("--log-format", choices=("text", "json"), default=None,
                   help="json: one JSON object per log line and an access log line per "
                        "request on stdout (default: $MLEM_LOG_FORMAT, else text)")
    p.add_argument("--repo", help="git repository for registry references")
    p.set_defaults(func=_serve)


TOKEN_IN_ARGV_WARNING = ("warning: --auth-token puts the token on the command line, where "
                         "every user of this machine can read it (ps); use --auth-token-file "
                         "or MLEM_AUTH_TOKEN")


def _model_and_server(args: argparse.Namespace) -> str:
    """The model of ``mlem serve MODEL [SERVER]`` or ``mlem serve SERVER --model MODEL``;
    applies ``-c host=... -c port=...``."""
    import sys

    from mlem_lib.compat.objects import parse_options
    from mlem_lib.errors import MetadataError, ServeError

    model, server = (args.model, args.path) if args.model else (args.path, args.server)
    if args.model and args.server:
        raise ServeError(f"unexpected argument {args.server!r}: give the model once "
                         "(mlem serve MODEL fastapi, or mlem serve fastapi --model MODEL)")
    if not model:
        raise ServeError("no model given: mlem serve MODEL (or mlem serve fastapi --model "
                         "MODEL)")
    if server not in (None, "fastapi"):
        raise ServeError(f"MLEM's {server} server is not supported: mlem serve serves the "
                         "model with FastAPI (MLEM's fastapi server, same HTTP API)")
    try:
        conf = parse_options(args.conf)
    except MetadataError as exc:
        raise ServeError(str(exc)) from None
    for key, value in conf.items():
        if key in ("host", "server.host"):
            args.host = str(value)
        elif key in ("port", "server.port"):
            try:
                args.port = int(value)
            except (TypeError, ValueError):
                raise ServeError(f"-c {key}={value}: the port must be a number") from None
        elif key.split(".")[0] in MLEM_SERVER_OPTIONS or key == "type":
            print(f"warning: MLEM server option {key!r} is not used (requests and answers "
                  "follow the saved schema)", file=sys.stderr)
        else:
            raise ServeError(f"-c {key}: not a server option (host, port)")
    return str(model)


def _serve(args: argparse.Namespace) -> int:
    import sys

    from mlem_lib.compat.cli import model_in_project
    from mlem_lib.errors import ServeError
    from mlem_lib.serve.runner import run

    model = _model_and_server(args)

    if args.max_body_mb is not None and args.max_body_mb <= 0:
        raise ServeError(f"--max-body-mb must be positive, got {args.max_body_mb}")
    if args.batch_max_size is not None and args.batch_max_size < 0:
        raise ServeError(f"--batch-max-size must be 0 (off) or more, got {args.batch_max_size}")
    if args.batch_max_latency_ms is not None and args.batch_max_latency_ms < 0:
        raise ServeError("--batch-max-latency-ms must be 0 or more, got "
                         f"{args.batch_max_latency_ms}")
    if args.auth_token:
        print(TOKEN_IN_ARGV_WARNING, file=sys.stderr, flush=True)
    with model_in_project(model, args.project, args.rev) as path:
        run(path, host=args.host, port=args.port, workers=args.workers,
            auth_token=args.auth_token, repo=args.repo, max_body_mb=args.max_body_mb,
            auth_token_file=args.auth_token_file, auth_docs=args.auth_docs,
            batch_max_size=args.batch_max_size,
            batch_max_latency_ms=args.batch_max_latency_ms,
            model_runtime=args.runtime, onnx_model=args.onnx_model,
            metrics=args.metrics, log_format=args.log_format)
    return 0

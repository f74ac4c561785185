"""``mlem apply`` and ``mlem apply-remote``: batch predictions over files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

FORMATS_HELP = ("DATA may be CSV, Parquet, JSON Lines (.jsonl), .npy or a MLEM data object "
                "(*.mlem), as a local path or any fsspec URL (s3://...). OUTPUT's extension "
                "picks its format: .csv, .parquet, .jsonl, .json (one array of rows) or .npy; "
                "CSV and JSON may be compressed (.csv.gz, .jsonl.bz2, .json.xz). 2-D "
                "predictions get named columns: proba_<class> for predict_proba.")

APPLY_DESCRIPTION = f"""\
Run a model method over a data file in chunks: read, check against the method's saved
schema, predict and write, so memory stays flat however big the file is. Output rows keep
the input's order, and the output file appears only when every row was written. A bad
value is reported with its row (counted from 1, header not counted) and column. An input
without rows (an empty file, or a header only) gives an empty output (with -o: a file with
the header and no rows; without: []) and a note on stderr.
{FORMATS_HELP}
Without -o the predictions are printed as JSON."""

APPLY_EXAMPLES = """\
examples:
  mlem apply models/rf data/test.parquet -m predict_proba -o preds.parquet
  mlem apply models/rf s3://bucket/big.csv -o s3://bucket/preds.csv --batch-size 100000
  mlem apply rf#prod data/test.jsonl
  mlem apply models/rf data/test.csv -m predict_proba --keep-columns id -o preds.csv.gz
  mlem apply models/sentiment reviews.csv --column text --with-input -o scored.json
"""

REMOTE_DESCRIPTION = f"""\
Send a data file, batch by batch, to a model served by `mlem serve` (or MLEM 0.4's
server) and collect the predictions. {FORMATS_HELP}"""

REMOTE_EXAMPLES = """\
examples:
  mlem apply-remote http://127.0.0.1:8080 data/test.csv -o preds.csv
  mlem apply-remote https://models.example.com data.parquet -m predict_proba \\
       --auth-token-file ~/.config/mlem/token
"""


def _common(p: argparse.ArgumentParser, default_batch: int) -> None:
    p.add_argument("data", help="input file path or URL")
    p.add_argument("-m", "--method", default="predict",
                   help="model method to call (default: predict)")
    p.add_argument("-o", "--output", default=None,
                   help="where to write predictions (default: print them as JSON); without "
                        "an extension, a data object (OUTPUT + OUTPUT.mlem) as in MLEM")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help=f"rows per chunk (default: {default_batch:,})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--column", metavar="NAME",
                   help="the input column a model of one column reads (a text model "
                        "applied to the 'text' column of a CSV); default: the only column")
    p.add_argument("--keep-columns", metavar="A,B", type=_names,
                   help="input columns to write next to the predictions (e.g. id)")
    p.add_argument("--with-input", action="store_true",
                   help="write every input column next to the predictions")


def _names(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more column names, comma-separated")
    return names


# Same values as mlem_lib.batch's defaults (a test checks); not imported so that
# ``mlem --help`` does not pay for pydantic.
DEFAULT_BATCH_SIZE = 250_000
DEFAULT_REMOTE_BATCH_SIZE = 5_000


def register(sub: Any) -> None:
    p = sub.add_parser("apply", help="run a model over a data file (streamed, batched)",
                       description=APPLY_DESCRIPTION, epilog=APPLY_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model path or URL, a registry reference like "
                                 "rf@v1.0.0 / rf#prod, or a registered name (its latest "
                                 "version, as in MLEM)")
    _common(p, DEFAULT_BATCH_SIZE)
    p.add_argument("--repo", help="git repository for registry references")
    mlem_apply_options(p)
    p.set_defaults(func=_apply)

    r = sub.add_parser("apply-remote", help="run a served model over a data file, in batches",
                       description=REMOTE_DESCRIPTION, epilog=REMOTE_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("url", help="base URL of the model server, e.g. http://127.0.0.1:8080")
    _common(r, DEFAULT_REMOTE_BATCH_SIZE)
    r.add_argument("--auth-token-file", default=None, metavar="PATH",
                   help="file holding the server's bearer token (default: "
                        "$MLEM_AUTH_TOKEN_FILE, else $MLEM_AUTH_TOKEN)")
    r.add_argument("--auth-token", default=None, metavar="TOKEN",
                   help="the token itself; other users see it in `ps`: prefer "
                        "--auth-token-file or $MLEM_AUTH_TOKEN")
    r.set_defaults(func=_apply_remote)


def _report(result: Any, data: str) -> int:
    from mlem_lib.batch import ApplySummary

    if isinstance(result, ApplySummary):
        if result.rows == 0:
            print(f"note: {data} has no rows: {result.output} holds the header and no "
                  "predictions", file=sys.stderr)
        print(f"wrote {result.rows:,} predictions ({result.method}) to {result.output} "
              f"in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)")
        return 0
    if hasattr(result, "__len__") and len(result) == 0:
        print(f"note: {data} has no rows: no predictions", file=sys.stderr)
    import orjson

    from mlem_lib.data.convert import to_jsonable

    sys.stdout.buffer.write(orjson.dumps(to_jsonable(result), option=orjson.OPT_SERIALIZE_NUMPY))
    sys.stdout.buffer.write(b"\n")
    return 0


def mlem_apply_options(p: argparse.ArgumentParser) -> None:
    """MLEM's options of ``apply``: its project/revision, and flags that change nothing
    here (files are read by their extension, JSON is the default output)."""
    p.add_argument("-p", "--project", help="MLEM project (folder, bucket or git repository) "
                                           "the model path is in")
    p.add_argument("--rev", help="git revision of --project (or of this repository)")
    p.add_argument("-b", "--batch_size", dest="batch_size", type=int, help=argparse.SUPPRESS)
    p.add_argument("-i", "--import", dest="mlem_import", action="store_true",
                   help=argparse.SUPPRESS)
    p.add_argument("--it", "--import-type", dest="mlem_import_type", help=argparse.SUPPRESS)
    p.add_argument("--json", dest="mlem_json", action="store_true", help=argparse.SUPPRESS)


def _apply(args: argparse.Namespace) -> int:
    import mlem_lib.api as mlem
    from mlem_lib.compat.cli import model_in_project
    from mlem_lib.formats import _split_ext

    output = args.output
    # MLEM's `-o prediction` (no extension) wrote a data object; other extensions name a file
    as_object = output is not None and _split_ext(output) == ("", None)
    with model_in_project(args.model, args.project, args.rev) as model:
        result = mlem.apply(model, args.data, method=args.method,
                            output=None if as_object else output,
                            batch_size=args.batch_size, quiet=args.quiet, repo=args.repo,
                            column=args.column, keep_columns=args.keep_columns,
                            with_input=args.with_input)
    if as_object:  # MLEM wrote predictions as a data object: `-o prediction`
        mlem.save(result, output)
        print(f"saved {len(result) if hasattr(result, '__len__') else 1:,} predictions "
              f"({args.method}) as the data object {output}")
        return 0
    return _report(result, args.data)


def _apply_remote(args: argparse.Namespace) -> int:
    import os

    import mlem_lib.api as mlem
    from mlem_lib.commands.serve import TOKEN_IN_ARGV_WARNING
    from mlem_lib.serve.settings import read_token_file

    token = args.auth_token
    if token:
        print(TOKEN_IN_ARGV_WARNING, file=sys.stderr, flush=True)
    elif args.auth_token_file:
        token = read_token_file(args.auth_token_file)
    else:
        token = os.environ.get("MLEM_AUTH_TOKEN") or None
        if token is None and os.environ.get("MLEM_AUTH_TOKEN_FILE"):
            token = read_token_file(os.environ["MLEM_AUTH_TOKEN_FILE"])
    return _report(mlem.apply_remote(args.url, args.data, method=args.method,
                                     output=args.output, batch_size=args.batch_size,
                                     auth_token=token, quiet=args.quiet, column=args.column,
                                     keep_columns=args.keep_columns,
                                     with_input=args.with_input), args.data)

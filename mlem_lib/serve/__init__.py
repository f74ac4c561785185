"""Serving models over HTTP: the generated FastAPI app, its codecs, the runner and the
container entrypoint.

Nothing heavy is imported here; see :func:`mlem_lib.serve.app.create_app` and
:func:`mlem_lib.serve.runner.run`.
"""

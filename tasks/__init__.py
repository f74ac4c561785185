"""Prefect tasks over mlem_lib: one module per verb group.

``tasks.models`` (save, infer), ``tasks.registry`` (register, assign, find),
``tasks.build`` (pip, docker, push), ``tasks.deploy`` (deploy, status, smoke
test, remove), ``tasks.apply`` (batch prediction) and ``tasks.credentials``
(the ``HerokuCredentials`` block).

Example:
    >>> from tasks.models import save_model  # doctest: +SKIP
"""

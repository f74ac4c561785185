"""The demo project's own tasks (training the iris model, calling it).

mlem_lib's tasks are :mod:`mlem_lib.prefect.tasks`; this folder is not installed.
"""

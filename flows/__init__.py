"""The demo project's flows: ``train_iris`` trains a model and hands it to mlem_lib's flows.

The repository root is a Prefect project of its own, laid out the way users lay
theirs out (``flows/``, ``tasks/``, ``prefect.yaml``). These folders are not
installed: mlem_lib's flows and tasks live in :mod:`mlem_lib.prefect`, so a
project's own ``flows`` and ``tasks`` packages never shadow them.
"""

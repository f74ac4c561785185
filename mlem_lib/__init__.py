"""mlem_lib: get trained models into production, with metadata that is inferred, not declared.

The public verbs live in :mod:`mlem_lib.api`::

    import mlem_lib.api as mlem
    mlem.save(model, "models/rf", sample_data=X)
"""

__version__ = "0.1.0"

"""Sub-command groups of the ``mlem`` CLI, one module per group."""

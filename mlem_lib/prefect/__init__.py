"""mlem_lib's Prefect layer: blocks, tasks and flows over the library's verbs.

The core (everything else in ``mlem_lib``) never imports this package; it imports
Prefect, the core does not. Installed import names are unambiguous, so a project
with its own ``tasks/`` and ``flows/`` folders can use them side by side:

- :mod:`mlem_lib.prefect.blocks`: credential blocks (``HerokuCredentials``), registered
  with Prefect through the ``prefect.collections`` entry point;
- :mod:`mlem_lib.prefect.tasks`: one task per verb (save, register, build, deploy, apply);
- :mod:`mlem_lib.prefect.flows`: the flows composed from them (register, package, roll
  out, redeploy a stage, batch predictions).

Example:
    >>> from mlem_lib.prefect.flows import register_model, rollout_model
    >>> register_model.name, rollout_model.name
    ('register-model', 'rollout-model')
"""

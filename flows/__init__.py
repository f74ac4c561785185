"""Prefect flows that take a trained model to production.

``register_model`` / ``register_saved_model`` (save, register, model card),
``package_model`` (pip / docker), ``rollout_model`` (deploy, smoke test, roll
back, promote), ``redeploy_stage`` (scheduled: follow a stage) and
``train_iris`` (the demo job: ``python -m flows.train_iris``). Deployments of
them are declared in ``prefect.yaml``.
"""

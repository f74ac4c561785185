"""The parameter schemas of our flows, as Prefect builds them for deployments: every
parameter and field described, every pattern shown to users as it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema
from rich.text import Text

from mlem_lib.prefect import flows

FLOWS = [flows.register_model, flows.register_saved_model, flows.package_model,
         flows.rollout_model, flows.redeploy_stage, flows.batch_apply, flows.assign_model]


def schema_of(flow: Any) -> dict[str, Any]:
    return dict(parameter_schema(flow).model_dump_for_openapi())


def fields(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("Model.field", property)`` for every field of every model in the schema."""
    for model, definition in schema.get("definitions", {}).items():
        for name, prop in definition.get("properties", {}).items():
            yield f"{model}.{name}", prop


def patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from patterns(item)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_every_typed_parameter_has_its_schema(flow):
    """Prefect drops every type when it cannot resolve a flow's hints (e.g. a return type
    imported only for type checkers): the UI form and the validation are then lost."""
    import inspect
    import typing

    hints = typing.get_type_hints(flow.fn)
    schema = schema_of(flow)
    for name in inspect.signature(flow.fn).parameters:
        if hints[name] is not Any:
            assert {"$ref", "type", "anyOf"} & set(schema["properties"][name]), name


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_every_parameter_and_field_has_a_description(flow):
    schema = schema_of(flow)
    undescribed = [name for name, prop in schema["properties"].items()
                   if not prop.get("description")]
    undescribed += [name for name, prop in fields(schema) if not prop.get("description")]
    assert undescribed == []


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_patterns_reach_users_unchanged(flow):
    """Prefect's CLI prints validation errors through Rich markup, where ``[a-z]`` is a
    style tag: the stage pattern ``^[a-z][a-z0-9-]*$`` was shown as ``^*$``."""
    found = list(patterns(schema_of(flow)))
    for pattern in found:
        assert Text.from_markup(f"does not match '{pattern}'").plain == \
            f"does not match '{pattern}'"
    if flow in (flows.rollout_model, flows.redeploy_stage):
        assert found, "the stage field has a pattern"


def test_the_stage_pattern_is_the_registrys_rule():
    """The stage accepts what GTO accepts as a stage name and nothing else."""
    from gto.constants import check_string_is_valid

    from mlem_lib.prefect.flows.params import NAME_PATTERN, RolloutRequest

    for stage in ("prod", "staging-eu", "Prod2", "team/prod", "a", "Bad Stage!", "-prod",
                  "prod-", "pr#od", ""):
        try:
            RolloutRequest(model="iris@v1.0.0", stage=stage or None)
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == (stage == "" or check_string_is_valid(stage)), stage
    assert NAME_PATTERN in list(patterns(schema_of(flows.rollout_model)))

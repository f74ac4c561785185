"""The model card a registration publishes: markdown for humans, a table row for history.

Example:
    >>> from mlem_lib.meta import ModelMeta, ModelType
    >>> md = render_card(ModelMeta(model_type=ModelType(type="sklearn")), "iris", "v0.0.1",
    ...                  metrics={"accuracy": 0.97})
    >>> "| accuracy | 0.97 |" in md
    True
"""

from __future__ import annotations

import os
from typing import Any

from mlem_lib.meta import ModelMeta


def _schema(dtype: Any) -> str:
    try:
        text = str(dtype.describe())
    except Exception:  # an exotic data type without a description still gets a card
        text = str(getattr(dtype, "type", "?"))
    return text.replace("|", "\\|").replace("\n", " ")


def render_card(meta: ModelMeta, name: str, version: str | None, *,
                metrics: dict[str, float] | None = None, tag: str | None = None,
                commit: str | None = None, path: str | None = None,
                plots: dict[str, str] | None = None) -> str:
    """Markdown: version, framework, methods with their schemas, requirements, metrics,
    and ``plots`` (``{name: local file}``): images inline, other files listed."""
    lines = [f"# Model `{name}` {version or ''}".rstrip(), ""]
    if meta.description:
        lines += [meta.description, ""]
    facts = [("Framework", meta.model_type.type), ("Version", version), ("Tag", tag),
             ("Commit", commit[:12] if commit else None), ("Path", path),
             ("Model hash", meta.model_hash[:16] or None),
             ("Labels", ", ".join(meta.labels) or None)]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in facts if v]
    lines += ["", "## Methods", "", "| Method | Input | Output |", "|---|---|---|"]
    for method, sig in meta.model_type.methods.items():
        arg = _schema(sig.args[0].type_) if sig.args else "(none)"
        lines.append(f"| `{method}` | {arg} | {_schema(sig.returns)} |")
    if metrics:
        lines += ["", "## Metrics", "", "| Metric | Value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in metrics.items()]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [_plot(name, file) for name, file in plots.items()]
    reqs = [r.pip_line() for r in meta.python_requirements()]
    reqs += [f"{r.package_name} (apt)" for r in meta.unix_requirements()]
    reqs += [f"{r.name} (local code)" for r in meta.custom_requirements()]
    lines += ["", "## Requirements", ""]
    lines += [f"- `{r}`" for r in reqs] or ["- (none recorded)"]
    return "\n".join(lines) + "\n"


_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".gif": "image/gif", ".svg": "image/svg+xml"}


def _plot(name: str, file: str) -> str:
    """An image embedded as a data URI (the card is self-contained), else a list item.

    Example:
        >>> _plot("models/rf.plots/scores.csv", "scores.csv")
        '- `models/rf.plots/scores.csv`'
    """
    import base64

    media = _IMAGE_TYPES.get(os.path.splitext(name)[1].lower())
    if media is None or not os.path.isfile(file):
        return f"- `{name}`"
    with open(file, "rb") as f:
        data = base64.b64encode(f.read()).decode()
    return f"![{os.path.basename(name)}](data:{media};base64,{data})\n"


def card_row(meta: ModelMeta, name: str, version: str | None, *,
             metrics: dict[str, float] | None = None, tag: str | None = None,
             commit: str | None = None) -> dict[str, Any]:
    """One table row describing the version (what the table artifact lists).

    Example:
        >>> from mlem_lib.meta import ModelMeta, ModelType
        >>> card_row(ModelMeta(model_type=ModelType(type="sklearn")), "rf", "v1.0.0")["framework"]
        'sklearn'
    """
    row: dict[str, Any] = {"model": name, "version": version or "", "tag": tag or "",
                           "commit": (commit or "")[:12], "framework": meta.model_type.type,
                           "methods": ", ".join(meta.model_type.methods),
                           "model_hash": meta.model_hash[:16]}
    row.update({k: round(float(v), 6) for k, v in (metrics or {}).items()})
    return row

"""Metrics and plots kept with a version.

At registration the metrics (a JSON file or a mapping) are written next to the model's
``.mlem`` as ``<model>.metrics.json`` and the plots (a folder or files) are copied into
``<model>.plots/``; both are committed with the version, and the tag's annotation lists
them (``metrics: models/rf.metrics.json``, ``plots: models/rf.plots``). Reading a
version's metrics needs only git: the commit and the annotation.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from mlem_lib.errors import RegistryError
from mlem_lib.registry import git

PLOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif", ".json", ".csv", ".html")


class VersionRecords(BaseModel):
    """What a registered version carries besides the model: metrics and plot files.

    Example:
        >>> VersionRecords(tag="rf@v1.0.0", metrics={"acc": 0.9}).metrics["acc"]
        0.9
    """

    tag: str
    metrics: dict[str, Any] = {}
    metrics_path: str | None = None
    plots: list[str] = []
    plots_path: str | None = None
    tagger: str | None = None
    tagged_at: str | None = None


class MetricDelta(BaseModel):
    """One row of ``registry compare``: a metric in two versions and the change."""

    metric: str
    old: Any = None
    new: Any = None
    delta: float | None = None


def flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics (DVC's ``{"test": {"acc": 0.9}}``) as dotted names.

    Example:
        >>> flatten({"test": {"acc": 0.9}, "loss": 0.1})
        {'test.acc': 0.9, 'loss': 0.1}
    """
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def read_metrics_file(path: str) -> dict[str, Any]:
    """The metrics in a JSON (or YAML) file, which must hold a mapping.

    Raises:
        RegistryError: missing, unreadable, or not a mapping.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise RegistryError(f"cannot read the metrics file {path}: "
                            f"{exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
    if not isinstance(data, dict):
        raise RegistryError(f"the metrics file {path} must hold a JSON object "
                            '({"accuracy": 0.97, ...})')
    return data


def _check_numbers(metrics: Mapping[str, Any], source: str) -> None:
    for name, value in flatten(metrics).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise RegistryError(f"metric {name!r} in {source} is {value}: JSON cannot hold "
                                "it; record it as a string or leave it out")


def _plot_files(plots: str | list[str]) -> list[str]:
    items = [plots] if isinstance(plots, str) else list(plots)
    files: list[str] = []
    for item in items:
        if os.path.isdir(item):
            for base, _, names in sorted(os.walk(item)):
                files += [os.path.join(base, n) for n in sorted(names)
                          if n.lower().endswith(PLOT_SUFFIXES)]
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise RegistryError(f"no plot file or folder at {item}")
    if not files:
        raise RegistryError(f"no plots ({', '.join(PLOT_SUFFIXES)}) in {', '.join(items)}")
    return files


def stage_records(root: str, rel_object: str, metrics: str | Mapping[str, Any] | None,
                  plots: str | list[str] | None) -> list[str]:
    """Write the metrics and copy the plots next to the model; returns the new paths
    relative to ``root`` (to be committed), metrics first.

    Raises:
        RegistryError: unreadable metrics, a non-finite number, or no plots found.
    """
    data = None
    if metrics is not None:  # everything is read and checked before anything is written
        data = read_metrics_file(metrics) if isinstance(metrics, str) else dict(metrics)
        _check_numbers(data, metrics if isinstance(metrics, str) else "metrics")
    files = _plot_files(plots) if plots is not None else []
    written: list[str] = []
    if data is not None:
        rel = f"{rel_object}.metrics.json"
        with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")
        written.append(rel)
    if files:
        rel_dir = f"{rel_object}.plots"
        target = os.path.join(root, rel_dir)
        if os.path.isdir(target):
            shutil.rmtree(target)  # the folder holds the plots of the version being made
        os.makedirs(target)
        for src in files:
            base = os.path.basename(src)
            shutil.copyfile(src, os.path.join(target, base))
            written.append(f"{rel_dir}/{base}")
    return written


def sources_in(root: str, metrics: str | Mapping[str, Any] | None,
               plots: str | list[str] | None) -> list[str]:
    """The given metrics/plots paths that lie inside ``root`` (relative, ``/``-separated):
    the registration does not count them as unrelated changes.
    """
    given = ([metrics] if isinstance(metrics, str) else []) + \
        ([plots] if isinstance(plots, str) else list(plots or []))
    out = []
    for p in given:
        rel = os.path.relpath(os.path.realpath(p), os.path.realpath(root)).replace(os.sep, "/")
        if not rel.startswith("../"):
            out.append(rel)
    return out


def annotation(written: list[str], rel_object: str) -> str:
    """The lines the tag's message gets for the records written.

    Example:
        >>> print(annotation(["models/rf.metrics.json", "models/rf.plots/roc.png"],
        ...                  "models/rf"))
        metrics: models/rf.metrics.json
        plots: models/rf.plots
    """
    lines = []
    if f"{rel_object}.metrics.json" in written:
        lines.append(f"metrics: {rel_object}.metrics.json")
    if any(p.startswith(f"{rel_object}.plots/") for p in written):
        lines.append(f"plots: {rel_object}.plots")
    return "\n".join(lines)


def _tag_info(root: str, tag: str) -> tuple[str, str, str]:
    """(message, tagger, date) of an annotated tag."""
    out = git.run(root, "for-each-ref", f"refs/tags/{tag}",
                  "--format=%(taggername) %(taggeremail)%00%(taggerdate:iso-strict)%00"
                  "%(contents)")
    if not out:
        raise RegistryError(f"no tag {tag} in {root}")
    who, when, message = [*out.split("\0", 2), "", ""][:3]
    return message, who.strip(), when.strip()


def read_records(root: str, tag: str, commit: str) -> VersionRecords:
    """The metrics and plot files of the version tagged ``tag`` (at ``commit``)."""
    message, who, when = _tag_info(root, tag)
    fields = {}
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("metrics", "plots"):
            fields[key.strip()] = value.strip()
    records = VersionRecords(tag=tag, tagger=who or None, tagged_at=when or None)
    if "metrics" in fields:
        text = git.show(root, commit, fields["metrics"])
        if text is None:
            raise RegistryError(f"{tag} names the metrics file {fields['metrics']}, which "
                                f"commit {commit[:12]} does not hold")
        records.metrics = json.loads(text)
        records.metrics_path = fields["metrics"]
    if "plots" in fields:
        prefix = fields["plots"].rstrip("/") + "/"
        records.plots = [f for f in git.files_at(root, commit) if f.startswith(prefix)]
        records.plots_path = fields["plots"]
    return records


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[MetricDelta]:
    """Metric by metric (dotted names, in ``old``'s order then new ones): both values and,
    for numbers, ``new - old``.

    Example:
        >>> [(d.metric, d.delta) for d in compare({"acc": 0.9, "f1": 0.5}, {"acc": 0.95})]
        [('acc', 0.05), ('f1', None)]
    """
    a, b = flatten(old), flatten(new)
    rows = []
    for name in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(name), b.get(name)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y))
        delta = round(float(y) - float(x), 12) if numbers else None  # type: ignore[arg-type]
        rows.append(MetricDelta(metric=name, old=x, new=y, delta=delta))
    return rows


def version_records(ref: str, repo: str = ".") -> VersionRecords:
    """The metrics and plots registered with a version (``rf@v1.0.0``, ``rf#prod``,
    ``rf@latest``).

    Raises:
        VersionNotFoundError: no such model, version or stage.

    Example:
        >>> version_records("rf@v1.0.0").metrics  # doctest: +SKIP
        {'accuracy': 0.97}
    """
    from mlem_lib.locate import resolve_version
    from mlem_lib.registry.remote import registry_root

    with registry_root(repo) as (root, _):
        found = resolve_version(ref, repo=root)
        return read_records(root, found.tag, found.commit)


def compare_versions(old: str, new: str, repo: str = ".") -> list[MetricDelta]:
    """The metric deltas from version ``old`` to version ``new`` (``new - old``).

    Example:
        >>> [d.delta for d in compare_versions("rf@v1.0.0", "rf@v1.1.0")]  # doctest: +SKIP
        [0.02]
    """
    return compare(version_records(old, repo).metrics, version_records(new, repo).metrics)

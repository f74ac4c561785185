"""Module -> distribution look-ups and their on-disk cache (mlem_lib.distributions)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from pathlib import Path

import pytest

from mlem_lib import distributions, plugins


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("MLEM_LIB_CACHE_DIR", str(folder))
    distributions.refresh()
    yield folder
    distributions.refresh()


def _install(site: Path, dist: str, version: str, module: str, *,
             top_level: bool = True, entry_points: str = "") -> Path:
    """Lay out an installed distribution the way pip does: code plus a dist-info folder."""
    (site / module).mkdir(exist_ok=True)
    (site / module / "__init__.py").write_text(f"VERSION = {version!r}\n")
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n\n"
                                   "A description that mentions Name: and Version: again.\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n{info.name}/METADATA,,\n")
    if top_level:
        (info / "top_level.txt").write_text(f"{module}\n")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)
    return info


def _touch_dir(path: Path, before: int) -> None:
    """Make sure a directory's mtime moved (file times can be coarser than two quick edits)."""
    if os.stat(path).st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_matches_importlib_for_installed_and_local_modules(cache_dir):
    known = importlib.metadata.packages_distributions()
    for module in ("sklearn", "yaml", "numpy", "pandas", "cloudpickle", "_pytest"):
        assert distributions.distribution_of(module) in known[module]
        assert distributions.installed_version(module) == importlib.metadata.version(
            distributions.distribution_of(module))
    assert distributions.distribution_of("sklearn.ensemble._forest") == "scikit-learn"
    assert distributions.distribution_of("json") is None
    assert distributions.distribution_of("tests") is None  # local code, not installed
    assert distributions.version_of("no-such-distribution-xyz") is None


def test_distribution_found_from_its_files_when_named_differently(cache_dir, tmp_path,
                                                                  monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "Acme-Toolkit", "3.1", "acmetk_xyz", top_level=False)
    monkeypatch.syspath_prepend(str(site))
    assert distributions.distribution_of("acmetk_xyz") == "Acme-Toolkit"
    assert distributions.installed_version("acmetk_xyz.sub") == "3.1"


def test_cache_is_used_and_dropped_when_packages_change(cache_dir, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    info = _install(site, "fake-pkg-xyz", "1.0", "fakepkg_xyz")
    monkeypatch.syspath_prepend(str(site))
    assert distributions.installed_version("fakepkg_xyz") == "1.0"
    distributions.save_cache()
    [cache_file] = cache_dir.glob("distributions-*.json")
    cached = json.loads(cache_file.read_text())
    assert cached["modules"]["fakepkg_xyz"] == ["fake-pkg-xyz", "1.0"]

    # a new process reads the answer from the file (here: a planted one) ...
    cached["modules"]["fakepkg_xyz"] = ["planted-answer", "9.9"]
    cache_file.write_text(json.dumps(cached))
    distributions.refresh()
    assert distributions.distribution_of("fakepkg_xyz") == "planted-answer"

    # ... until an upgrade replaces the dist-info folder, which changes the site's mtime
    before = os.stat(site).st_mtime_ns
    for child in info.iterdir():
        child.unlink()
    info.rmdir()
    _install(site, "fake-pkg-xyz", "2.0", "fakepkg_xyz")
    _touch_dir(site, before)
    distributions.refresh()
    assert distributions.distribution_of("fakepkg_xyz") == "fake-pkg-xyz"
    assert distributions.installed_version("fakepkg_xyz") == "2.0"


def test_unwritable_cache_dir_is_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MLEM_LIB_CACHE_DIR", str(blocker / "cache"))
    distributions.refresh()
    try:
        assert distributions.distribution_of("yaml") == "PyYAML"
        distributions.save_cache()
    finally:
        distributions.refresh()


def test_plugin_entry_points_come_from_the_cached_index(cache_dir, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "mlem-plugin-xyz", "0.1", "mlem_plugin_xyz",
             entry_points="[console_scripts]\nxyz = mlem_plugin_xyz:main\n\n"
                          "[mlem_lib.models]\nxyz_model = mlem_plugin_xyz:HANDLER\n")
    monkeypatch.syspath_prepend(str(site))
    plugins.refresh()
    try:
        found = {p.name: p for p in plugins.plugins("models")}
        assert found["xyz_model"].ref == "mlem_plugin_xyz:HANDLER"
        assert "mlem-plugin-xyz" in found["xyz_model"].source
    finally:
        monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(site)])
        plugins.refresh()
    assert "xyz_model" not in {p.name for p in plugins.plugins("models")}


def test_resolving_requirements_reads_only_the_modules_asked_about(cache_dir, monkeypatch):
    from mlem_lib import requirements

    def refuse(*args, **kwargs):
        raise AssertionError("scanned every installed distribution")

    monkeypatch.setattr(importlib.metadata, "packages_distributions", refuse)
    monkeypatch.setattr(importlib.metadata, "distributions", refuse)
    reqs = requirements.resolve(["sklearn.ensemble._forest", "numpy", "json"])
    assert [r.pip_line() for r in reqs] == [
        f"numpy=={importlib.metadata.version('numpy')}",
        f"scikit-learn=={importlib.metadata.version('scikit-learn')}"]

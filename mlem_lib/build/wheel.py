"""Writing wheels and sdists directly, without a build backend or network access.

A wheel is a zip file with a ``.dist-info`` folder (``METADATA``, ``WHEEL``,
``RECORD``, ``entry_points.txt``); writing it ourselves takes milliseconds, works
offline and gives byte-identical files for identical inputs (fixed timestamps,
sorted entries), which keeps Docker's layer cache valid across rebuilds.

Example:
    >>> import tempfile
    >>> spec = DistSpec(name="demo-pkg", version="1.0", files={"demo_pkg/__init__.py": b"x = 1\\n"})
    >>> os.path.basename(write_wheel(spec, tempfile.mkdtemp()))
    'demo_pkg-1.0-py3-none-any.whl'
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from dataclasses import dataclass, field

# 1980-01-02: the earliest date a zip entry can carry (plus a day for time zones)
_ZIP_EPOCH = (1980, 1, 2, 0, 0, 0)
_TAR_MTIME = 315619200  # the same instant, for the sdist


@dataclass
class DistSpec:
    """Everything a distribution file needs.

    Attributes:
        name: the distribution name (``iris-rf``).
        version: a PEP 440 version.
        files: path inside the wheel (``pkg/__init__.py``) -> content.
        requires: ``Requires-Dist`` lines (PEP 508).
        scripts: console script name -> ``module:function``.
        summary: one line of description.
        extras: extra name -> its ``Requires-Dist`` lines.
    """

    name: str
    version: str
    files: dict[str, bytes]
    requires: list[str] = field(default_factory=list)
    scripts: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    extras: dict[str, list[str]] = field(default_factory=dict)
    requires_python: str = ">=3.9"
    description: str = ""


def normalize_name(name: str) -> str:
    """The PEP 503 normalised name (``Iris_RF`` -> ``iris-rf``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def file_stem(name: str) -> str:
    """The name as it appears in wheel and sdist file names (``iris-rf`` -> ``iris_rf``)."""
    return normalize_name(name).replace("-", "_")


def metadata_text(spec: DistSpec) -> str:
    """The core metadata (``METADATA`` in a wheel, ``PKG-INFO`` in an sdist)."""
    lines = ["Metadata-Version: 2.1", f"Name: {spec.name}", f"Version: {spec.version}"]
    if spec.summary:
        lines.append(f"Summary: {spec.summary}")
    lines.append(f"Requires-Python: {spec.requires_python}")
    lines += [f"Requires-Dist: {r}" for r in spec.requires]
    for extra, reqs in sorted(spec.extras.items()):
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    text = "\n".join(lines) + "\n"
    if spec.description:
        text += "Description-Content-Type: text/markdown\n\n" + spec.description
    return text


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _add(zf: zipfile.ZipFile, path: str, data: bytes) -> None:
    info = zipfile.ZipInfo(path, date_time=_ZIP_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def write_wheel(spec: DistSpec, target_dir: str) -> str:
    """Write a pure-Python ``py3-none-any`` wheel; returns its path.

    The file is first written under a temporary name and then renamed, so an
    interrupted build never leaves a truncated wheel behind.
    """
    stem = file_stem(spec.name)
    dist_info = f"{stem}-{spec.version}.dist-info"
    meta_files = {
        f"{dist_info}/METADATA": metadata_text(spec).encode(),
        f"{dist_info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: mlem_lib\n"
                               b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    if spec.scripts:
        body = "[console_scripts]\n" + "".join(
            f"{k} = {v}\n" for k, v in sorted(spec.scripts.items()))
        meta_files[f"{dist_info}/entry_points.txt"] = body.encode()
    entries = sorted(spec.files.items()) + sorted(meta_files.items())
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in entries)
    record += f"{dist_info}/RECORD,,\n"
    os.makedirs(target_dir, exist_ok=True)
    path = os.path.join(target_dir, f"{stem}-{spec.version}-py3-none-any.whl")
    tmp = path + ".part"
    with zipfile.ZipFile(tmp, "w") as zf:
        for p, d in entries:
            _add(zf, p, d)
        _add(zf, f"{dist_info}/RECORD", record.encode())
    os.replace(tmp, path)
    return path


def write_sdist(spec: DistSpec, target_dir: str, extra_files: dict[str, bytes]) -> str:
    """Write ``<name>-<version>.tar.gz`` with ``PKG-INFO``, ``extra_files`` and the sources.

    ``extra_files`` carries the project files (``pyproject.toml``, ``README.md``)
    that let a build backend turn the sdist back into a wheel.
    """
    stem = file_stem(spec.name)
    root = f"{stem}-{spec.version}"
    members = {"PKG-INFO": metadata_text(spec).encode(), **extra_files, **spec.files}
    os.makedirs(target_dir, exist_ok=True)
    path = os.path.join(target_dir, f"{root}.tar.gz")
    tmp = path + ".part"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            info.mtime = _TAR_MTIME
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    import gzip

    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                               filename="") as gz:
        gz.write(buf.getvalue())
    os.replace(tmp, path)
    return path

"""How an image installs its pip requirements: a local wheelhouse first, PyTorch's CPU build.

Two things change the requirements layer of :mod:`mlem_lib.build.dockerfile`:

* **a wheelhouse** (``mlem build MODEL docker --wheelhouse DIR``, or ``$MLEM_WHEELHOUSE``):
  the folder's wheels are copied into the context and installed before the package index
  is asked: ``pip install --no-index --find-links`` first, which needs no network when the
  folder holds every requirement (an offline build), and only if that cannot resolve, the
  index with the same folder as extra links;
* **torch**: PyPI's torch for x86-64 Linux is a CUDA build of several GB. A model saved with
  torch gets torch installed in a step of its own, from the wheelhouse when it holds a
  torch wheel, else from PyTorch's CPU index (``torch_index``, default
  :data:`CPU_INDEX`); with ``torch_index`` empty, from the package index like any other
  requirement (a local version label such as ``+cpu``, which PyPI never serves, is dropped).

Example:
    >>> plan = install_plan(["numpy==2.4.6", "torch==2.13.0+cpu"], wheels=[])
    >>> plan.torch_line, plan.torch_index
    ('torch==2.13.0+cpu', 'https://download.pytorch.org/whl/cpu')
    >>> install_plan(["torch==2.13.0+cpu"], wheels=[], torch_index="").requirements
    ['torch==2.13.0']
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field

from mlem_lib.errors import BuildError

#: Where PyTorch publishes its CPU-only builds (of torch and the packages it needs).
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
WHEELHOUSE_ENV = "MLEM_WHEELHOUSE"
CONTEXT_DIR = "wheelhouse"
IMAGE_DIR = "/tmp/mlem/wheelhouse"
_TORCH = re.compile(r"^\s*torch\s*(==|$)", re.IGNORECASE)
_TORCH_WHEEL = re.compile(r"^torch-\d", re.IGNORECASE)


@dataclass
class InstallPlan:
    """What the requirements layer installs and from where.

    Attributes:
        requirements: the lines of ``requirements.txt``.
        wheels: wheel files copied from the wheelhouse (empty: no wheelhouse).
        torch_line: the torch requirement installed in a step of its own, if any.
        torch_index: the index that step uses (``None``: the wheelhouse has torch).
    """

    requirements: list[str]
    wheels: list[str] = field(default_factory=list)
    torch_line: str | None = None
    torch_index: str | None = None


def wheelhouse_folder(folder: str | None) -> str | None:
    """The wheelhouse to use: ``folder``, else ``$MLEM_WHEELHOUSE``; checked to exist.

    Raises:
        BuildError: the folder does not exist or holds no wheel.
    """
    folder = folder or os.environ.get(WHEELHOUSE_ENV) or None
    if folder is None:
        return None
    if not os.path.isdir(folder):
        raise BuildError(f"wheelhouse {folder!r} is not a folder")
    if not any(n.endswith(".whl") for n in os.listdir(folder)):
        raise BuildError(f"wheelhouse {folder!r} holds no wheel (*.whl)")
    return os.path.abspath(folder)


def install_plan(requirements: list[str], wheels: list[str],
                 torch_index: str | None = CPU_INDEX) -> InstallPlan:
    """Decide how ``requirements`` are installed, given the wheelhouse's wheel file names.

    Example:
        >>> install_plan(["torch==2.13.0+cpu"], ["torch-2.13.0+cpu-cp311-none.whl"]).torch_index
    """
    reqs = list(requirements)
    torch_line = next((r for r in reqs if _TORCH.match(r)), None)
    if torch_line is None:
        return InstallPlan(reqs, wheels)
    if any(_TORCH_WHEEL.match(w) for w in wheels):
        return InstallPlan(reqs, wheels, torch_line, None)
    if not torch_index:
        public = re.sub(r"\+[A-Za-z0-9.]+", "", torch_line)
        return InstallPlan([public if r == torch_line else r for r in reqs], wheels)
    return InstallPlan(reqs, wheels, torch_line, torch_index)


def copy_wheels(folder: str, target: str) -> list[str]:
    """Copy (or hard-link) the wheels of ``folder`` into ``target``; returns their names."""
    os.makedirs(target, exist_ok=True)
    names = sorted(n for n in os.listdir(folder) if n.endswith(".whl"))
    for name in names:
        src, dst = os.path.join(folder, name), os.path.join(target, name)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    return names


def dockerfile_lines(plan: InstallPlan, strip_tests: str = "") -> list[str]:
    """The Dockerfile lines of the requirements layer.

    Example:
        >>> print("\\n".join(dockerfile_lines(install_plan(["numpy==2.4.6"], []))))
        COPY requirements.txt /tmp/mlem/requirements.txt
        RUN pip install --no-cache-dir -r /tmp/mlem/requirements.txt
    """
    reqs = "/tmp/mlem/requirements.txt"
    lines = []
    links = f" --find-links {IMAGE_DIR}" if plan.wheels else ""
    if plan.wheels:
        lines.append(f"COPY {CONTEXT_DIR}/ {IMAGE_DIR}/")
    if plan.torch_line is not None:
        line = plan.torch_line.replace('"', "")
        if plan.torch_index is None:  # from the wheelhouse; its dependencies come below
            lines.append(f'RUN pip install --no-cache-dir --no-deps --no-index{links} "{line}"')
        else:
            lines.append("# torch: the CPU build (PyPI's is a CUDA build of several GB)")
            lines.append(f'RUN pip install --no-cache-dir --index-url {plan.torch_index} '
                         f'"{line}"')
    lines.append(f"COPY requirements.txt {reqs}")
    if plan.wheels:
        lines.append(
            f"RUN (pip install --no-cache-dir --no-index{links} -r {reqs} \\\n"
            f"     || (echo 'mlem: the wheelhouse lacks some requirements: asking the "
            f"package index too' \\\n"
            f"         && pip install --no-cache-dir{links} -r {reqs}))" + strip_tests)
    else:
        lines.append(f"RUN pip install --no-cache-dir -r {reqs}" + strip_tests)
    return lines

"""Which compiled build this installation loads.

A cuda-core wheel holds one build of ``_impl`` per CUDA major (``cuda/core/_cu12``, ``cuda/core/_cu13``),
as upstream's merged wheels do. The build for the installed cuda-bindings' major is loaded; where the
wheel holds none for it (a development install builds one major only), the newest build is.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType

from packaging.version import InvalidVersion, Version


def built_majors() -> list[int]:
    """The CUDA majors this installation holds a compiled build for, ascending."""
    here = Path(__file__).parent
    return sorted(int(d.name[3:]) for d in here.glob("_cu*") if d.name[3:].isdigit() and any(d.glob("_impl.*")))


def load() -> ModuleType:
    majors = built_majors()
    if not majors:
        raise ImportError("cuda-core holds no compiled build (cuda/core/_cu<major>/_impl): reinstall cuda-core")
    try:
        wanted = Version(version("cuda-bindings")).major
    except (PackageNotFoundError, InvalidVersion):
        raise ImportError("cuda-core needs cuda-bindings: install cuda-core[cu13]") from None
    major = wanted if wanted in majors else majors[-1]
    return importlib.import_module(f"cuda.core._cu{major}._impl")

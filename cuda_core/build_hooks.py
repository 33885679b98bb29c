"""cuda-core's in-tree build backend: setuptools, plus the Cython extension and what it needs.

As upstream's: ``cuda/core/_impl.pyx`` cimports the ``.pxd`` files cuda-bindings ships, so the wheel
build asks for ``cuda-bindings`` itself (``get_requires_for_build_wheel``) and cythonizes only once that
is installed (``build_wheel``); an sdist needs neither. One build is for one CUDA major
(``CUDA_CORE_BUILD_MAJOR``, default 13, as upstream's override is named): its module lands in
``cuda/core/_cu<major>/``, so builds for several majors merge into one wheel (cuda-ci does that, from
``[tool.cuda-ci.variants]``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension
from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook is setuptools')

MAJOR_VARIABLE = "CUDA_CORE_BUILD_MAJOR"
DEFAULT_MAJOR = "13"
BINDINGS_REQUIREMENT = "cuda-bindings"

# Read by setup.py: empty for an sdist, the Cython extension for a wheel.
extensions: list[Extension] = []


def cuda_major() -> str:
    major = os.environ.get(MAJOR_VARIABLE, DEFAULT_MAJOR)
    if not major.isdigit():
        raise RuntimeError(f"{MAJOR_VARIABLE}={major!r}: set it to a CUDA major version, e.g. 13")
    return major


def _bindings_include_dir() -> str:
    """The ``sys.path`` entry holding ``cuda/bindings/cydriver.pxd``, where Cython looks for it.

    Searched on the paths first: the in-tree ``cuda/`` folder (``backend-path``) may shadow the
    installed ``cuda`` namespace on import. An editable cuda-bindings is on no path (an import hook
    finds it, which Cython does not consult): its source folder is found through that hook.
    """
    for entry in sys.path:
        if (Path(entry or ".") / "cuda" / "bindings" / "cydriver.pxd").is_file():
            return entry or "."
    import importlib.util

    spec = importlib.util.find_spec("cuda.bindings")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "cydriver.pxd").is_file():
            return str(Path(location).parent.parent)
    raise RuntimeError(
        f"cuda-core's wheel build compiles against cuda-bindings' cydriver.pxd, and none is installed "
        f"for {sys.executable}: install cuda-bindings into the build environment"
    )


def _cythonize() -> list[Extension]:
    from Cython.Build import cythonize

    major = cuda_major()
    extension = Extension(
        f"cuda.core._cu{major}._impl",
        sources=["cuda/core/_impl.pyx"],
        define_macros=[("CUDA_CORE_BUILD_MAJOR", major)],
    )
    modules: list[Extension] = cythonize(
        [extension],
        include_path=[_bindings_include_dir()],
        build_dir=f"build/cython/cu{major}",
        language_level=3,
        quiet=True,
    )
    return modules


def get_requires_for_build_wheel(config_settings: dict[str, str] | None = None) -> list[str]:
    return [*_setuptools.get_requires_for_build_wheel(config_settings), BINDINGS_REQUIREMENT]


def build_wheel(
    wheel_directory: str, config_settings: dict[str, str] | None = None, metadata_directory: str | None = None
) -> str:
    extensions[:] = _cythonize()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def get_requires_for_build_editable(config_settings: dict[str, str] | None = None) -> list[str]:
    return [*_setuptools.get_requires_for_build_editable(config_settings), BINDINGS_REQUIREMENT]


def build_editable(
    wheel_directory: str, config_settings: dict[str, str] | None = None, metadata_directory: str | None = None
) -> str:
    extensions[:] = _cythonize()
    # An editable install puts the module into the source tree, whose variant folder is not tracked.
    Path(f"cuda/core/_cu{cuda_major()}").mkdir(exist_ok=True)
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)

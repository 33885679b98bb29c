"""cuda-core's in-tree build backend: setuptools, plus a requirement the wheel build asks for itself.

As upstream's backend adds ``cuda-bindings==13.*`` in ``get_requires_for_build_wheel``, this one
adds ``tomli-w``, with which the wheel build records its backend in ``cuda/core/_build_info.toml``.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook is setuptools')

BUILD_INFO = Path(__file__).parent / "cuda" / "core" / "_build_info.toml"


def get_requires_for_build_wheel(config_settings: dict[str, str] | None = None) -> list[str]:
    return [*_setuptools.get_requires_for_build_wheel(config_settings), "tomli-w>=1.0"]


def build_wheel(
    wheel_directory: str, config_settings: dict[str, str] | None = None, metadata_directory: str | None = None
) -> str:
    import tomli_w  # the dynamic requirement: a build environment without it fails here

    BUILD_INFO.write_text(tomli_w.dumps({"build-backend": "build_hooks", "dynamic-requires": ["tomli-w"]}))
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)

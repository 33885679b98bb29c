"""The module's install as the Dagger engine's Python runtime makes it, as closely as this machine allows.

The runtime (dagger/dagger, sdk/python/runtime/main.go, at the engine version of dagger.json):
- copies its own SDK tree into the module's ``sdk/``: the files its ``+ignore`` allow-list keeps
  (``pyproject.toml``, ``uv.lock``, ``src/**/*.py``, ``src/**/*.typed``, ``codegen/pyproject.toml``,
  ``codegen/**/*.py``, ``LICENSE``, ``README.md``), whose ``pyproject.toml`` says version ``0.0.0``
  and keeps the SDK's development tables: a ``dev`` group naming the ``codegen`` workspace member
  (the runtime copies ``codegen/`` because ``uv lock`` refuses the group without it:
  astral-sh/uv#7055, opened by the SDK's maintainer);
- runs ``uv lock``, then ``uv sync --no-dev`` with ``UV_LINK_MODE=copy``, ``UV_COMPILE_BYTECODE=1``,
  ``UV_NATIVE_TLS=1`` and ``UV_PROJECT_ENVIRONMENT`` set, with the uv it bundles.

Here the SDK tree is made from the dagger-io release `.ci/dagger_sdk.py` vendors (the engine's
version, its sdist hash-checked), reshaped as above; the runtime's own ``uv.lock`` of the SDK is
not in the sdist and is left out (``uv lock`` of the module does not read it).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.helpers import REPO_ROOT

# The uv the runtime of engine v0.21.11 runs. dagger/dagger#11868 ("bump to 3.14 and uv 0.10") moved
# sdk/python/runtime/images/uv/Dockerfile to the 0.10 series; the exact patch release that engine
# bundles could not be read here, so the nearest that can be had from the package index stands in:
# the last 0.10 release. Named in docs/dagger.md.
ENGINE_UV = "0.10.12"
# What the runtime keeps of its SDK tree (its `+ignore` allow-list, `dist/` aside: the binaries it bundles).
SDK_FILES = ("pyproject.toml", "uv.lock", "src/**/*.py", "src/**/*.typed", "LICENSE", "README.md")
DEVELOPMENT_TABLES = """
[dependency-groups]
dev = ["codegen"]

[tool.uv.sources]
codegen = { workspace = true }

[tool.uv.workspace]
members = ["codegen"]
"""
CODEGEN_PYPROJECT = """[project]
name = "codegen"
version = "0.0.0"
requires-python = ">=3.10"

[build-system]
requires = ["uv_build>=0.8.4,<0.12.0"]
build-backend = "uv_build"
"""
ENGINE_ENV = {"UV_LINK_MODE": "copy", "UV_COMPILE_BYTECODE": "1", "UV_NATIVE_TLS": "1", "UV_SYSTEM_PYTHON": "1"}


def engine_sdk_tree(target: Path, vendored: Path = REPO_ROOT / "dagger" / "sdk") -> Path:
    """The SDK as the runtime copies it into a module's ``sdk/``: version 0.0.0, with its workspace."""
    if not (vendored / "pyproject.toml").is_file():
        raise FileNotFoundError(f"{vendored} is missing: `python3 .ci/dagger_sdk.py` vendors it (bash .ci/setup does)")
    for pattern in SDK_FILES:
        for path in vendored.glob(pattern):
            if path.is_file():
                (target / path.relative_to(vendored)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.relative_to(vendored))
    pyproject = target / "pyproject.toml"
    text, changed = re.subn(r'(?m)^version = "[^"]+"$', 'version = "0.0.0"', pyproject.read_text(), count=1)
    assert changed == 1, "the SDK's pyproject.toml names its version in [project]"
    pyproject.write_text(text.rstrip("\n") + "\n" + DEVELOPMENT_TABLES)
    codegen = target / "codegen"
    (codegen / "src" / "codegen").mkdir(parents=True)
    (codegen / "pyproject.toml").write_text(CODEGEN_PYPROJECT)
    (codegen / "src" / "codegen" / "__init__.py").write_text('"""The SDK\'s code generator (a workspace member)."""\n')
    return target


def module_source(target: Path) -> Path:
    """The module's source folder (``dagger/``, as dagger.json's ``include`` loads it) with the SDK
    tree the runtime copies into ``sdk/``."""
    ignored = shutil.ignore_patterns(".venv", "sdk", "build", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache")
    shutil.copytree(REPO_ROOT / "dagger", target, ignore=ignored)
    engine_sdk_tree(target / "sdk")
    return target

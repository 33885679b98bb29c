"""A kept tool environment damaged on disk is found before use, set aside and made again, with a warning."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cuda_ci import toolenvs
from cuda_ci.declared import DEFAULT_DOCS
from cuda_ci.docs import sphinx_env
from cuda_ci.envs import Env
from cuda_ci.log import Reporter
from cuda_ci.process import PYTHON

pytestmark = pytest.mark.e2e
SMALL = ["iniconfig==2.0.0"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CUDA_CI_CACHE_DIR", str(tmp_path / "cache"))  # for the CLI
    monkeypatch.setitem(toolenvs.configured, "cache_dir", tmp_path / "cache")  # below it
    monkeypatch.setattr(toolenvs, "_FOUND", {})
    return tmp_path / "cache"


def _site(env: Env) -> Path:
    return next((env.root / "lib").glob("python*/site-packages"))


def _import(env: Env, module: str) -> subprocess.CompletedProcess[str]:
    """Import as a build would: bytecode written into the kept environment."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.run([str(env.python), "-c", f"import {module}"], capture_output=True, text=True, env=environ)


def _delete_package_file(env: Env) -> str:
    (_site(env) / "iniconfig" / "__init__.py").unlink()
    return "iniconfig/__init__.py is missing"


def _truncate_bytecode(env: Env) -> str:
    assert _import(env, "iniconfig").returncode == 0
    pyc = next((_site(env) / "iniconfig" / "__pycache__").glob("__init__*.pyc"))
    pyc.write_bytes(pyc.read_bytes()[:40])
    assert _import(env, "iniconfig").returncode != 0, "damaged bytecode breaks every later import"
    return "is damaged bytecode"


def _delete_interpreter(env: Env) -> str:
    env.python.unlink()
    return "its interpreter"


@pytest.mark.parametrize("damage", [_delete_package_file, _truncate_bytecode, _delete_interpreter])
def test_a_damaged_environment_is_set_aside_and_made_again(
    cache: Path, damage: Callable[[Env], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=Reporter())
    assert env is not None
    said = damage(env)
    monkeypatch.setattr(toolenvs, "_FOUND", {})  # a later run
    later = Reporter()
    again = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=later)
    assert again == env, "made again in the same place"
    [warning] = [n for n in later.notes if "is damaged" in n]
    assert f"the kept tool environment {env.root.name} is damaged (" in warning and said in warning
    assert "set aside and made again" in warning
    assert _import(env, "iniconfig").returncode == 0
    assert toolenvs.env_damage(env) is None
    assert [p.name for p in (cache / "envs").iterdir()] == [env.root.name], "nothing damaged is kept"


SPHINX = list(DEFAULT_DOCS)  # what the docs environment holds for a component without a docs group


def test_a_sphinx_environment_missing_a_static_file_is_made_again(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = sphinx_env(SPHINX, Reporter())
    assert env is not None
    static = next((_site(env) / "sphinx" / "themes" / "basic" / "static").glob("*.js"))
    static.unlink()
    monkeypatch.setattr(toolenvs, "_FOUND", {})
    later = Reporter()
    assert sphinx_env(SPHINX, later) == env
    assert any(f"sphinx/themes/basic/static/{static.name} is missing" in n for n in later.notes), later.notes
    assert static.is_file()

"""A kept tool environment damaged on disk is found before use, set aside and made again, with a warning."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cuda_ci.docs.sphinx import sphinx_env
from cuda_ci.infra import toolenvs
from cuda_ci.infra.declared import DEFAULT_DOCS
from cuda_ci.infra.envcontent import content_problem
from cuda_ci.infra.envs import Env
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.process import PYTHON

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
    """Import, writing bytecode (as a process that ignores cuda-ci's PYTHONDONTWRITEBYTECODE could)."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.run([str(env.python), "-c", f"import {module}"], capture_output=True, text=True, env=environ)


def _delete_package_file(env: Env) -> str:
    (_site(env) / "iniconfig" / "__init__.py").unlink()
    return "iniconfig/__init__.py is missing"


def _truncate_bytecode(env: Env) -> str:
    pyc = next((_site(env) / "iniconfig" / "__pycache__").glob("__init__*.pyc"))  # compiled when made
    pyc.write_bytes(pyc.read_bytes()[:40])
    assert _import(env, "iniconfig").returncode != 0, "damaged bytecode breaks every later import"
    return f"iniconfig/__pycache__/{pyc.name} was changed"


def _delete_interpreter(env: Env) -> str:
    env.python.unlink()
    return "bin/python is missing"


def _drop_a_pth_file(env: Env) -> str:
    """What a build backend running in the environment can do: code for every later process of it."""
    (_site(env) / "zz-poison.pth").write_text("import sys; sys.stderr.write('poisoned')\n")
    assert "poisoned" in _import(env, "iniconfig").stderr
    return "zz-poison.pth was added"


def _write_bytecode_of_a_new_module(env: Env) -> str:
    (_site(env) / "added.py").write_text("X = 1\n")
    assert _import(env, "added").returncode == 0  # writes added's bytecode, too
    return "added.py was added"


@pytest.mark.parametrize(
    "damage",
    [_delete_package_file, _truncate_bytecode, _delete_interpreter, _drop_a_pth_file, _write_bytecode_of_a_new_module],
)
def test_an_environment_not_as_it_was_made_is_set_aside_and_made_again(
    cache: Path, damage: Callable[[Env], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=Reporter())
    assert env is not None
    said = damage(env)
    monkeypatch.setattr(toolenvs, "_FOUND", {})  # a later run
    later = Reporter()
    again = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=later)
    assert again == env, "made again in the same place"
    [warning] = [n for n in later.notes if "is not as it was made" in n]
    assert f"the kept tool environment {env.root.name} is not as it was made (" in warning and said in warning
    assert "never used, set aside as " in warning and "and made again" in warning
    assert "poisoned" not in _import(env, "iniconfig").stderr and _import(env, "iniconfig").returncode == 0
    assert content_problem(env.root) is None
    [aside] = [p for p in toolenvs.envs_dir().iterdir() if p != env.root]
    assert aside.name.startswith(f".{env.root.name}-set-aside-") and str(aside) in warning, "kept for a look"


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

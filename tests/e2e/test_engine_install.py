"""The module installed as the engine's Python runtime installs it (tests/engine_sdk.py): the SDK tree
shaped like the engine's copy, ``uv lock`` then ``uv sync --no-dev``, with the engine's uv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine_sdk import ENGINE_ENV, ENGINE_UV, module_source
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.e2e
VENV_BIN = Path(sys.executable).parent
RUNTIME_ENV = {"DAGGER_MODULE": "cuda-ci", "DAGGER_DEFAULT_PYTHON_PACKAGE": "cuda_ci", "DAGGER_MAIN_OBJECT": "CudaCi"}


@dataclass(frozen=True)
class Installed:
    source: Path
    python: Path
    uv: Path
    lock_output: str


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{argv}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("engine-install")
    source = module_source(work / "src")
    tools = work / "uv"
    _run([str(VENV_BIN / "uv"), "pip", "install", "--quiet", "--target", str(tools), f"uv=={ENGINE_UV}"], work,
         dict(os.environ))  # fmt: skip
    env = {**os.environ, **ENGINE_ENV, "UV_PROJECT_ENVIRONMENT": str(work / "venv"), "UV_PYTHON": sys.executable}
    env.pop("VIRTUAL_ENV", None)
    uv = tools / "bin" / "uv"
    locked = _run([str(uv), "lock"], source, env)
    _run([str(uv), "sync", "--no-dev"], source, env)
    return Installed(source=source, python=work / "venv" / "bin" / "python", uv=uv, lock_output=locked)


def _versions(lock: Path) -> dict[str, str]:
    return {p["name"]: p.get("version", "dynamic") for p in tomllib.loads(lock.read_text())["package"]}


def test_the_engines_uv_locks_what_our_lock_pins_with_the_sdk_as_the_engine_copies_it(installed: Installed) -> None:
    assert _run([str(installed.uv), "--version"], installed.source, dict(os.environ)).split()[1] == ENGINE_UV
    ours, engines = _versions(REPO_ROOT / "dagger" / "uv.lock"), _versions(installed.source / "uv.lock")
    assert engines.pop("dagger-io") == "0.0.0" and ours.pop("dagger-io") == json.loads(
        (REPO_ROOT / "dagger.json").read_text()
    )["engineVersion"].removeprefix("v")
    assert engines == ours, "the engine's `uv lock` changes no version dagger/uv.lock pins"
    (sdk,) = [
        p for p in tomllib.loads((installed.source / "uv.lock").read_text())["package"] if p["name"] == "dagger-io"
    ]
    assert sdk["source"] == {"editable": "sdk"}
    assert "codegen" not in engines, "the SDK's development workspace stays out of the module's lock"


def test_the_runtime_environment_loads_and_registers_the_module(installed: Installed) -> None:
    probe = (
        "import dagger, importlib.metadata as m, importlib.util as u; print(m.version('dagger-io'), dagger.__file__,"
    )
    probe += " u.find_spec('codegen') is None, u.find_spec('pytest') is None)"
    version, location, no_codegen, no_pytest = _run([str(installed.python), "-c", probe], installed.source,
                                                     dict(os.environ)).split()  # fmt: skip
    assert version == "0.0.0" and location.startswith(str(installed.source / "sdk" / "src"))
    assert no_codegen == "True" and no_pytest == "True", "`uv sync --no-dev` installs no development group"
    env = {**os.environ, **RUNTIME_ENV, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([str(installed.python), "-m", "tests.dagger_register"], env=env, capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    registered = json.dumps(json.loads(result.stdout))
    for function in ("release", "preflight", "publish", "ci", "test", "lint", "plan"):
        assert f'"name": "{function}"' in registered, function

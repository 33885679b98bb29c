"""Kept tool environments: made once, complete or absent, keyed by what the requirements resolve to."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from cuda_ci.infra import toolenvs
from cuda_ci.infra.envcontent import content_problem
from cuda_ci.infra.envs import Env
from cuda_ci.infra.index import free_port
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.process import PYTHON
from tests.helpers import git

pytestmark = pytest.mark.e2e
SMALL = ["iniconfig==2.0.0"]  # one small pure wheel: a fast environment


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CUDA_CI_CACHE_DIR", str(tmp_path / "cache"))  # for the CLI
    monkeypatch.setitem(toolenvs.configured, "cache_dir", tmp_path / "cache")  # below it
    return tmp_path / "cache"


def _made(reporter: Reporter) -> list[str]:
    return [s.name for s in reporter.steps if s.name.startswith("tool environment")]


def _imports(env: Env, module: str) -> str:
    code = f"import {module}; print({module}.__file__)"
    return subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, check=True).stdout


def test_made_once_then_found_by_a_later_run(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Reporter()
    env = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=first)
    assert env is not None and env.root.parent == cache / "untrusted" / "envs" == toolenvs.envs_dir()
    assert len(_made(first)) == 1
    assert (env.root / toolenvs.COMPLETE_MARKER).read_text().strip() == "iniconfig==2.0.0"
    assert str(env.root) in _imports(env, "iniconfig")
    assert toolenvs.pinned_versions(env) == {"iniconfig": "2.0.0"}
    monkeypatch.setattr(toolenvs, "_FOUND", {})  # a new process: only the folder remembers
    later = Reporter()
    assert toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=later) == env
    assert _made(later) == []
    assert not [p for p in toolenvs.envs_dir().iterdir() if p.name.startswith(".")], "no staging folder left"


def test_other_resolved_versions_make_another_environment(cache: Path) -> None:
    reporter = Reporter()
    old = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=reporter)
    new = toolenvs.tool_env(["iniconfig==2.1.0"], python=PYTHON, purpose="test", reporter=reporter)
    assert old is not None and new is not None and old.root != new.root
    assert "2.1.0" in (new.root / toolenvs.COMPLETE_MARKER).read_text()


def test_two_runs_making_the_same_environment_at_once_share_one(cache: Path) -> None:
    found: list[Env | None] = []
    errors: list[BaseException] = []

    def make() -> None:
        try:  # _tool_env: below the in-process lock, as two processes would race
            found.append(toolenvs._tool_env(SMALL, python=PYTHON, purpose="race", reporter=Reporter()))
        except BaseException as error:  # pragma: no cover - reported by the assert below
            errors.append(error)

    threads = [threading.Thread(target=make) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == [] and len(found) == 2 and found[0] == found[1]
    assert [p.name for p in toolenvs.envs_dir().iterdir()] == [found[0].root.name]  # type: ignore[union-attr]


def test_a_folder_without_the_marker_is_never_used(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reporter = Reporter()
    env = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=reporter)
    assert env is not None
    (env.root / toolenvs.COMPLETE_MARKER).unlink()
    monkeypatch.setattr(toolenvs, "_FOUND", {})
    again = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=reporter)
    assert again == env and (env.root / toolenvs.COMPLETE_MARKER).is_file()
    assert len(_made(reporter)) == 2, "made again, not trusted half-made"


def test_requirements_that_do_not_resolve_fall_back_with_a_warning(cache: Path) -> None:
    reporter = Reporter()
    assert toolenvs.tool_env(["cuda-ci-no-such-tool==1.0"], python=PYTHON, purpose="test", reporter=reporter) is None
    assert any("tool environment not reused" in n and "cuda-ci-no-such-tool" in n for n in reporter.notes)
    assert not toolenvs.envs_dir().exists() or not any(toolenvs.envs_dir().iterdir())


def test_without_uv_builds_are_isolated_and_still_build_once(
    monorepo: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cuda_ci.infra.toolenvs.uv_binary", lambda: None)
    monkeypatch.setattr("cuda_ci.build.frontend.uv_binary", lambda: None)
    monkeypatch.setattr(toolenvs, "_FOUND", {})
    git(monorepo, "tag", "cuda-pathfinder-v1.0.0")
    out = tmp_path / "out"
    assert main(["build", "--tag", "cuda-pathfinder-v1.0.0", "--repo", str(monorepo), "--out", str(out)]) == 0
    manifest = json.loads((out / "release-manifest.json").read_text())
    wheel = next(f for f in manifest["files"] if f["kind"] == "wheel")
    assert wheel["built_from"]["sdist"] == "cuda_pathfinder-1.0.0.tar.gz"
    assert not list(cache.glob("*/envs")), "no kept environment without uv"


def test_the_manifest_names_the_build_environment_s_versions(
    monorepo: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    git(monorepo, "tag", "cuda-pathfinder-v1.0.0")
    out = tmp_path / "out"
    assert main(["build", "--tag", "cuda-pathfinder-v1.0.0", "--repo", str(monorepo), "--out", str(out)]) == 0
    tools = json.loads((out / "release-manifest.json").read_text())["tools"]
    assert {"build-env/setuptools", "build-env/setuptools-scm", "build-env/build"} <= set(tools)
    assert tools["build-env/build"] == tools["build"], "the kept environment runs this run's frontend"
    [kept] = (cache / "release" / "envs").glob("build-*")  # a tag's build: a release's environment
    # Bytecode compiled when it was made, so that no run compiles it again; the build added nothing.
    assert list(kept.rglob("setuptools/__pycache__/*.pyc")) and list(kept.rglob("setuptools_scm/__pycache__/*.pyc"))
    assert content_problem(kept) is None


def test_environments_unused_for_30_days_and_stale_staging_folders_go_when_one_is_made(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reporter = Reporter()
    old = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=reporter)
    assert old is not None
    month_ago = time.time() - 31 * 86400
    os.utime(old.root / toolenvs.COMPLETE_MARKER, (month_ago, month_ago))
    killed, young = toolenvs.envs_dir() / ".test-killed-run", toolenvs.envs_dir() / ".test-running-now"
    killed.mkdir()
    young.mkdir()
    os.utime(killed, (month_ago, month_ago))
    new = toolenvs.tool_env(["iniconfig==2.1.0"], python=PYTHON, purpose="test", reporter=reporter)
    assert new is not None and new.root.is_dir()
    assert not old.root.exists() and not killed.exists() and young.exists()

    monkeypatch.setattr(toolenvs, "_FOUND", {})
    os.utime(new.root / toolenvs.COMPLETE_MARKER, (month_ago, month_ago))
    assert toolenvs.tool_env(["iniconfig==2.1.0"], python=PYTHON, purpose="test", reporter=reporter) == new
    assert time.time() - (new.root / toolenvs.COMPLETE_MARKER).stat().st_mtime < 3600, "a use renews it"


def test_with_the_index_out_of_reach_tools_resolve_from_uv_s_cache(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=Reporter()) is not None
    )  # uv's cache knows it
    monkeypatch.setitem(toolenvs.configured, "cache_dir", tmp_path / "air-gapped")  # no kept environment there yet
    monkeypatch.setattr(toolenvs, "_FOUND", {})
    closed = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, closed)  # every request to the index fails at once
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")  # uv's own retries only add seconds here
    reporter = Reporter()
    env = toolenvs.tool_env(SMALL, python=PYTHON, purpose="test", reporter=reporter)
    assert env is not None and toolenvs.pinned_versions(env) == {"iniconfig": "2.0.0"}
    assert env.root.parent == tmp_path / "air-gapped" / "untrusted" / "envs"
    assert any("resolved from uv's cache instead (--offline)" in n for n in reporter.notes)

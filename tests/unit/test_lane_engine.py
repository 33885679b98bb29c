"""The container lane's own decisions, without podman: which calls and options it honours, the
stand-ins, secrets, keys that follow content, the engine's exclude semantics, paths inside a
container's root file system."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import dagger
from dagger import dag
from tests.container.conftest import STAND_INS, substitutions
from tests.container.engine import Lane
from tests.container.execs import (
    Unsupported,
    check_call,
    exec_error,
    expand,
    failed,
    secret_value,
)
from tests.container.fsfilter import compile_patterns, excluded
from tests.container.podman import Podman
from tests.container.rootfs import inside, runnable, target_in
from tests.dagger_render import Call, render
from tests.helpers import REPO_ROOT


def test_a_call_or_option_the_lane_does_not_honour_fails_naming_it() -> None:
    base = dag.container(platform=dagger.Platform("linux/amd64")).from_("image")
    (call,) = render(base.with_exec(["true"], insecure_root_capabilities=True))[-1:]
    with pytest.raises(Unsupported, match=r"Container\.withExec option insecureRootCapabilities is not honoured"):
        check_call(call)
    (user,) = render(base.with_user("nobody"))[-1:]
    with pytest.raises(Unsupported, match=r"Container\.withUser is not known to the container lane"):
        check_call(user)
    (gpus,) = render(base.experimental_with_all_gp_us())[-1:]
    check_call(gpus, removed=frozenset({"experimentalWithAllGPUs"}))
    honoured = base.with_exec(["x"], stdin="in", redirect_stdout="o", redirect_stderr="e", expand=True,
                              use_entrypoint=True, no_init=True, expect=dagger.ReturnType.ANY)  # fmt: skip
    check_call(render(honoured)[-1])


def test_expand_reads_the_containers_environment() -> None:
    assert expand("${HOME}/x:$USER:$UNSET.", {"HOME": "/root", "USER": "lane"}) == "/root/x:lane:."


def test_the_stand_ins_replace_interpreters_inside_arguments_and_argument_runs() -> None:
    subs = substitutions()
    argv = subs.argv(["cuda-ci", "test", "--build-python=/opt/python/cp312-cp312/bin/python"])
    assert argv[-1] == "--build-python=/opt/python/cp311-cp311/bin/python"
    venv = subs.argv(["uv", "venv", "--python", "3.11", "--python-preference", "only-managed", "/venv"])
    assert venv == ["uv", "venv", "--python", "3.11", "--python-preference", "only-system", "/venv"]
    with pytest.raises(Unsupported, match=r"no local stand-in for image docker\.io/library/alpine"):
        subs.image("docker.io/library/alpine")


def test_the_stand_ins_table_is_the_one_docs_testing_lists() -> None:
    documented = (REPO_ROOT / "docs" / "testing.md").read_text()
    for row in STAND_INS:
        shown = row.graph if row.kind != "image" else row.graph.split("@")[0]
        assert f"`{shown}`" in documented, f"docs/testing.md does not list the stand-in for {shown}"


def test_secrets_resolve_at_the_exec_plaintext_or_env() -> None:
    assert secret_value(render(dag.set_secret("t", "plain"))) == "plain"
    assert secret_value(render(dag.secret("env://LANE_T")), {"LANE_T": "from env"}) == "from env"
    with pytest.raises(Unsupported, match="LANE_T is not set"):
        secret_value(render(dag.secret("env://LANE_T")), {})
    with pytest.raises(Unsupported, match="secret provider file:// is not known"):
        secret_value(render(dag.secret("file:///tmp/t")), {})


def test_a_failed_exec_is_the_sdks_exec_error() -> None:
    error = exec_error(["cuda-ci", "lint"], 2, "out", "err", "SUCCESS")
    assert isinstance(error, dagger.ExecError)
    assert (error.exit_code, error.stdout, error.stderr, error.command) == (2, "out", "err", ["cuda-ci", "lint"])
    assert [failed(0, "SUCCESS"), failed(1, "SUCCESS"), failed(0, "FAILURE"), failed(1, "FAILURE")] == [
        False, True, True, False,
    ]  # fmt: skip
    assert not failed(3, "ANY")


def _lane(tmp_path: Path) -> Lane:
    return Lane(podman=Podman(conf=tmp_path / "none"), substitutions=substitutions(), network="n", workdir=tmp_path)


def _host(path: Path, exclude: list[str]) -> list[Call]:
    return render(dag.host().directory(str(path), exclude=exclude))


def test_a_host_directorys_key_follows_its_content_not_its_path(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        (folder / "src").mkdir(parents=True)
        (folder / "src" / "a.py").write_text("print(1)\n")
    lane = _lane(tmp_path)
    key = lane._keys(_host(one, ["build"]))[-1]
    assert lane._keys(_host(two, ["build"]))[-1] == key, "another path, the same content"
    (two / "build").mkdir()
    (two / "build" / "junk").write_text("x")
    lane._digests.clear()
    assert lane._keys(_host(two, ["build"]))[-1] == key, "what the excludes drop does not count"
    (two / "src" / "a.py").write_text("print(2)\n")
    lane._digests.clear()
    assert lane._keys(_host(two, ["build"]))[-1] != key


def test_exclude_patterns_are_anchored_as_buildkit_anchors_them() -> None:
    patterns = compile_patterns(["build", "docs/**/_build", "*.log", "!keep.log", "**/x.tmp"])
    assert excluded("build/a", patterns) and not excluded("src/build/a", patterns), "anchored at the root"
    assert excluded("docs/a/b/_build/i.html", patterns) and excluded("docs/_build", patterns)
    assert excluded("a.log", patterns) and not excluded("keep.log", patterns) and not excluded("d/a.log", patterns)
    assert excluded("x.tmp", patterns) and excluded("a/b/x.tmp", patterns)


def test_paths_resolve_inside_the_containers_root_even_through_absolute_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "opt/python/cp311-cp311/bin").mkdir(parents=True)
    python = root / "opt/python/cp311-cp311/bin/python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    os.symlink("/opt/python/cp311-cp311", root / "opt/python/cp39-cp39")  # absolute: means the container's
    assert inside(root, "/opt/python/cp39-cp39/bin/python") == python
    assert inside(root, "/opt/python/cp313-cp313/bin/python") is None
    assert runnable(root, "/opt/python/cp39-cp39/bin/python", "")
    assert runnable(root, "python", "/usr/bin:/opt/python/cp311-cp311/bin") and not runnable(root, "git", "/usr/bin")
    assert target_in(root, "/opt/python/cp39-cp39/new/file") == root / "opt/python/cp311-cp311/new/file"
    assert (root / "opt/python/cp311-cp311/new").is_dir(), "parents made, inside the root"

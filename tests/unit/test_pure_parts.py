"""Plans, predicates and parsers: no subprocess, no network."""

from __future__ import annotations

import io
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest
from packaging.tags import Tag

from cuda_ci.build.backend_env import build_requirements
from cuda_ci.build.builder import BuildSource, plan_build
from cuda_ci.build.frontend import ComponentBuild, build_argv
from cuda_ci.build.identifiers import identifier_of
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.envs import Env
from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.log import Reporter, StepRecord
from cuda_ci.infra.manifest import FileEntry
from cuda_ci.infra.secrets import redact, register, sanitize_url
from cuda_ci.infra.settings import Settings
from cuda_ci.plan.tags import parse_tag
from cuda_ci.publish.targets import plan_index_uploads


def test_plan_for_a_v_tag_builds_bindings_and_the_metapackage_once() -> None:
    tag = parse_tag("v13.0.1")
    plan = plan_build(BuildSource(unit=tag.unit, commit="0" * 40, tag=tag))
    assert [(b.component.distribution, b.sdist, b.wheel) for b in plan.builds] == [
        ("cuda-bindings", True, True),
        ("cuda-python", True, True),
    ]
    assert plan.builds[0].repair and not plan.builds[1].repair
    assert plan.source_archive and len(plan.build_identifiers) == 1


def test_wheels_only_plans_never_rebuild_the_sdist_or_metapackage() -> None:
    unit = get_unit("cuda-bindings")
    plan = plan_build(BuildSource(unit=unit, commit="0" * 40), wheels_only=True, native_platform="windows")
    assert [(b.component.distribution, b.sdist, b.cibuildwheel_platform) for b in plan.builds] == [
        ("cuda-bindings", False, "windows")
    ]
    assert not plan.source_archive
    with pytest.raises(UsageError, match="cuda-pathfinder has no platform wheels"):
        plan_build(BuildSource(unit=get_unit("cuda-pathfinder"), commit="0" * 40), wheels_only=True)


def test_a_kept_build_environment_runs_the_frontend_without_isolation(tmp_path: Path) -> None:
    bindings = get_unit("cuda-bindings").components[0]
    both = ComponentBuild(component=bindings, sdist=True, wheel=True, repair=True)
    env = Env(tmp_path / "kept")
    kept = build_argv(replace(both, wheel=False), tmp_path, tmp_path / "out", tmp_path / "r.json", env)
    assert kept[:4] == [str(env.python), "-m", "build", "--no-isolation"] and kept[-2:] == ["--sdist", str(tmp_path)]
    isolated = build_argv(replace(both, sdist=False), tmp_path, tmp_path / "out", tmp_path / "r.json")
    assert "--no-isolation" not in isolated and isolated[-2:] == ["--wheel", str(tmp_path)]
    assert isolated[isolated.index("--report") + 1] == str(tmp_path / "r.json")


def test_build_requirements_are_the_pyproject_s_plus_this_frontend(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=77", "cython>=3"]\n')
    assert build_requirements(tmp_path) == ["setuptools>=77", "cython>=3", f"build=={metadata.version('build')}"]
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert build_requirements(tmp_path)[0] == "setuptools>=40.8.0", "PEP 518's default"


@pytest.mark.parametrize(
    ("tag", "identifier"),
    [
        (Tag("cp311", "cp311", "manylinux_2_34_x86_64"), "cp311-manylinux_x86_64"),
        (Tag("cp312", "cp312", "manylinux2014_aarch64"), "cp312-manylinux_aarch64"),
        (Tag("cp313", "cp313", "win_amd64"), "cp313-win_amd64"),
        (Tag("cp314", "cp314t", "win_amd64"), "cp314t-win_amd64"),
        (Tag("cp314", "cp314t", "manylinux_2_28_aarch64"), "cp314t-manylinux_aarch64"),
        (Tag("cp311", "cp311", "macosx_11_0_arm64"), "cp311-macosx_arm64"),
        (Tag("py3", "none", "any"), "py3-none-any"),
    ],
)
def test_build_identifiers_follow_cibuildwheel(tag: Tag, identifier: str) -> None:
    assert identifier_of(tag) == identifier


def _entry(name: str, sha: str) -> FileEntry:
    return FileEntry(name=name, path=f"dist/{name}", kind="wheel", distribution="cuda-core", size=1, sha256=sha)


def test_index_upload_plan_skips_matches_and_refuses_conflicts_with_both_hashes() -> None:
    a, b = _entry("a.whl", "1" * 64), _entry("b.whl", "2" * 64)
    assert plan_index_uploads([a, b], {"a.whl": "1" * 64}, "pypi") == [b]
    with pytest.raises(CudaCiError) as info:
        plan_index_uploads([a, b], {"b.whl": "f" * 64}, "pypi")
    message = str(info.value)
    assert "f" * 64 in message and "2" * 64 in message and "nothing was uploaded" in message


def test_secrets_never_print() -> None:
    register(["pypi-AgEIcHlwaS5vcmcCJGFiYw"])
    assert "pypi-AgE" not in redact("token pypi-AgEIcHlwaS5vcmcCJGFiYw in a message")
    assert (
        sanitize_url("https://__token__:s3cret@upload.pypi.org/legacy/") == "https://<hidden>@upload.pypi.org/legacy/"
    )
    settings = Settings.from_environ({"GITHUB_TOKEN": "ghs_abcdef", "CUDA_CI_PYPI_TOKEN": "pypi-xyz123"})
    assert "ghs_abcdef" not in repr(settings) and "pypi-xyz123" not in repr(settings.indexes["pypi"])
    assert settings.indexes["testpypi"].upload_url == "https://test.pypi.org/legacy/"


def test_progress_folds_into_groups_in_github_actions() -> None:
    stream = io.StringIO()
    reporter = Reporter(stream=stream, github_actions=True)
    with reporter.in_stage("build"), reporter.step("build cuda-core"):
        reporter.warn("careful")
    lines = stream.getvalue().splitlines()
    # Actions does not nest groups: the outermost step folds, the ones inside are lines in its fold.
    assert lines[:2] == ["::group::stage build", "==> build cuda-core"]
    assert "::warning::careful" in lines and lines.count("::endgroup::") == 1
    assert lines.index("::endgroup::") > lines.index("    ok in 0.0 s: build cuda-core")
    assert reporter.stage_seconds().keys() == {"build"}


def test_a_child_reporter_keeps_the_stage_and_is_adopted() -> None:
    reporter = Reporter(stream=io.StringIO())
    with reporter.in_stage("build"):
        child = reporter.child()
        with child.step("build cuda-core 1.0.0"):
            child.note("built once")
    reporter.adopt(child)
    assert [(r.stage, r.name) for r in reporter.steps] == [("build", "stage build"), ("build", "build cuda-core 1.0.0")]
    assert reporter.notes == ["built once"]


def test_a_stage_run_by_several_plan_nodes_counts_all_their_time() -> None:
    """publish:github, publish:testpypi, ... (and docs, then record-docs) are one stage each: summed."""
    reporter = Reporter(stream=io.StringIO())
    for node in reporter.child(), reporter.child():
        node.steps.append(StepRecord("publish", "stage publish", 1.25, "ok"))
        reporter.adopt(node)
    assert reporter.stage_seconds() == {"publish": 2.5}

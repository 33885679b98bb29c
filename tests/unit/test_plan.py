"""The release plan: one pure decision per run, the same for every executor (nothing runs here)."""

from __future__ import annotations

import functools
import json

import pytest

from cuda_ci.build.wheel_jobs import linux_wheel_jobs
from cuda_ci.executors.dagger_parts import selection
from cuda_ci.infra.components import get_unit, unit_names
from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.plan.release import (
    Mode,
    Node,
    PlanOptions,
    ReleasePlan,
    RepositoryState,
    WheelJob,
    fill,
    installed_test_steps,
    plan_release,
)
from cuda_ci.plan.selection import Selection
from tests.helpers import REPO_ROOT

TAGS = {"cuda-pathfinder": "cuda-pathfinder-v1.0.0", "cuda-bindings": "v13.0.0", "cuda-core": "cuda-core-v0.3.0"}
COMMIT = "c" * 40


@functools.cache
def _state(unit_name: str) -> RepositoryState:
    unit = get_unit(unit_name)
    platform = [c for c in unit.components if c.wheel == "platform"]
    jobs = linux_wheel_jobs(REPO_ROOT / platform[0].dir) if platform else []
    return RepositoryState(
        commit=COMMIT,
        versions={c.distribution: "1.0.0" for c in unit.components},
        wheel_jobs=[_job(j.identifier, j.platform, j.image, str(j.python)) for j in jobs],
        host_identifier="cp311-manylinux_x86_64",
    )


def _job(identifier: str, platform: str, image: str, python: str) -> WheelJob:
    return WheelJob(identifier=identifier, platform=platform, image=image, python=python)


def _plan(unit_name: str, mode: Mode = "release", **options: object) -> ReleasePlan:
    tag = None if mode == "snapshot" else TAGS[unit_name]
    return plan_release(get_unit(unit_name), tag, mode, None, PlanOptions(**options), _state(unit_name))  # type: ignore[arg-type]


@pytest.mark.parametrize("unit_name", unit_names())
@pytest.mark.parametrize("mode", ["release", "rehearsal", "snapshot"])
@pytest.mark.parametrize("runner", ["host", "dagger"])
def test_every_node_comes_after_what_it_needs_and_parses_as_a_cuda_ci_command(
    unit_name: str, mode: Mode, runner: str
) -> None:
    from cuda_ci.cli.flags import build_parser

    plan = _plan(unit_name, mode, runner=runner, dry_run=True)
    seen: set[str] = set()
    for wave in plan.waves():
        for node in wave:
            assert set(node.needs) <= seen, f"{node.id} runs before {set(node.needs) - seen}"
        seen |= {n.id for n in wave}
    assert seen == {n.id for n in plan.nodes}
    paths = {"repo": "/r", "release": "/f", "out": "/o", "prebuilt": "/p", "preflight": "/x.json", "extra": "/e"}
    for node in plan.nodes:
        args = build_parser().parse_args(fill(node.argv, paths))
        assert args.node == node.id, "every node runs as itself (its log in the folder)"
    assert [n.id for n in plan.nodes if n.kind == "build"] == ["build"], "one build of the sdists and manifest"


def test_validate_and_docs_run_side_by_side_then_publish_in_order() -> None:
    plan = _plan("cuda-bindings", runner="dagger", dry_run=True)
    waves = [[n.id for n in wave] for wave in plan.waves()]
    assert ["validate", "docs"] in waves, waves
    publish = [n.id for n in plan.nodes if n.kind == "publish"]
    assert publish == ["publish:github", "publish:testpypi", "publish:pypi", "publish:finalize"]
    assert all(plan.node(p).needs == (prev,) for prev, p in zip(["record-docs", *publish], publish, strict=False))
    assert plan.node("record-docs").needs[:2] == ("validate", "docs")


def test_the_dagger_plan_has_one_wheel_node_per_cibuildwheel_identifier_and_the_host_none() -> None:
    dagger = _plan("cuda-core", runner="dagger")
    identifiers = [n.identifier for n in dagger.of_kind("wheel")]
    assert identifiers == [j.identifier for j in _state("cuda-core").wheel_jobs] and identifiers
    assert set(dagger.node("build").needs) == {"preflight", *(f"wheel:{i}" for i in identifiers)}
    assert "--prebuilt-wheels={prebuilt}" in dagger.node("build").argv
    matrix = dagger.wheel_matrix()
    assert set(matrix) == {"linux/amd64", "linux/arm64"}
    assert sum(len(v) for v in matrix.values()) == len(identifiers)
    host = _plan("cuda-core", runner="host")
    assert not host.of_kind("wheel")
    assert host.node("build").identifier == "cp311-manylinux_x86_64"
    assert not _plan("cuda-pathfinder", runner="dagger").of_kind("wheel"), "a pure unit has no wheel jobs"


def test_each_identifier_is_import_tested_by_its_own_wheel_node_and_by_nothing_after() -> None:
    """A wheel node's command line (build --wheels-only --build-python P) builds, repairs and
    import-tests its identifier with its own interpreter; the release folder's siblings are built for
    the tool interpreter only, so no later node installs another interpreter's wheel."""
    plan = _plan("cuda-core", runner="dagger")
    jobs = {j.identifier: j.python for j in _state("cuda-core").wheel_jobs}
    wheels = {n.identifier: n.argv for n in plan.of_kind("wheel")}
    assert set(wheels) == set(jobs)
    for identifier, argv in wheels.items():
        assert "--wheels-only" in argv and f"--build-python={jobs[identifier]}" in argv, argv
    assert jobs["cp314t-manylinux_x86_64"] == "/opt/python/cp314-cp314t/bin/python"
    assert {n.kind for n in plan.nodes} == {"preflight", "wheel", "build", "validate", "docs", "record-docs", "publish"}
    assert plan.node("record-docs").needs == ("validate", "docs")


@pytest.mark.parametrize("mode", ["release", "rehearsal", "snapshot"])
def test_the_source_and_folder_are_decided_once(mode: Mode) -> None:
    plan = _plan("cuda-core", mode, dry_run=True)
    assert plan.source.commit == COMMIT and plan.source.mode == mode
    assert plan.source.siblings == ("cuda-pathfinder", "cuda-bindings")
    expected = {"release": "cuda-core-v0.3.0", "rehearsal": f"rehearsal-cuda-core-v0.3.0-{COMMIT[:7]}"}
    assert plan.folder == expected.get(mode, f"snapshot-cuda-core-{COMMIT[:7]}")
    assert plan.dry_run and all("--dry-run" in n.argv for n in plan.of_kind("publish"))
    flags = plan.node("preflight").argv
    assert ("--snapshot" in flags) == (mode == "snapshot") and ("--rehearse" in flags) == (mode == "rehearsal")


def test_a_release_that_stops_after_docs_has_no_publish_nodes() -> None:
    plan = _plan("cuda-pathfinder", no_publish=True)
    assert plan.nodes[-1].id == "record-docs" and not plan.of_kind("publish")


def test_the_plan_round_trips_through_json() -> None:
    plan = _plan("cuda-core", runner="dagger", dry_run=True, extra_dist=True)
    data = json.loads(json.dumps(plan.as_json()))
    assert ReleasePlan.from_json(data) == plan
    assert data["wheel_matrix"]["linux/arm64"][0]["identifier"].endswith("aarch64")
    assert "--extra-dist" in plan.node("validate").argv
    with pytest.raises(CudaCiError, match="not a schema 1 release plan"):
        ReleasePlan.from_json({**data, "schema": 99})


def test_a_cycle_is_refused() -> None:
    plan = _plan("cuda-pathfinder")
    looped = (Node(id="a", kind="docs", argv=(), needs=("b",)), Node(id="b", kind="docs", argv=(), needs=("a",)))
    with pytest.raises(CudaCiError, match="cycle among a, b"):
        list(ReleasePlan(source=plan.source, runner="host", dry_run=False, nodes=looped, folder="x").waves())


def test_the_dagger_selection_passes_every_flag_for_the_cli_to_refuse() -> None:
    """A snapshot with a tag was silently a snapshot in the module; the CLI's checks now see both."""
    flags = selection("v13.0.0", "cuda-bindings", True, True, "main")
    assert flags == ["--tag=v13.0.0", "--component=cuda-bindings", "--snapshot", "--rehearse", "--ref=main"]
    with pytest.raises(UsageError, match="--snapshot and --tag exclude each other"):
        Selection(tag="v13.0.0", snapshot=True, component="cuda-bindings").checked()


def test_tests_run_from_each_components_folder_with_the_console_script_and_the_guard() -> None:
    steps = installed_test_steps(get_unit("cuda-bindings"), "/venv/bin", "/src", marker="gpu")
    assert [s.workdir for s in steps] == ["/src/cuda_bindings", "/src/cuda_python"]
    for step in steps:
        assert step.argv[0] == "/venv/bin/pytest", "never python -m pytest: it puts the sources first"
        assert step.argv[1:3] == ("-p", "cuda_ci_wheel_guard")
        assert step.argv[step.argv.index("-m") : step.argv.index("-m") + 2] == ("-m", "gpu")
    assert "--cuda-ci-installed=cuda.bindings" in steps[0].argv


def test_the_ci_plan_is_lint_then_one_test_job_per_unit_each_a_cuda_ci_command() -> None:
    from cuda_ci.cli.flags import build_parser
    from cuda_ci.plan.ci import ci_nodes, job_name

    nodes = ci_nodes(list(unit_names()), "/opt/python/cp312-cp312/bin/python", ["gpu-toolkit"])
    assert [job_name(n) for n in nodes] == ["lint", *(f"test --component {u}" for u in unit_names())]
    for node in nodes:
        args = build_parser().parse_args(fill(node.argv, {"repo": "/src", "out": "/w"}))
        assert args.repo.as_posix() == "/src"
    test = build_parser().parse_args(fill(nodes[1].argv, {"repo": "/src", "out": "/w"}))
    python = "/opt/python/cp312-cp312/bin/python"
    assert (test.build_python, test.group, test.out.as_posix()) == (python, ["gpu-toolkit"], "/w")

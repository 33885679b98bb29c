"""The fan-out: the plan's wheel matrix (every identifier by native runner), a pull request's subset, and
the refusal of any wheel from another job that the plan does not name or its job did not report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cuda_ci.build.wheel_check import Expected, parse_reports, prebuilt_problems, reported_problems, wheel_report
from cuda_ci.build.wheel_jobs import selected_identifiers
from cuda_ci.cli.app import main
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.manifest import sha256_of
from cuda_ci.plan.release import ReleasePlan
from cuda_ci.plan.wheel_matrix import GROUPS, changed_build_inputs, pull_request_subset
from tests.dagger_render import FAKE_COMMIT, offline_plan
from tests.helpers import REPO_ROOT, result_document

TAG, VERSION = "cuda-core-v0.3.0", "0.3.0"
OTHER_COMMIT = "1" * 40
MANYLINUX = {
    "x86_64": "manylinux_2_27_x86_64.manylinux_2_28_x86_64",
    "aarch64": "manylinux_2_27_aarch64.manylinux_2_28_aarch64",
}


def _plan(unit: str = "cuda-core", tag: str | None = TAG) -> dict[str, Any]:
    return offline_plan(unit, tag, prebuilt=True).as_json()


def wheel_name(identifier: str, version: str = VERSION, project: str = "cuda_core") -> str:
    """The file name a build of ``identifier`` gives (cibuildwheel's identifier → the wheel's tags)."""
    interpreter, _, platform = identifier.partition("-")
    abi = (
        f"{interpreter.removesuffix('t')}-{interpreter}"
        if interpreter.endswith("t")
        else f"{interpreter}-{interpreter}"
    )
    arch = platform.removeprefix("manylinux_") if platform.startswith("manylinux") else None
    tag = MANYLINUX[arch] if arch else platform
    return f"{project}-{version}-{abi}-{tag}.whl"


def _wheels(folder: Path, identifiers: list[str], **name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for identifier in identifiers:
        path = folder / wheel_name(identifier, **name)
        path.write_bytes(f"a wheel of {identifier}".encode())
        made.append(path)
    return made


def _groups(plan: dict[str, Any]) -> dict[str, list[str]]:
    return {entry["group"]: entry["identifiers"] for entry in plan["matrix"]}


def _fan_out(tmp_path: Path, plan: dict[str, Any]) -> tuple[list[Path], list[dict[str, Any]]]:
    """Every group's wheels, each in its own folder, and each wheel job's report of them."""
    expected = Expected.of_plan(plan)
    folders, reports = [], []
    for group, identifiers in _groups(plan).items():
        folder = tmp_path / group
        _wheels(folder, identifiers)
        report, problems = wheel_report(folder, expected, group, FAKE_COMMIT)
        assert problems == []
        folders.append(folder)
        reports.append(dict(report))
    return folders, reports


# --- the matrix -----------------------------------------------------------------------------------
@pytest.mark.parametrize("unit", ["cuda-pathfinder", "cuda-bindings", "cuda-core"])
def test_the_matrix_holds_every_identifier_a_release_builds_each_on_its_native_runner(unit: str) -> None:
    plan = offline_plan(unit, None, "snapshot", dry_run=True, prebuilt=True)
    platform = [c for c in get_unit(unit).components if c.wheel == "platform"]
    if not platform:
        assert plan.matrix() == [], "a pure unit fans out nothing"
        return
    folder = REPO_ROOT / platform[0].dir
    expected = selected_identifiers(folder, "linux") + selected_identifiers(folder, "windows")
    entries = plan.matrix()
    assert sorted(i for e in entries for i in e["identifiers"]) == sorted(expected)
    for entry in entries:
        arch = {"linux/amd64": ("x86_64",), "linux/arm64": ("aarch64",), "windows/amd64": ("win_amd64",),
                "windows/arm64": ("win_arm64",)}[entry["platform"]]  # fmt: skip
        assert all(i.endswith(arch) for i in entry["identifiers"]), entry
        group = GROUPS[entry["platform"]]
        assert (entry["group"], entry["runner"], entry["os"]) == (group.key, group.runner, group.os)
        assert entry["artifact"] == f"wheels-{group.key}" and entry["unit"] == unit
    assert ReleasePlan.from_json(json.loads(json.dumps(plan.as_json()))).matrix() == entries


def test_a_prebuilt_plan_has_no_wheel_nodes_and_its_build_takes_the_checked_wheels() -> None:
    plan = offline_plan("cuda-core", TAG, prebuilt=True)
    assert not plan.of_kind("wheel"), "the wheel jobs built and import-tested them"
    build = plan.node("build").argv
    assert "--prebuilt-wheels={prebuilt}" in build and "--wheel-reports={reports}" in build
    assert plan.node("build").needs == ("preflight",)
    assert offline_plan("cuda-pathfinder", "cuda-pathfinder-v1.3.0", prebuilt=True).matrix() == []


def test_a_pull_request_builds_one_identifier_per_group_unless_a_build_input_changed() -> None:
    unit = get_unit("cuda-core")
    changed = [
        "docs/workflows.md",
        "cuda_core/tests/test_device.py",
        "cuda_bindings/docs/source/index.rst",
        "bench/x.py",
    ]
    assert changed_build_inputs(unit, changed) == []
    inputs = [
        "cuda_core/cuda/core/_impl.pyx",
        "cuda_bindings/setup.py",
        "dagger/uv.lock",
        "cuda_pathfinder/pyproject.toml",
    ]
    assert changed_build_inputs(unit, [*changed, *inputs]) == inputs
    assert changed_build_inputs(get_unit("cuda-pathfinder"), ["cuda_core/setup.py"]) == [], "not its sibling"
    entries = offline_plan("cuda-core", None, "snapshot", dry_run=True, prebuilt=True).matrix()
    subset = pull_request_subset(entries, keep_all=False)
    assert [e["group"] for e in subset] == [e["group"] for e in entries], "every runner still builds"
    assert all(s["identifiers"] == e["identifiers"][:1] for s, e in zip(subset, entries, strict=True))
    assert pull_request_subset(entries, keep_all=True) == entries


# --- a wheel job's report -------------------------------------------------------------------------
def test_a_wheel_job_reports_each_files_sha256_and_the_commit_it_built(tmp_path: Path) -> None:
    plan = _plan()
    linux = _groups(plan)["linux-arm64"]
    made = _wheels(tmp_path / "w", linux)
    report, problems = wheel_report(tmp_path / "w", Expected.of_plan(plan), "linux-arm64", FAKE_COMMIT)
    assert problems == []
    assert report == {"schema": 1, "unit": "cuda-core", "group": "linux-arm64", "commit": FAKE_COMMIT,
                      "version": VERSION, "files": {p.name: sha256_of(p) for p in made}}  # fmt: skip


def test_a_wheel_job_refuses_what_its_group_does_not_build(tmp_path: Path) -> None:
    plan = _plan()
    groups = _groups(plan)
    folder = tmp_path / "w"
    first, second = groups["linux-amd64"][:2]
    _wheels(folder, groups["linux-amd64"][2:])  # the first identifier missing
    _wheels(folder, ["cp39-manylinux_x86_64"])
    _wheels(folder, [second], version="0.3.1")
    _, problems = wheel_report(folder, Expected.of_plan(plan), "linux-amd64", OTHER_COMMIT)
    assert f"{wheel_name('cp39-manylinux_x86_64')}: identifier cp39-manylinux_x86_64 is not one the plan builds" in (
        "\n".join(problems)
    )
    old = f"{wheel_name(second, '0.3.1')}: version 0.3.1, but the plan releases cuda-core 0.3.0"
    assert any(p.startswith(old) for p in problems)
    assert f"no wheel for the planned identifier {first} (matrix group linux-amd64)" in "\n".join(problems)
    assert (f"this job's checkout (linux-amd64) built {OTHER_COMMIT[:12]}, but the plan releases {FAKE_COMMIT[:12]}: "
            "the tag moved") in "\n".join(problems)  # fmt: skip
    _, problems = wheel_report(folder, Expected.of_plan(plan), "linux-s390x", FAKE_COMMIT)
    assert "the plan's matrix has no group linux-s390x" in problems[-1]


# --- the assembling job ---------------------------------------------------------------------------
def test_every_planned_and_reported_wheel_passes(tmp_path: Path) -> None:
    plan = _plan()
    folders, reports = _fan_out(tmp_path, plan)
    assert reported_problems(folders, Expected.of_plan(plan), reports) == []  # type: ignore[arg-type]


def test_an_altered_wheel_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    plan = _plan()
    folders, reports = _fan_out(tmp_path, plan)
    victim = sorted(folders[1].glob("*.whl"))[0]
    reported = reports[1]["files"][victim.name]
    victim.write_bytes(b"changed after its job made it")
    problems = reported_problems(folders, Expected.of_plan(plan), reports)  # type: ignore[arg-type]
    assert problems == [
        f"{victim.name} was altered after its wheel job (linux-arm64) made it: sha256 {sha256_of(victim)}, "
        f"the job reported {reported}; run the release again"
    ]


def test_an_unplanned_or_unreported_wheel_is_refused(tmp_path: Path) -> None:
    plan = _plan()
    folders, reports = _fan_out(tmp_path, plan)
    (stray,) = _wheels(folders[0], ["cp39-manylinux_x86_64"])
    reports[0]["files"][stray.name] = sha256_of(stray)  # even reported, it is not planned
    (foreign,) = _wheels(folders[0], ["cp312-manylinux_x86_64"], project="cuda_bindings", version="13.0.0")
    problems = reported_problems(folders, Expected.of_plan(plan), reports)  # type: ignore[arg-type]
    assert len(problems) == 3
    assert problems[0].startswith(f"{foreign.name}: cuda-bindings is not a platform distribution of cuda-core")
    assert (
        problems[1] == f"{foreign.name}: no wheel job of this run reported it: a wheel from elsewhere is never released"
    )
    assert f"{stray.name}: identifier cp39-manylinux_x86_64 is not one the plan builds" in problems[2]


def test_a_wheel_of_another_commit_or_version_is_refused(tmp_path: Path) -> None:
    plan = _plan()
    folders, reports = _fan_out(tmp_path, plan)
    reports[2]["commit"] = OTHER_COMMIT
    problems = reported_problems(folders, Expected.of_plan(plan), reports)  # type: ignore[arg-type]
    assert problems == [
        f"the wheel job windows-amd64 built {OTHER_COMMIT[:12]}, but the plan releases {FAKE_COMMIT[:12]}: the tag "
        "moved (or another commit was checked out) after the plan was made; start the release again"
    ]
    old = _plan(tag="cuda-core-v0.2.0")  # the same wheels against a plan of another version
    problems = reported_problems(folders, Expected.of_plan(old), reports)  # type: ignore[arg-type]
    assert problems and all(": version 0.3.0, but the plan releases cuda-core 0.2.0" in p for p in problems[1:])


def test_a_missing_or_unhanded_wheel_is_refused(tmp_path: Path) -> None:
    plan = _plan()
    folders, reports = _fan_out(tmp_path, plan)
    gone = sorted(folders[3].glob("*.whl"))[0]
    gone.unlink()
    identifier = _groups(plan)["windows-arm64"][0]
    problems = reported_problems(folders, Expected.of_plan(plan), reports)  # type: ignore[arg-type]
    assert problems == [
        f"{gone.name}: reported by the wheel job windows-arm64 but not handed over (its artifact lacks it): "
        "download every wheel job's artifact of this run",
        f"no wheel for the planned identifier {identifier} (matrix group windows-arm64): its wheel job made none; "
        "run the release's wheel jobs again",
    ]
    assert reported_problems(folders, Expected.of_plan(plan), []) == [
        "no wheel job reported any file for cuda-core: pass the wheel jobs' outputs (--reports)"
    ]


def test_the_build_node_checks_the_linux_wheels_it_is_handed(tmp_path: Path) -> None:
    plan = _plan()
    folders, reports = _fan_out(tmp_path, plan)
    linux = tmp_path / "linux"
    linux.mkdir()
    for folder in folders[:2]:
        for wheel in folder.glob("*.whl"):
            wheel.rename(linux / wheel.name)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({f"wheels-{r['group']}": json.dumps(r) for r in reports}))
    identifiers = [i for g in ("linux-amd64", "linux-arm64") for i in _groups(plan)[g]]
    expected = Expected.of_linux(get_unit("cuda-core"), FAKE_COMMIT, VERSION, identifiers)
    assert prebuilt_problems(linux, expected, outputs) == [], "the Windows groups' reports are not its business"
    assert prebuilt_problems(linux, expected, None) == []
    victim = sorted(linux.glob("*x86_64.whl"))[0]
    victim.write_bytes(b"altered")
    assert [p.split(" was altered")[0] for p in prebuilt_problems(linux, expected, outputs)] == [victim.name]


def test_check_wheels_refuses_with_every_problem_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan()
    folders, reports = _fan_out(tmp_path, plan)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    outputs = {f"wheels-{r['group']}": json.dumps(r) for r in reports} | {"unrelated": "x"}
    (tmp_path / "reports.json").write_text(json.dumps(outputs))
    argv = ["check-wheels", "--plan", str(tmp_path / "plan.json"), "--reports", str(tmp_path / "reports.json")]
    argv += [a for folder in folders for a in ("--wheels", str(folder))]
    assert main([*argv, "--json"]) == 0
    done = result_document(capsys.readouterr().out, "check-wheels")
    assert done["groups"] == sorted(_groups(plan)) and len(done["wheels"]) == sum(map(len, _groups(plan).values()))
    victim = sorted(folders[0].glob("*.whl"))[0]
    victim.write_bytes(b"altered")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: {victim.name} was altered after its wheel job (linux-amd64) made it" in err
    assert "error: wheels refused: none of them may join the release" in err


def test_reports_that_are_not_the_jobs_outputs_are_refused() -> None:
    with pytest.raises(CudaCiError, match="is not the wheel jobs' outputs as JSON"):
        parse_reports("[1, 2]", "--reports r.json")
    with pytest.raises(CudaCiError, match="a wheel job's output is not a schema 1 wheel report"):
        parse_reports(json.dumps({"wheels-linux-amd64": json.dumps({"schema": 2})}), "--reports r.json")
    assert parse_reports(json.dumps({"wheels-linux-amd64": "", "matrix": "[]"}), "r") == [], "empty: that job made none"


def test_the_host_release_takes_prebuilt_wheels_only_with_their_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag in ("--prebuilt", "--wheel-reports"):
        assert main(["release", "--tag", TAG, "--dry-run", flag, str(tmp_path), "--repo", str(tmp_path)]) == 2
        assert "--prebuilt and --wheel-reports go together" in capsys.readouterr().err

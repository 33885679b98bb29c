"""The fanned-out workflow's commands: the plan's wheel matrix (a pull request's subset included) and
``cuda-ci check-wheels``, in a wheel job (its group's report) and in the job that assembles the release
(every wheel against the plan and the reports). The checks themselves are :mod:`cuda_ci.build.wheel_check`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cuda_ci.build.wheel_check import OUTPUT_PREFIX, Expected, read_reports, reported_problems, wheel_report
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.git import Git
from cuda_ci.plan.release import ReleasePlan
from cuda_ci.plan.selection import Selection, resolve_source
from cuda_ci.plan.wheel_matrix import changed_build_inputs, pull_request_subset

Document = dict[str, Any]


def plan_document(plan: ReleasePlan, repo: Path, pull_request_base: str | None) -> Document:
    """``cuda-ci plan --json``'s fields; with ``--pull-request-base`` the matrix is a pull request's:
    one identifier per group unless the change touches something a build of the unit reads."""
    data = plan.as_json()
    if pull_request_base is None:
        return data
    git = Git.open(repo)
    if git.commit_of(pull_request_base) is None:
        raise UsageError(f"--pull-request-base {pull_request_base}: no such commit here (fetch it, fetch-depth: 0)")
    changed = git.out("diff", "--name-only", f"{pull_request_base}...{plan.source.commit}").splitlines()
    inputs = changed_build_inputs(get_unit(plan.source.unit), changed)
    data["matrix"] = pull_request_subset(plan.matrix(), keep_all=bool(inputs))
    data["pull_request"] = {"base": pull_request_base, "build_inputs_changed": inputs, "subset": not inputs}
    return data


def load_plan(path: Path) -> Document:
    """The plan ``cuda-ci plan --json`` printed (its document, or the plan alone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CudaCiError(
            f"--plan {path} cannot be read as JSON ({error}): write `cuda-ci plan --json` to it"
        ) from None
    if not isinstance(data, dict) or "source" not in data or "matrix" not in data:
        raise CudaCiError(f"--plan {path} is not `cuda-ci plan --json`'s output (no source or matrix)")
    return data


def checkout_commit(repo: Path, plan: Document) -> str:
    """The commit this checkout names for the plan's selection: the tag's, a rehearsal's ref, HEAD."""
    source = plan["source"]
    preflight: list[str] = next((n["argv"] for n in plan["nodes"] if n["id"] == "preflight"), [])
    ref = next((a.split("=", 1)[1] for a in preflight if a.startswith("--ref=")), None)
    selection = Selection(
        tag=source["tag"] if source["mode"] != "snapshot" else None,
        component=source["unit"],
        snapshot=source["mode"] == "snapshot",
        rehearse=source["mode"] == "rehearsal",
        ref=ref,
    )
    return resolve_source(Git.open(repo), selection).commit


def check_wheels(
    *, plan_file: Path, wheels: Sequence[Path], group: str | None, reports: Path | None, repo: Path
) -> Document:
    """``cuda-ci check-wheels``: with ``group``, a wheel job's report of its wheels (refused when the plan
    does not name them); with ``reports``, every wheel of every folder against the plan and the reports."""
    plan = load_plan(plan_file)
    expected = Expected.of_plan(plan)
    for folder in wheels:
        if not folder.is_dir():
            raise UsageError(f"--wheels {folder}: no such folder")
    if group is not None:
        if len(wheels) != 1:
            raise UsageError("--group takes one --wheels folder: the wheel job's own")
        report, problems = wheel_report(wheels[0], expected, group, checkout_commit(repo, plan))
        if problems:
            raise CudaCiError(*problems, f"the wheels of {group} are not what the plan builds: nothing was reported")
        return {"group": group, "output": f"{OUTPUT_PREFIX}{group}", "report": dict(report)}
    assert reports is not None
    found = read_reports(reports)
    problems = reported_problems(wheels, expected, found)
    if problems:
        raise CudaCiError(*problems, "wheels refused: none of them may join the release")
    names = sorted(name for report in found for name in report["files"])
    return {"commit": expected.commit, "groups": sorted(r["group"] for r in found), "wheels": names}

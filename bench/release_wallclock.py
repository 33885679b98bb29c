#!/usr/bin/env python3
"""A release's wall clock on GitHub Actions, modelled from the workflows' job graph and the plan.

Three designs, each a graph of jobs (a job starts when every job it `needs:` has ended) whose critical
path is the release's wall clock:
  single-runner  release.yml before the fan-out (commit 86c3318): the Windows jobs, then one `build` job
                 that runs `dagger call release` on one ubuntu-latest, every Linux identifier one after
                 another, the aarch64 ones under QEMU emulation; then the publish jobs
  fanned-out     release.yml now (read from .github/workflows/release.yml): plan, one wheel job per platform
                 group of the plan's matrix on a native runner, assemble, the publish jobs
  old flow       upstream's: the tag push runs CI (one native build job per identifier, its test job, the
                 docs job), then the release workflow (lookup-run-id and notes, download and validate,
                 docs, TestPyPI, PyPI), per UPSTREAM.md; the time a person waits between them is left out
Each job costs the runner's start-up, its set-up (checkout, Python, cuda-ci's locked tools; the Dagger
engine where it runs Dagger) and its work. The work comes from the plan's matrix (cibuildwheel's
selection per platform) times one identifier's build, measured here by one real build of the unit's
host wheel (`cuda-ci build --wheels-only`: every declared variant, the siblings it compiles against,
auditwheel); the release's other work is measured from one `cuda-ci release --dry-run` (its run-log.json);
the emulation factor, the runner start-up and the set-up are parameters with their sources (--help).
Targets (printed, not asserted): fanned-out <= 1.3 x (longest wheel job + assemble + publish), and
fanned-out <= 0.25 x single-runner.

Usage: python bench/release_wallclock.py [--unit U] [--short] [--qemu-factor X] [--runner-start S] ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from cuda_ci.build.wheel_jobs import linux_wheel_jobs, selected_identifiers
from cuda_ci.infra.components import get_unit
from cuda_ci.plan.release import PlanOptions, ReleasePlan, RepositoryState, WheelJob, plan_release

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from release_cost import make_clone  # noqa: E402  (the throwaway clone of this working tree)

FLOOR_TARGET = 1.3  # fanned-out / (longest wheel job + assemble + publish)
SINGLE_TARGET = 0.25  # fanned-out / single-runner
# release.yml's needs: before the fan-out (commit 86c3318), as that file declared them.
SINGLE_RUNNER_NEEDS = {
    "guard": [],
    "windows-wheels": ["guard"],
    "windows-arm64-wheels": ["guard"],
    "build": ["guard", "windows-wheels", "windows-arm64-wheels"],
    "sign": ["build"],
    "github-draft": ["sign"],
    "publish-testpypi": ["github-draft"],
    "install-back-testpypi": ["publish-testpypi"],
    "publish-pypi": ["install-back-testpypi"],
    "install-back-pypi": ["publish-pypi"],
    "finalize": ["install-back-pypi"],
    "deploy-docs": ["finalize"],
}
# Upstream's flow (UPSTREAM.md, "The flow since their PR #1606"): the tag's CI run, then the release workflow.
OLD_FLOW_NEEDS = {
    "ci-build": [],  # one native build job per identifier, side by side: the longest one
    "ci-test": ["ci-build"],
    "ci-docs": ["ci-build"],
    "lookup-run-id": ["ci-test", "ci-docs"],  # and check_release_notes
    "download-validate-draft": ["lookup-run-id"],
    "docs-deploy": ["lookup-run-id"],
    "publish-testpypi": ["download-validate-draft"],
    "publish-pypi": ["publish-testpypi"],
}
PUBLISH_JOBS = ("sign", "github-draft", "publish-testpypi", "install-back-testpypi", "publish-pypi",
                "install-back-pypi", "finalize", "deploy-docs")  # fmt: skip


@dataclass(frozen=True)
class Inputs:
    """Seconds of each piece of work, and where each figure comes from."""

    wheel: float  # one identifier's build, native
    assemble: float  # preflight, sdists, pure wheels, archive, manifest, validate beside docs (no platform wheel)
    publish_target: float  # one publish target's work (upload, or install back, or un-draft)
    test: float  # one CI test job's tests against a built wheel
    docs: float
    qemu: float
    runner_start: float
    setup: float
    dagger_start: float
    windows: float  # a Windows identifier's build against a Linux one's (same runner class)
    sources: dict[str, str]


def needs_of(workflow: Path) -> dict[str, list[str]]:
    """A workflow's jobs and what each `needs:`."""
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    return {
        name: [job["needs"]] if isinstance(job.get("needs"), str) else list(job.get("needs", []))
        for name, job in jobs.items()
    }


def critical_path(needs: Mapping[str, Sequence[str]], seconds: Mapping[str, float]) -> tuple[float, list[str]]:
    """The longest chain of the graph: its seconds and its jobs, first to last."""
    finish: dict[str, tuple[float, list[str]]] = {}

    def end(job: str) -> tuple[float, list[str]]:
        if job not in finish:
            before = max((end(n) for n in needs[job]), default=(0.0, []), key=lambda f: f[0])
            finish[job] = (before[0] + seconds[job], [*before[1], job])
        return finish[job]

    return max((end(job) for job in needs), key=lambda f: f[0])


def the_plan(unit_name: str) -> ReleasePlan:
    """The unit's release plan as `cuda-ci plan --runner dagger --prebuilt` decides it for this tree."""
    unit = get_unit(unit_name)
    platform = [c for c in unit.components if c.wheel == "platform"]
    jobs: list[WheelJob] = []
    windows: list[str] = []
    if platform:
        folder = REPO / platform[0].dir
        jobs = [WheelJob(identifier=j.identifier, platform=j.platform, image=j.image, python=str(j.python))
                for j in linux_wheel_jobs(folder)]  # fmt: skip
        windows = selected_identifiers(folder, "windows")
    state = RepositoryState(commit="0" * 40, versions={c.distribution: "1.0.0" for c in unit.components},
                            wheel_jobs=jobs, windows_identifiers=windows)  # fmt: skip
    return plan_release(
        unit, f"{unit.tag_prefix}1.0.0", "release", None, PlanOptions(runner="dagger", prebuilt=True), state
    )


def leg_seconds(entry: Mapping[str, Any], inputs: Inputs, parallel: int) -> float:
    """One wheel job of the matrix on its native runner: start, set-up, then its builds: on Linux the
    Dagger graph's wheel nodes `parallel` at a time, on Windows cibuildwheel's, one after another."""
    linux = entry["os"] == "linux"
    count = len(entry["identifiers"])
    work = math.ceil(count / parallel) * inputs.wheel if linux else count * inputs.wheel * inputs.windows
    return inputs.runner_start + inputs.setup + (inputs.dagger_start if linux else 0.0) + work


def job(inputs: Inputs, work: float, dagger: bool = False) -> float:
    return inputs.runner_start + inputs.setup + (inputs.dagger_start if dagger else 0.0) + work


def fanned_out(plan: ReleasePlan, inputs: Inputs, parallel: int) -> tuple[dict[str, list[str]], dict[str, float]]:
    needs = needs_of(REPO / ".github" / "workflows" / "release.yml")
    legs = [leg_seconds(entry, inputs, parallel) for entry in plan.matrix()]
    seconds = {"guard": inputs.runner_start + 2, "plan": job(inputs, 10.0), "wheels": max(legs),
               "assemble": job(inputs, inputs.assemble, dagger=True)}  # fmt: skip
    seconds |= publish_jobs(inputs)
    return needs, seconds


def publish_jobs(inputs: Inputs) -> dict[str, float]:
    """The publish chain, as split by the security issue: each upload, and each install-back apart."""
    return {name: job(inputs, inputs.publish_target) for name in PUBLISH_JOBS}


def single_runner(plan: ReleasePlan, inputs: Inputs) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Every Linux identifier one after another on one x86_64 runner, the aarch64 ones emulated."""
    groups = {entry["group"]: entry for entry in plan.matrix()}
    count = {key: len(groups[key]["identifiers"]) if key in groups else 0 for key in
             ("linux-amd64", "linux-arm64", "windows-amd64", "windows-arm64")}  # fmt: skip
    linux = (count["linux-amd64"] + count["linux-arm64"] * inputs.qemu) * inputs.wheel
    seconds = {
        "guard": inputs.runner_start + 2,
        "windows-wheels": job(inputs, count["windows-amd64"] * inputs.wheel * inputs.windows),
        "windows-arm64-wheels": job(inputs, count["windows-arm64"] * inputs.wheel * inputs.windows),
        "build": job(inputs, linux + inputs.assemble, dagger=True),
    }
    return SINGLE_RUNNER_NEEDS, seconds | publish_jobs(inputs)


def old_flow(inputs: Inputs) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Upstream's: every identifier natively in its own CI job, then the release workflow's jobs."""
    seconds = {
        "ci-build": job(inputs, inputs.wheel),
        "ci-test": job(inputs, inputs.test),
        "ci-docs": job(inputs, inputs.docs),
        "lookup-run-id": job(inputs, 5.0),
        "download-validate-draft": job(inputs, inputs.publish_target),
        "docs-deploy": job(inputs, inputs.docs),
        "publish-testpypi": job(inputs, 2 * inputs.publish_target),  # upload, then the install back
        "publish-pypi": job(inputs, 2 * inputs.publish_target),
    }
    return OLD_FLOW_NEEDS, seconds


# --- the inputs: measured here, or assumed (--short) ---------------------------------------------
PUBLISHED = {
    "qemu": "8x: a compiled wheel's build under QEMU against native, from published runs: PyTables "
    "(github.com/PyTables/PyTables/issues/1331: cibuildwheel step 183 min aarch64 emulated, 17 min x86_64 native, "
    "10.8x), boost-histogram (github.com/pypa/cibuildwheel/pull/482: 50 min per Python emulated, 5-10 min native), "
    "python-suitesparse-graphblas (github.com/GraphBLAS/python-suitesparse-graphblas/pull/84: about 5x); "
    "not measured here: this machine has no binfmt_misc, so podman cannot run an aarch64 image",
    "runner_start": "15 s: a GitHub-hosted job from queued to its first step; github/gh-aw#21703 measured 6 s between "
    "two jobs and 2-3 s of provisioning; under load the P90 queue nears 1 min (GitHub community discussion on "
    "ubuntu-slim queue times, summarised at devactivity.com)",
    "setup": "40 s (assumed): actions/checkout with fetch-depth 0, setup-python, pip install of "
    "dagger/locked/cuda-ci.txt with hashes",
    "dagger_start": "60 s: installing the Dagger CLI and starting a cold engine, loading the module; "
    "dagger/dagger#7599 shows a first connect of 23.7 s, dagger/dagger#9355 says a cold engine can add minutes",
    "windows": "1.0x (assumed): a Windows identifier's build against a Linux one on the same runner class",
    "parallel": "4: the CPUs of GitHub's standard hosted runners for public repositories, Linux x64 and arm64, "
    "Windows x64 and arm64 (docs.github.com, Supported runners and hardware resources); Dagger runs a Linux job's "
    "independent wheel nodes side by side, cibuildwheel on Windows builds one identifier after another; the "
    "single-runner design builds every Linux identifier one after another, as its one dagger call does on a busy "
    "runner",
}
MEASURED = "as measured here"
UPSTREAM = "at upstream's scale"
UPSTREAM_SOURCE = (
    "upstream's cuda-core compiles 45 extension modules per variant; a plain build of it took 2 minutes on 2 cores "
    "on this machine (issue 25), so 240 s per identifier for its two variants (--upstream-wheel)"
)
ASSUMED = {"wheel": 60.0, "assemble": 60.0, "publish_target": 15.0, "test": 60.0, "docs": 10.0}


def cuda_ci(argv: Sequence[str], repo: Path, env: Mapping[str, str]) -> float:
    """Seconds of one `python -m cuda_ci ...` run in ``repo``; a failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cuda_ci", *argv], cwd=repo, env=dict(env), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"cuda-ci {' '.join(argv)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - start


def measure(unit_name: str, scratch: Path) -> dict[str, float]:
    """One identifier's build, the release's other work and a CI test job, each after a warm-up run."""
    repo = make_clone(scratch)
    tag = {"cuda-bindings": "v13.0.0", "cuda-core": "cuda-core-v0.3.0"}[unit_name]
    env = {
        **os.environ,
        "CUDA_CI_CONTAINER_ENGINE": "none",
        "GITHUB_ACTIONS": "",
        "CUDA_CI_CACHE_DIR": str(scratch / "cache"),
    }
    env.pop("GITHUB_TOKEN", None)
    env.pop("GH_TOKEN", None)
    runs: dict[str, float] = {}
    for attempt in ("warm-up", "measured"):
        print(f"  {attempt}: wheel", end="", flush=True)
        out = scratch / f"wheel-{attempt}"
        # a wheel node's command line (cuda_ci.plan.release): build, repair, then its import test
        wheel_node = ["build", "--tag", tag, "--wheels-only", f"--build-python={sys.executable}"]
        runs["wheel"] = cuda_ci([*wheel_node, "--repo", str(repo), "--out", str(out)], repo, env)
        print(f" {runs['wheel']:.0f} s, release", end="", flush=True)
        out = scratch / f"release-{attempt}"
        runs["release"] = cuda_ci(
            ["release", "--tag", tag, "--dry-run", "--repo", str(repo), "--out", str(out)], repo, env
        )
        stages = json.loads((out / "run-log.json").read_text())["stages"]
        print(f" {runs['release']:.0f} s, test", end="", flush=True)
        runs["test-job"] = cuda_ci(["test", "--component", unit_name, "--repo", str(repo)], repo, env)
        print(f" {runs['test-job']:.0f} s")
    publish = float(stages.get("publish", 0.0))
    return {
        "wheel": runs["wheel"],
        "assemble": max(runs["release"] - publish - runs["wheel"], 0.1 * runs["release"]),
        "publish_target": publish / 4,
        "test": max(runs["test-job"] - runs["wheel"], 1.0),
        "docs": float(stages.get("docs", 0.0)),
    }


def inputs_of(args: argparse.Namespace, work: Mapping[str, float], measured: bool) -> Inputs:
    how = f"measured here ({os.cpu_count()} cores)" if measured else "assumed (--short: no build)"
    sources = {
        "wheel": f"{how}: a wheel node's `cuda-ci build --tag T --wheels-only --build-python P` of {args.unit}'s "
        "host wheel: every declared variant, its siblings, auditwheel, the import test",
        "assemble": f"{how}: `cuda-ci release --tag T --dry-run` less its publish stage and its one platform wheel",
        "publish_target": f"{how}: the dry-run's publish stage (embedded indexes) / 4 targets",
        "test": f"{how}: `cuda-ci test` less its build",
        "docs": f"{how}: the dry-run's docs stage",
        **PUBLISHED,
    }
    return Inputs(**work, qemu=args.qemu_factor, runner_start=args.runner_start, setup=args.setup,
                  dagger_start=args.dagger_start, windows=args.windows_factor, sources=sources)  # fmt: skip


def report(
    unit: str, plan: ReleasePlan, inputs: Inputs, parallel: int, label: str, sources: bool = True
) -> dict[str, object]:
    designs = {"single-runner": single_runner(plan, inputs), "fanned-out": fanned_out(plan, inputs, parallel),
               "old flow": old_flow(inputs)}  # fmt: skip
    print(f"\n=== {unit}, {label}: one identifier's build {inputs.wheel:.0f} s ===")
    print("the plan's matrix")
    for entry in plan.matrix():
        leg = leg_seconds(entry, inputs, parallel)
        print(f"  {entry['group']:<14} {entry['runner']:<17} {len(entry['identifiers']):>2} identifiers  {leg:7.0f} s")
    print(f"\n{'design':<15}{'critical path':>15}  jobs on it")
    paths = {}
    for name, (needs, seconds) in designs.items():
        total, chain = critical_path(needs, seconds)
        paths[name] = total
        print(f"{name:<15}{total:>13.0f} s  {' → '.join(chain)}")
    _, fan = designs["fanned-out"]
    floor = fan["wheels"] + fan["assemble"] + sum(fan[j] for j in PUBLISH_JOBS)
    ratios = {
        "fanned-out / (longest wheel job + assemble + publish)": (paths["fanned-out"] / floor, FLOOR_TARGET),
        "fanned-out / single-runner": (paths["fanned-out"] / paths["single-runner"], SINGLE_TARGET),
        "fanned-out / old flow": (paths["fanned-out"] / paths["old flow"], None),
    }
    print()
    for name, (ratio, target) in ratios.items():
        verdict = "" if target is None else f"  (target <= {target}: {'met' if ratio <= target else 'missed'})"
        print(f"ratio {name}: {ratio:.3f}{verdict}")
    if not sources:
        return {"unit": unit, "critical_path": paths, "ratios": {k: round(v[0], 3) for k, v in ratios.items()}}
    print("\ninputs (seconds) and their sources:")
    for field in ("wheel", "assemble", "publish_target", "test", "docs", "qemu", "runner_start", "setup",
                  "dagger_start", "windows"):  # fmt: skip
        print(f"  {field} = {getattr(inputs, field):.1f}: {inputs.sources[field]}")
    print(f"  parallel = {parallel}: {inputs.sources['parallel']}")
    return {"unit": unit, "critical_path": paths, "ratios": {k: round(v[0], 3) for k, v in ratios.items()}}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--unit", default="cuda-core", choices=["cuda-bindings", "cuda-core"])
    parser.add_argument("--short", action="store_true", help="no builds: assumed durations (seconds; for .ci/test)")
    parser.add_argument("--qemu-factor", type=float, default=8.0, help="emulated / native build time (default 8)")
    parser.add_argument("--runner-start", type=float, default=15.0, help="a job's start-up on a hosted runner, s")
    parser.add_argument("--setup", type=float, default=40.0, help="checkout, Python and cuda-ci's tools, s")
    parser.add_argument("--dagger-start", type=float, default=60.0, help="the Dagger CLI and a cold engine, s")
    parser.add_argument("--windows-factor", type=float, default=1.0, help="a Windows build against a Linux one")
    side_by_side = (
        "wheel nodes side by side in a Linux wheel job (default 4: a public repository's hosted runner's CPUs)"
    )
    parser.add_argument("--parallel", type=int, default=4, help=side_by_side)
    parser.add_argument("--upstream-wheel", type=float, default=240.0, help=f"{UPSTREAM}: one identifier's build, s")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = the_plan(args.unit)
    if args.short:
        work = ASSUMED
    else:
        print(f"measuring {args.unit} in a throwaway clone of this working tree")
        with tempfile.TemporaryDirectory(prefix="cuda-ci-wallclock-") as tmp:
            work = measure(args.unit, Path(tmp))
    inputs = inputs_of(args, work, not args.short)
    label = "assumed (--short: nothing built)" if args.short else MEASURED
    figures = {label: report(args.unit, plan, inputs, args.parallel, label)}
    upstream = replace(inputs, wheel=args.upstream_wheel)
    figures[UPSTREAM] = report(args.unit, plan, upstream, args.parallel, UPSTREAM, sources=False)
    print(f"\n({UPSTREAM}: {UPSTREAM_SOURCE}; every other input as above)")
    if args.json:
        args.json.write_text(json.dumps({**figures, "work": dict(work)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""What a release costs: against a bare build and against the old flow, and where the time goes.

One run, in a throwaway clone of this working tree with one release tag per unit:
  bare      python -m build of the unit at its tag (the floor: one build)
  release   cuda-ci release --tag T --dry-run (everything, the embedded indexes included)
  old flow  cuda-ci ci (every unit built and tested, docs built), then the release of those artifacts
Each figure is measured after a warm-up, several times, and reported as a median. Also: per-stage
seconds (run-log.json), builds per released artifact, peak memory of the cuda-ci process, and a
cold release (empty pip, uv and cuda-ci caches: no kept tool environment) against a warm one. The
release figures are warm: after the warm-up, the kept build and Sphinx environments exist, while
bare builds make their isolated environment every time, as `python -m build` does.
Nothing here asserts; it prints ratios.

Usage: python bench/release_cost.py [--repeats N] [--skip-old-flow] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNITS = {
    "cuda-pathfinder": ("cuda-pathfinder-v1.0.0", ("cuda_pathfinder",)),
    "cuda-bindings": ("v13.0.0", ("cuda_bindings", "cuda_python")),
}
TARGETS = {"cuda-pathfinder": 3.0, "cuda-bindings": 2.0}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "b@e.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "b@e.invalid",
}


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    run_log: dict[str, object] = field(default_factory=dict)


def sh(argv: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run a command; its wall time and its peak resident memory (wait4 of that process)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(a) for a in argv], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        error = process.stderr.read().decode(errors="replace")[-3000:] if process.stderr else ""
        raise SystemExit(f"{' '.join(map(str, argv))} failed ({process.returncode}):\n{error}")
    if process.stderr:
        process.stderr.close()
    return Run(seconds, usage.ru_maxrss / 1024)


def make_clone(root: Path) -> Path:
    """A new repository holding this working tree's files (tracked and untracked, not ignored)."""
    repo = root / "repo"
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env)
    for tag in ("cuda-pathfinder-v1.0.0", "v13.0.0", "cuda-core-v0.3.0"):
        subprocess.run(["git", "tag", "-a", tag, "-m", tag], cwd=repo, check=True, env=env)
    return repo


def bare(repo: Path, tag: str, dirs: Sequence[str], scratch: Path, env: dict[str, str]) -> Run:
    """python -m build of the unit's folders, checked out at the tag: the floor."""
    tree = scratch / f"bare-{time.monotonic_ns()}"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), f"refs/tags/{tag}"], cwd=repo, check=True)
    try:
        total = Run(0.0, 0.0)
        for name in dirs:
            run = sh(
                [sys.executable, "-m", "build", "--installer", "uv", "--outdir", tree / "dist", tree / name], tree, env
            )
            total = Run(total.seconds + run.seconds, max(total.peak_rss_mb, run.peak_rss_mb))
        return total
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo, check=True)


def release(repo: Path, tag: str, scratch: Path, env: dict[str, str]) -> Run:
    out = scratch / f"release-{time.monotonic_ns()}"
    run = sh(
        [sys.executable, "-m", "cuda_ci", "release", "--tag", tag, "--dry-run", "--repo", repo, "--out", out], repo, env
    )
    run.run_log = json.loads((out / "run-log.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return run


def old_flow(repo: Path, tag: str, scratch: Path, env: dict[str, str]) -> Run:
    ci = sh([sys.executable, "-m", "cuda_ci", "ci", "--repo", repo], repo, env)
    rel = release(repo, tag, scratch, env)
    return Run(ci.seconds + rel.seconds, max(ci.peak_rss_mb, rel.peak_rss_mb), rel.run_log)


def median(runs: Sequence[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def measure(label: str, repeats: int, once: object) -> list[Run]:
    print(f"  {label}: warm-up", end="", flush=True)
    once()  # type: ignore[operator]
    runs = []
    for i in range(repeats):
        print(f", {i + 1}", end="", flush=True)
        runs.append(once())  # type: ignore[operator]
    print(f"  (median {median(runs):.1f} s)")
    return runs


def builds_per_artifact(run_log: dict[str, object]) -> dict[str, int]:
    """Steps that built a release distribution, in any stage: build's own, and any rebuild by validate
    ("build <distribution> wheel from <sdist>"). Sibling wheels are install helpers, not artifacts."""
    counts: dict[str, int] = {}
    for step in run_log.get("steps", []):  # type: ignore[union-attr]
        words = str(step["name"]).split()  # type: ignore[index]
        if step["stage"] in ("build", "validate") and words[0] == "build" and words[1] != "sibling":  # type: ignore[index]
            counts[words[1]] = counts.get(words[1], 0) + 1
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per figure after one warm-up (default 3)")
    parser.add_argument("--skip-old-flow", action="store_true", help="skip the old flow (the longest figure)")
    parser.add_argument(
        "--json", type=Path, default=REPO / "bench" / "results" / "latest.json", help="where to write the figures"
    )
    args = parser.parse_args(argv)

    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "units": {},
    }
    with tempfile.TemporaryDirectory(prefix="cuda-ci-bench-") as tmp:
        scratch = Path(tmp)
        repo = make_clone(scratch)
        caches = scratch / "caches"
        env = {
            **os.environ,
            "PIP_CACHE_DIR": str(caches / "pip"),
            "UV_CACHE_DIR": str(caches / "uv"),
            "CUDA_CI_CACHE_DIR": str(caches / "cuda-ci"),
            "GITHUB_ACTIONS": "",
        }
        env.pop("GITHUB_TOKEN", None)
        env.pop("GH_TOKEN", None)

        print("cold and warm release (cuda-pathfinder): empty pip/uv/cuda-ci caches, then the same caches again")
        colds, warms = [], []
        for i in range(args.repeats):
            print(f"  pair {i + 1}", flush=True)
            shutil.rmtree(caches, ignore_errors=True)
            colds.append(release(repo, UNITS["cuda-pathfinder"][0], scratch, env))
            warms.append(release(repo, UNITS["cuda-pathfinder"][0], scratch, env))
        results["cold_warm"] = {"cold": median(colds), "warm": median(warms)}

        for unit, (tag, dirs) in UNITS.items():
            print(f"{unit} ({tag})")
            bare_runs = measure("bare", args.repeats, lambda tag=tag, dirs=dirs: bare(repo, tag, dirs, scratch, env))
            release_runs = measure("release", args.repeats, lambda tag=tag: release(repo, tag, scratch, env))
            entry: dict[str, object] = {
                "bare": median(bare_runs),
                "release": median(release_runs),
                "stages": {
                    k: statistics.median(float(r.run_log["stages"][k]) for r in release_runs)
                    for k in release_runs[0].run_log["stages"]
                },  # type: ignore[index]
                "builds_per_artifact": builds_per_artifact(release_runs[-1].run_log),
                "peak_rss_mb": max(r.peak_rss_mb for r in release_runs),
            }
            if not args.skip_old_flow:
                entry["old_flow"] = median(
                    measure("old flow", args.repeats, lambda tag=tag: old_flow(repo, tag, scratch, env))
                )
            results["units"][unit] = entry  # type: ignore[index]

    report(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


def report(results: dict[str, object]) -> None:
    units: dict[str, dict[str, object]] = results["units"]  # type: ignore[assignment]
    print(f"\nmachine: {results['machine']}")
    print(f"{'unit':<16}{'bare s':>9}{'release s':>11}{'old flow s':>12}  stages (s)")
    for unit, e in units.items():
        stages = ", ".join(f"{k} {v:.1f}" for k, v in e["stages"].items())  # type: ignore[attr-defined]
        old = f"{e['old_flow']:.1f}" if "old_flow" in e else "-"
        print(f"{unit:<16}{e['bare']:>9.1f}{e['release']:>11.1f}{old:>12}  {stages}")
    for unit, e in units.items():
        _ratio(f"release/bare {unit}", float(e["release"]), float(e["bare"]), TARGETS[unit])  # type: ignore[arg-type]
        if "old_flow" in e:
            _ratio(f"release/old-flow {unit}", float(e["release"]), float(e["old_flow"]), 0.25)  # type: ignore[arg-type]
        print(f"builds per artifact {unit}: {e['builds_per_artifact']}")
        print(f"peak memory of cuda-ci {unit}: {float(e['peak_rss_mb']):.0f} MiB")  # type: ignore[arg-type]
    cw: dict[str, float] = results["cold_warm"]  # type: ignore[assignment]
    _ratio("warm/cold release cuda-pathfinder", cw["warm"], cw["cold"], 0.6)


def _ratio(name: str, numerator: float, denominator: float, target: float) -> None:
    ratio = numerator / denominator
    missed = ", missed" if ratio > target else ""
    print(f"ratio {name}: {ratio:.2f} ({numerator:.1f} s / {denominator:.1f} s; target <= {target}{missed})")


if __name__ == "__main__":
    raise SystemExit(main())

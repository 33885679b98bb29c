#!/usr/bin/env python3
"""What a release costs: against the floor, a bare build and the old flow, and where the time goes.

One run, in a throwaway clone of this working tree with one release tag per unit (every unit of the
registry, dagger/src/cuda_ci/infra/components.py), all on one commit:
  floor     python -m build --no-isolation of the unit's folders at its tag (the wheel once more for each
            further variant a folder declares, as the release builds it), in an environment that
            already holds each folder's build backend: its [build-system] requires and whatever the
            backend asks for (PyPA build's get_requires_for_build), installed and compiled before,
            not timed. A requirement naming a component of this repository is that component's
            wheel built from the same commit (with its own floor), never the index's: those names
            hold other builds there.
  bare      python -m build of the same folders and variants, isolated (a fresh build environment every
            time; component requirements overridden with the same wheels)
  release   cuda-ci release --tag T --dry-run (everything, the embedded indexes included)
  old flow  cuda-ci ci (every unit built and tested, docs built), then the release of those artifacts
Each figure is measured after a warm-up, several times, and reported as a median. Also: per-stage
seconds (run-log.json), builds per released artifact, peak memory of the cuda-ci process, and a
cold release (empty pip, uv and cuda-ci caches: no kept tool environment) against a warm one. The
release figures are warm: after the warm-up, the kept build and Sphinx environments exist, while
bare builds make their isolated environment every time, as `python -m build` does.
Targets: release <= 1.5x the floor for every unit; warm <= 0.5x cold (cuda-pathfinder);
release <= 0.2x the old flow. Nothing here asserts; it prints the ratios and which targets are met.

Usage: python bench/release_cost.py [--repeats N] [--unit U]... [--skip-old-flow] [--json PATH]
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from build import ProjectBuilder
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cuda_ci.build.component_build import declared_variants
from cuda_ci.infra.components import COMPONENTS, UNITS, Component, get_component

REPO = Path(__file__).resolve().parents[1]
# The version each unit's bench tag carries; cuda-core requires cuda-bindings 13.
VERSIONS = {"cuda-pathfinder": "1.0.0", "cuda-bindings": "13.0.0", "cuda-core": "0.3.0"}
TAGS = {u.name: f"{u.tag_prefix}{VERSIONS.get(u.name, '1.0.0')}" for u in UNITS}
DIRS = {u.name: tuple(c.dir for c in u.components) for u in UNITS}
BY_NAME = {canonicalize_name(c.distribution): c for c in COMPONENTS}
BY_DIR = {c.dir: c for c in COMPONENTS}
FLOOR_TARGET = 1.5  # release / floor, every unit
WARM_TARGET = 0.5  # warm / cold release
OLD_FLOW_TARGET = 0.2  # release / old flow, every unit
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


def sh(argv: Sequence[str | Path], cwd: Path, env: Mapping[str, str] | None = None) -> Run:
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
    for tag in TAGS.values():
        subprocess.run(["git", "tag", "-a", tag, "-m", tag], cwd=repo, check=True, env=env)
    return repo


def worktree(repo: Path, ref: str, path: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(path), ref], cwd=repo, check=True)
    return path


def closure(component: Component) -> list[Component]:
    """The component and the components it depends on, dependencies first."""
    found: list[Component] = []
    for dependency in component.depends_on:
        found += [c for c in closure(get_component(dependency)) if c not in found]
    return [*found, component]


@dataclass
class Floor:
    """Per component folder, an environment that already holds its build backend (made once, not timed).

    It holds ``[build-system] requires``, this run's ``build``, and what the backend asks for
    (``get_requires_for_build`` of PyPA build, run in that environment), all compiled at install. A
    requirement naming a component of the registry is that component's wheel, built here from the
    same commit in its own floor, never the index's (those names hold other builds there).
    """

    tree: Path  # a worktree of the bench commit (every bench tag names it)
    root: Path
    env: dict[str, str]
    pythons: dict[str, Path] = field(default_factory=dict)
    wheels: dict[str, Path] = field(default_factory=dict)
    making: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def python(self, component: Component) -> Path:
        if component.dir in self.pythons:
            return self.pythons[component.dir]
        if component.dir in self.making:
            raise SystemExit(f"{component.distribution}: its build requirements need its own wheel (a cycle)")
        self.making.add(component.dir)
        venv = self.root / "envs" / component.dir
        sh([uv(), "venv", "--quiet", "--python", sys.executable, venv], self.root, self.env)
        python = venv / "bin" / "python"
        builder = ProjectBuilder(self.tree / component.dir, python_executable=str(python), runner=self.hook_runner)
        self.install(python, [f"build=={metadata.version('build')}", *builder.build_system_requires])
        dynamic = {*builder.get_requires_for_build("sdist"), *builder.get_requires_for_build("wheel")}
        third_party, siblings = self.split(dynamic)
        if third_party or siblings:
            self.install(python, [*third_party, *(str(self.wheel(c)) for c in siblings)])
        self.pythons[component.dir] = python
        return python

    def wheel(self, component: Component) -> Path:
        """The component's wheel, built from the bench commit with its own floor."""
        if component.dir not in self.wheels:
            out = self.root / "wheels" / component.dir
            source = self.tree / component.dir
            build: list[str | Path] = [
                self.python(component),
                "-m",
                "build",
                "--no-isolation",
                "--wheel",
                "--outdir",
                out,
                source,
            ]
            sh(build, self.tree, self.env)
            (self.wheels[component.dir],) = out.glob("*.whl")
        return self.wheels[component.dir]

    def split(self, requirements: Iterable[str]) -> tuple[list[str], list[Component]]:
        """Third-party requirements, and the components (with theirs) to install from this commit's wheels."""
        third_party: list[str] = []
        siblings: list[Component] = []
        for text in sorted(requirements):
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate():
                continue
            component = BY_NAME.get(canonicalize_name(requirement.name))
            if component is None:
                third_party.append(text)
            else:
                siblings += [c for c in closure(component) if c not in siblings]
        return third_party, siblings

    def overrides(self) -> Path | None:
        """A uv overrides file pointing every component name built so far at its wheel (None: none built)."""
        if not self.wheels:
            return None
        path = self.root / "overrides.txt"
        lines = [f"{BY_DIR[d].distribution} @ {w.as_uri()}" for d, w in sorted(self.wheels.items())]
        path.write_text("\n".join(lines) + "\n")
        return path

    def install(self, python: Path, requirements: Sequence[str]) -> None:
        overrides = self.overrides()
        extra = ["--override", str(overrides)] if overrides else []
        argv = [uv(), "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python), *extra]
        sh([*argv, *requirements], self.root, self.env)

    def hook_runner(
        self, cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        done = subprocess.run(cmd, cwd=cwd, env={**self.env, **(extra_environ or {})}, capture_output=True)
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace")[-3000:]
            raise SystemExit(f"the build backend's get_requires_for_build failed in {cwd}:\n{error}")


def uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise SystemExit("uv is needed (it is a dependency of cuda-ci): run bash .ci/setup")
    return found


def builds(
    repo: Path,
    tag: str,
    dirs: Sequence[str],
    scratch: Path,
    env: Mapping[str, str],
    frontend: Callable[[str], list[str]],
) -> Run:
    """``frontend(dir) --outdir dist dir`` for each of the unit's folders, checked out at the tag; once
    more per further declared variant (:func:`variant_builds`)."""
    tree = worktree(repo, f"refs/tags/{tag}", scratch / f"tree-{time.monotonic_ns()}")
    try:
        total = Run(0.0, 0.0)
        for name in dirs:
            for argv, variant in variant_builds(frontend(name), tree, name):
                run = sh(argv, tree, {**env, **variant})
                total = Run(total.seconds + run.seconds, max(total.peak_rss_mb, run.peak_rss_mb))
        return total
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo, check=True)


def variant_builds(
    frontend: Sequence[str | Path], tree: Path, name: str
) -> list[tuple[list[str | Path], dict[str, str]]]:
    """The build work a release does for one folder: the sdist and the wheel, and the wheel once more for
    every further variant it declares (``[tool.cuda-ci.variants]``: cuda-core builds one per CUDA major,
    then merges them), each with its variable set; without variants, one build."""
    argv: list[str | Path] = [*frontend, "--outdir", tree / "dist", tree / name]
    variants = declared_variants(tree / name)
    if variants is None:
        return [(argv, {})]
    first, *others = variants.values
    again = [([*frontend, "--wheel", "--outdir", tree / f"dist-{v}", tree / name], variants.environ(v)) for v in others]
    return [(argv, variants.environ(first)), *again]


def bare_env(env: dict[str, str], floor: Floor) -> dict[str, str]:
    """The isolated build takes component requirements from this commit's wheels too (uv overrides)."""
    overrides = floor.overrides()
    return {**env, "UV_OVERRIDE": str(overrides)} if overrides else env


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


def measure(label: str, repeats: int, once: Callable[[], Run]) -> list[Run]:
    print(f"  {label}: warm-up", end="", flush=True)
    once()
    runs = []
    for i in range(repeats):
        print(f", {i + 1}", end="", flush=True)
        runs.append(once())
    print(f"  (median {median(runs):.1f} s)")
    return runs


def builds_per_artifact(run_log: dict[str, object]) -> dict[str, int]:
    """Steps that built a release distribution, in any stage: build's own, and any rebuild by validate
    ("build <distribution> wheel from <sdist>"). Sibling wheels are install helpers, not artifacts."""
    counts: dict[str, int] = {}
    for step in run_log.get("steps", []):  # type: ignore[attr-defined]
        words = str(step["name"]).split()
        if step["stage"] in ("build", "validate") and words[0] == "build" and words[1] != "sibling":
            counts[words[1]] = counts.get(words[1], 0) + 1
    return counts


def stage_medians(runs: Sequence[Run]) -> dict[str, float]:
    stages: dict[str, object] = runs[0].run_log["stages"]  # type: ignore[assignment]
    return {k: statistics.median(float(r.run_log["stages"][k]) for r in runs) for k in stages}  # type: ignore[index]


def measure_unit(unit: str, repeats: int, old: bool, floor: Floor, repo: Path, scratch: Path) -> dict[str, object]:
    tag, dirs, env = TAGS[unit], DIRS[unit], floor.env
    print(f"{unit} ({tag})")
    floor_frontend = {d: [str(floor.python(BY_DIR[d])), "-m", "build", "--no-isolation"] for d in dirs}
    bare_frontend, isolated = [sys.executable, "-m", "build", "--installer", "uv"], bare_env(env, floor)
    # The floor's environments are made above, before anything is timed.
    floor_runs = measure("floor", repeats, lambda: builds(repo, tag, dirs, scratch, env, floor_frontend.__getitem__))
    bare_runs = measure("bare", repeats, lambda: builds(repo, tag, dirs, scratch, isolated, lambda _: bare_frontend))
    release_runs = measure("release", repeats, lambda: release(repo, tag, scratch, env))
    entry: dict[str, object] = {
        "floor": median(floor_runs),
        "bare": median(bare_runs),
        "release": median(release_runs),
        "stages": stage_medians(release_runs),
        "builds_per_artifact": builds_per_artifact(release_runs[-1].run_log),
        "peak_rss_mb": max(r.peak_rss_mb for r in release_runs),
    }
    if old:
        entry["old_flow"] = median(measure("old flow", repeats, lambda: old_flow(repo, tag, scratch, env)))
    return entry


def cold_and_warm(repeats: int, repo: Path, scratch: Path, env: dict[str, str], caches: Path) -> dict[str, float]:
    print("cold and warm release (cuda-pathfinder): empty pip/uv/cuda-ci caches, then the same caches again")
    colds, warms = [], []
    for i in range(repeats):
        print(f"  pair {i + 1}", flush=True)
        shutil.rmtree(caches, ignore_errors=True)
        colds.append(release(repo, TAGS["cuda-pathfinder"], scratch, env))
        warms.append(release(repo, TAGS["cuda-pathfinder"], scratch, env))
    return {"cold": median(colds), "warm": median(warms)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc.split("\n\n", 1)[1],
    )
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per figure after one warm-up (default 3)")
    parser.add_argument("--unit", action="append", choices=list(TAGS), help="measure only this unit (repeatable)")
    parser.add_argument("--skip-old-flow", action="store_true", help="skip the old flow (the longest figure)")
    parser.add_argument(
        "--json", type=Path, default=REPO / "bench" / "results" / "latest.json", help="where to write the figures"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
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
        results["cold_warm"] = cold_and_warm(args.repeats, repo, scratch, env, caches)
        floor = Floor(worktree(repo, "HEAD", scratch / "floor-tree"), scratch / "floor", env)
        for unit in args.unit or list(TAGS):
            entry = measure_unit(unit, args.repeats, not args.skip_old_flow, floor, repo, scratch)
            results["units"][unit] = entry  # type: ignore[index]

    results["targets"] = report(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


def report(results: dict[str, object]) -> list[dict[str, object]]:
    """Print the table, the ratios and each target's verdict; return the verdicts."""
    units: dict[str, dict[str, object]] = results["units"]  # type: ignore[assignment]
    print(f"\nmachine: {results['machine']}")
    print(f"{'unit':<16}{'floor s':>9}{'bare s':>9}{'release s':>11}{'old flow s':>12}  stages (s)")
    for unit, e in units.items():
        stages = ", ".join(f"{k} {v:.1f}" for k, v in e["stages"].items())  # type: ignore[attr-defined]
        old = f"{e['old_flow']:.1f}" if "old_flow" in e else "-"
        print(f"{unit:<16}{e['floor']:>9.1f}{e['bare']:>9.1f}{e['release']:>11.1f}{old:>12}  {stages}")
    verdicts = []
    for unit, e in units.items():
        verdicts.append(_ratio(f"release/floor {unit}", e["release"], e["floor"], FLOOR_TARGET))
        _ratio(f"release/bare {unit}", e["release"], e["bare"], None)
        if "old_flow" in e:
            verdicts.append(_ratio(f"release/old-flow {unit}", e["release"], e["old_flow"], OLD_FLOW_TARGET))
        print(f"builds per artifact {unit}: {e['builds_per_artifact']}")
        print(f"peak memory of cuda-ci {unit}: {float(e['peak_rss_mb']):.0f} MiB")  # type: ignore[arg-type]
    cw: dict[str, float] = results["cold_warm"]  # type: ignore[assignment]
    verdicts.append(_ratio("warm/cold release cuda-pathfinder", cw["warm"], cw["cold"], WARM_TARGET))
    missed = [str(v["name"]) for v in verdicts if not v["met"]]
    print(
        f"\ntargets: {len(verdicts) - len(missed)} of {len(verdicts)} met"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    return verdicts


def _ratio(name: str, numerator: object, denominator: object, target: float | None) -> dict[str, object]:
    top, bottom = float(numerator), float(denominator)  # type: ignore[arg-type]
    ratio = top / bottom
    met = target is None or ratio <= target
    verdict = "" if target is None else f"; target <= {target}: {'met' if met else 'missed'}"
    print(f"ratio {name}: {ratio:.2f} ({top:.1f} s / {bottom:.1f} s{verdict})")
    return {"name": name, "ratio": round(ratio, 3), "target": target, "met": met}


if __name__ == "__main__":
    raise SystemExit(main())

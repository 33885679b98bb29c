"""Tool environments kept between runs: the build backend and Sphinx, resolved and installed once.

A release builds its own files afresh in every run; only the tools it runs are reused. An environment
is keyed by the interpreter and by the exact versions its requirements resolve to now (``uv pip
compile``), so a new setuptools or Sphinx release makes a new environment and a stale one is never
used. An environment is made in a temporary folder, complete (files copied, never linked to uv's
cache; bytecode compiled), its whole content recorded (:mod:`cuda_ci.infra.envcontent`), and renamed into
place; processes running kept tools write no bytecode (:func:`tool_environ`), so nothing is added
after. Before each use the content is checked against the record: a file added (a dropped ``.pth``),
changed or missing sets the environment aside, with a warning, and a fresh one is made.

What a release trusts is kept apart from untrusted work: releases (a tag, a rehearsal, a release
folder) and everything else (``test``, ``ci``, snapshots of any branch) each have their own folder of
environments (:func:`cache_namespace`). Without uv, callers fall back to fresh isolated environments.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cuda_ci.infra.envcontent import content_problem, record_content
from cuda_ci.infra.envs import Env, uv_binary
from cuda_ci.infra.errors import CommandError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.process import probe_interpreter, run

COMPLETE_MARKER = "cuda-ci-complete"
UNUSED_DAYS = 30  # an environment no run used for this long is removed when another is made
STAGING_HOURS = 24  # a staging folder this old was left by a killed run
_INTERPRETER_ID = (
    "import sys, sysconfig; print(sys.implementation.cache_tag, sys.version.split()[0], "
    "sysconfig.get_platform(), getattr(sys, '_base_executable', sys.executable))"
)


# Where this process keeps tool environments: the run's Settings.cache_dir, set by the CLI (use_cache_dir).
configured: dict[str, Path] = {}


@contextmanager
def use_cache_dir(path: Path) -> Iterator[None]:
    """Keep tool environments under ``path`` (``Settings.cache_dir``) while the body runs."""
    previous = configured.get("cache_dir")
    configured["cache_dir"] = path
    try:
        yield
    finally:
        if previous is None:
            configured.pop("cache_dir", None)
        else:
            configured["cache_dir"] = previous


def cache_dir() -> Path:
    """The run's ``Settings.cache_dir`` (``CUDA_CI_CACHE_DIR``, else the user's cache folder)."""
    try:
        return configured["cache_dir"]
    except KeyError:
        raise RuntimeError("no folder for tool environments: run inside toolenvs.use_cache_dir()") from None


Trust = Literal["release", "untrusted"]
_namespace: list[Trust] = ["untrusted"]  # what this run may use; a run that says nothing is untrusted


@contextmanager
def cache_namespace(trust: Trust) -> Iterator[None]:
    """For the body (one command), kept environments come from ``trust``'s own folder: a release's
    are never made or used by untrusted work, whose code could write into them."""
    _namespace.append(trust)
    try:
        yield
    finally:
        _namespace.pop()


def envs_dir() -> Path:
    """The folder of this run's kept environments (``<cache>/<namespace>/envs``)."""
    return cache_dir() / _namespace[-1] / "envs"


@functools.cache
def interpreter_id(python: str) -> str:
    """What makes environments of two interpreters interchangeable: version, platform, base executable."""
    return probe_interpreter(python, _INTERPRETER_ID)


def tool_environ(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a process running kept tools: no bytecode written (it was compiled when the
    environment was made; anything added after would make it differ from its record)."""
    return {**env, "PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class Resolution:
    pins: str  # requirement lines, one ``name==version`` each
    offline: bool  # resolved from uv's cache: the index could not be reached


def resolve(requirements: Sequence[str], python: str, reporter: Reporter) -> Resolution | None:
    """What ``requirements`` resolve to for ``python`` now; None without uv, or where they resolve
    neither from the index nor from uv's cache (callers then fall back to a fresh environment).

    With the index out of reach (an air-gapped runner), uv's cache answers: kept tools still work.
    """
    uv = uv_binary()
    if uv is None:
        return None
    with tempfile.TemporaryDirectory(prefix="cuda-ci-resolve-") as tmp:
        wanted = Path(tmp) / "requirements.in"
        wanted.write_text("".join(f"{r}\n" for r in sorted(requirements)), encoding="utf-8")
        argv = [uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python", python, str(wanted)]
        what = f"resolving {', '.join(requirements)}"
        try:
            return Resolution(run(argv, what=what, reporter=reporter).stdout, offline=False)
        except CommandError as error:
            online_problem = error.problems[0].splitlines()[0]
        try:
            pins = run([*argv, "--offline"], what=f"{what} from uv's cache", reporter=reporter).stdout
        except CommandError:
            reporter.warn(f"tool environment not reused: {online_problem}")
            return None
    reporter.warn(f"{online_problem}: resolved from uv's cache instead (--offline)")
    return Resolution(pins, offline=True)


_Key = tuple[Path, str, str, tuple[str, ...]]  # the folder of environments, purpose, interpreter, requirements
_FOUND: dict[_Key, Env | None] = {}
_LOCKS: dict[_Key, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def tool_env(requirements: Sequence[str], *, python: str, purpose: str, reporter: Reporter) -> Env | None:
    """A complete environment holding exactly what ``requirements`` resolve to, made once (its
    bytecode is written later, by the runs that import it).

    Resolved once per process (one run), so that every build of a run uses the same tools; threads
    asking for the same environment wait for one another, others proceed.
    """
    key = (envs_dir(), purpose, python, tuple(sorted(requirements)))
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key not in _FOUND:
            _FOUND[key] = _tool_env(requirements, python=python, purpose=purpose, reporter=reporter)
        return _FOUND[key]


def env_name(purpose: str, interpreter: str, pins: str) -> str:
    """The kept environment's folder name: what it is for, and a key of the interpreter and the exact
    resolved pins (a new release of any pinned tool, or another interpreter, makes another)."""
    key = hashlib.sha256(f"{interpreter}\n{pins}".encode()).hexdigest()[:16]
    return f"{purpose}-{key}"


def _tool_env(requirements: Sequence[str], *, python: str, purpose: str, reporter: Reporter) -> Env | None:
    resolution = resolve(requirements, python, reporter)
    if resolution is None:
        return None
    pinned = resolution.pins
    root = envs_dir() / env_name(purpose, interpreter_id(python), pinned)
    if (root / COMPLETE_MARKER).is_file():
        problem = content_problem(root)
        if problem is None:
            os.utime(root / COMPLETE_MARKER)  # the marker's time is the last use (see prune)
            return Env(root)
        aside = set_aside(root)
        where = f" as {aside} (kept {STAGING_HOURS} h for a look)" if aside else ""
        reporter.warn(
            f"the kept tool environment {root.name} is not as it was made ({problem}): never used, "
            f"set aside{where} and made again"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    uv = uv_binary()
    assert uv is not None  # resolve() returned pins
    with reporter.step(f"tool environment {root.name} (kept for later runs)"):
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
        try:
            run(
                [uv, "venv", "--quiet", "--python", python, str(staging)],
                what="creating a tool environment",
                reporter=reporter,
            )
            pins = staging / "requirements.txt"
            pins.write_text(pinned, encoding="utf-8")
            # Copies, not links into uv's cache (a write into one would reach the other), and all the
            # bytecode now: nothing is written into the environment after its content is recorded.
            install = [uv, "pip", "install", "--quiet", "--link-mode", "copy", "--compile-bytecode"]
            install += ["--python", str(Env(staging).python)]
            install += ["--offline"] if resolution.offline else []
            run([*install, "-r", str(pins)], what=f"installing the {purpose} tool environment", reporter=reporter)
            (staging / COMPLETE_MARKER).write_text(pinned, encoding="utf-8")
            record_content(staging)
            if root.exists() and not (root / COMPLETE_MARKER).is_file():
                shutil.rmtree(root, ignore_errors=True)  # left half-made by a run that was killed
            try:
                staging.rename(root)
            except OSError:
                if not (root / COMPLETE_MARKER).is_file():
                    raise
                # another run made the same environment first: use that one
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for name in prune(root.parent):  # only when one was made: rare, so the cache stays bounded cheaply
        reporter.info(f"removed the tool environment {name}: unused for {UNUSED_DAYS} days")
    return Env(root)


def set_aside(root: Path) -> str:
    """Move an environment that is not as it was made out of the way (atomically), kept for a look
    until :func:`prune` removes it; where it went (empty when another run set it aside first)."""
    aside = root.parent / f".{root.name}-set-aside-{os.getpid()}-{time.monotonic_ns()}"
    try:
        root.rename(aside)
    except OSError:
        if root.exists():
            raise
        return ""  # another run set it aside first
    os.utime(aside)  # prune's clock for dot folders starts now
    return str(aside)


def prune(envs: Path, now: float | None = None) -> list[str]:
    """Remove environments no run used for ``UNUSED_DAYS`` and staging folders a killed run left."""
    now = time.time() if now is None else now
    removed = []
    for path in sorted(envs.iterdir()) if envs.is_dir() else ():
        if path.name.startswith("."):
            stale = now - path.stat().st_mtime > STAGING_HOURS * 3600
        else:
            marker = path / COMPLETE_MARKER
            stale = marker.is_file() and now - marker.stat().st_mtime > UNUSED_DAYS * 86400
        if stale and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def pinned_versions(env: Env) -> dict[str, str]:
    """Name → version of what a kept environment holds (its pins, as resolved when it was made)."""
    marker = env.root / COMPLETE_MARKER
    versions: dict[str, str] = {}
    for line in marker.read_text(encoding="utf-8").splitlines() if marker.is_file() else ():
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):  # blank, comment, or an option line
            continue
        requirement = Requirement(text)
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if exact:
            versions[canonicalize_name(requirement.name)] = exact[0]
    return versions

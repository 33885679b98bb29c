"""Tool environments kept between runs: the build backend and Sphinx, resolved and installed once.

A release builds its own files afresh in every run; only the tools it runs are reused. An environment
is keyed by the interpreter and by the exact versions its requirements resolve to now (``uv pip
compile``), so a new setuptools or Sphinx release makes a new environment and a stale one is never
used. Processes running kept tools write bytecode even where ``PYTHONDONTWRITEBYTECODE`` is set
(:func:`tool_environ`): the first run compiles what it imports, later runs load it, instead of every
backend call and every Sphinx run compiling its imports again (compiling everything at install
costs more than it saves: Sphinx's dependencies are large). An environment is made in a temporary
folder and renamed into place when complete; after that only bytecode is added to it (written
atomically by Python itself), so concurrent runs share it safely. Without uv, callers fall back to
fresh isolated environments.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cuda_ci.envs import Env, uv_binary
from cuda_ci.errors import CommandError
from cuda_ci.log import Reporter
from cuda_ci.process import child_options, clean_environ, probe_interpreter, run

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


@functools.cache
def interpreter_id(python: str) -> str:
    """What makes environments of two interpreters interchangeable: version, platform, base executable."""
    return probe_interpreter(python, _INTERPRETER_ID)


def tool_environ(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a process running kept tools: bytecode is written, so that the next run reuses it."""
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


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


_Key = tuple[Path, str, str, tuple[str, ...]]
_FOUND: dict[_Key, Env | None] = {}
_LOCKS: dict[_Key, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def tool_env(requirements: Sequence[str], *, python: str, purpose: str, reporter: Reporter) -> Env | None:
    """A complete environment holding exactly what ``requirements`` resolve to, made once (its
    bytecode is written later, by the runs that import it).

    Resolved once per process (one run), so that every build of a run uses the same tools; threads
    asking for the same environment wait for one another, others proceed.
    """
    key = (cache_dir(), purpose, python, tuple(sorted(requirements)))
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
    root = cache_dir() / "envs" / env_name(purpose, interpreter_id(python), pinned)
    if (root / COMPLETE_MARKER).is_file():
        damage = env_damage(Env(root))
        if damage is None:
            os.utime(root / COMPLETE_MARKER)  # the marker's time is the last use (see prune)
            return Env(root)
        reporter.warn(f"the kept tool environment {root.name} is damaged ({damage}): set aside and made again")
        set_aside(root)
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
            install = [uv, "pip", "install", "--quiet", "--python", str(Env(staging).python)]
            install += ["--offline"] if resolution.offline else []
            run([*install, "-r", str(pins)], what=f"installing the {purpose} tool environment", reporter=reporter)
            (staging / COMPLETE_MARKER).write_text(pinned, encoding="utf-8")
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


# Run by the kept environment's own interpreter: every file its installer's RECORDs list is there
# with its size, and every bytecode file loads. A few thousand stats and a few MB read.
_DAMAGE_CHECK = """
import csv, marshal, os, sys, sysconfig
site = sysconfig.get_path("purelib")
def problem():
    for info in sorted(os.listdir(site)):
        record = os.path.join(site, info, "RECORD")
        if not info.endswith(".dist-info") or not os.path.isfile(record):
            continue
        with open(record, newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if not row or len(row) < 3:
                    continue
                path = os.path.normpath(os.path.join(site, row[0]))
                if not os.path.exists(path):
                    return f"{row[0]} is missing"
                if row[2] and os.path.getsize(path) != int(row[2]):
                    return f"{row[0]} has another size than {info} recorded"
    for folder, _, files in os.walk(site):
        for name in files:
            if name.endswith(".pyc"):
                try:
                    with open(os.path.join(folder, name), "rb") as handle:
                        marshal.loads(handle.read()[16:])
                except Exception:
                    return f"{os.path.relpath(os.path.join(folder, name), site)} is damaged bytecode"
    return None
print(problem() or "ok")
"""


def env_damage(env: Env) -> str | None:
    """What is wrong with a kept environment (its interpreter does not run, a file its installer
    recorded is missing or changed, bytecode is damaged); None when it is whole."""
    if not env.python.exists():  # a venv's interpreter is a link: follow it
        return f"its interpreter {env.python} is missing"
    try:
        answer = subprocess.run(
            [str(env.python), "-I", "-c", _DAMAGE_CHECK],
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_environ(),
            check=False,
            **child_options(),
        )
    except OSError as error:
        return f"its interpreter does not run: {error}"
    lines = answer.stdout.strip().splitlines()
    if answer.returncode != 0 or not lines:
        return f"its interpreter does not run (exit code {answer.returncode})"
    return None if lines[-1] == "ok" else lines[-1]


def set_aside(root: Path) -> None:
    """Move a damaged environment out of the way (atomically), then remove it."""
    aside = root.parent / f".{root.name}-damaged-{os.getpid()}-{time.monotonic_ns()}"
    try:
        root.rename(aside)
    except OSError:
        if root.exists():
            raise
        return  # another run set it aside first
    shutil.rmtree(aside, ignore_errors=True)


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

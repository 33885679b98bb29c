"""Running subprocesses: explicit argv, an environment without secrets, failures translated."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from cuda_ci.errors import CommandError
from cuda_ci.livelog import wait_for_output
from cuda_ci.log import Reporter
from cuda_ci.secrets import carries_secret, redact

PYTHON = sys.executable


def clean_environ(base: Mapping[str, str] | None = None, /, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's) without any credential, plus ``extra``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not carries_secret(k, v)}
    env.update(extra)
    return env


_CHILDREN: set[subprocess.Popen[str]] = set()
# Reentrant: the SIGTERM handler (stop_children) runs in the main thread, which may hold it at that
# moment (inside run()); a plain Lock would deadlock the run there, for ever.
_CHILDREN_LOCK = threading.RLock()


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the child, before exec
    """In the child: be killed when cuda-ci dies, even by ``kill -9`` (Linux's parent-death signal)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # cuda-ci died before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)


if sys.platform.startswith("linux"):
    import ctypes

    _LIBC = ctypes.CDLL(None, use_errno=True)
    _PR_SET_PDEATHSIG = 1


class ChildOptions(TypedDict, total=False):
    preexec_fn: Callable[[], Any]


def child_options() -> ChildOptions:
    """``Popen`` arguments every child of cuda-ci gets: on Linux it dies with cuda-ci."""
    if not sys.platform.startswith("linux"):
        return {}
    return {"preexec_fn": functools.partial(_die_with_parent, os.getpid())}


def stop_children() -> None:
    """Terminate every child ``run`` is waiting on (on SIGTERM: threads' children too)."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for child in children:
        with contextlib.suppress(OSError):
            child.terminate()


def run(
    argv: Sequence[str | Path],
    *,
    what: str,
    reporter: Reporter,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = 1800,
    live: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; its output is shown on failure (or always with ``--debug``); a ``live`` (long)
    child's output streams as it comes where someone watches (see :mod:`cuda_ci.livelog`).

    Raises:
        CommandError: the command exited non-zero (with ``check``) or could not be started.
    """
    args = [str(a) for a in argv]
    reporter.command(args)
    try:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else clean_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            **child_options(),
        )
    except FileNotFoundError as error:
        raise CommandError(what, 127, str(error)) from None
    with process:
        with _CHILDREN_LOCK:
            _CHILDREN.add(process)
        try:
            output = wait_for_output(process, timeout, reporter, what if live else None)
        except subprocess.TimeoutExpired as error:
            process.kill()
            process.communicate()
            raise CommandError(what, 124, f"timed out after {timeout} s") from error
        except BaseException:  # interrupted: the child never outlives the wait for it
            process.kill()
            process.wait()
            raise
        finally:
            with _CHILDREN_LOCK:
                _CHILDREN.discard(process)
    result = subprocess.CompletedProcess(args, process.returncode, output.text)
    if not output.shown:
        reporter.output(result.stdout)
    if check and result.returncode != 0:
        raise CommandError(what, result.returncode, redact(result.stdout))
    return result


def probe_interpreter(python: str, code: str) -> str:
    """What ``python -c code`` prints: a quick question to an interpreter, no credentials passed."""
    argv = [python, "-c", code]
    return subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=60, env=clean_environ(), **child_options()
    ).stdout

"""Running subprocesses: explicit argv, an environment without secrets, failures translated.

Every child starts in its own process group (its own session), so that a timeout, SIGTERM or an
interrupt ends the child and everything it started (a build backend's compiler, pip's own children):
:func:`end_groups` sends SIGTERM to the whole group, then SIGKILL once the child has gone or a short
grace has passed. A pipe held open by something the child left behind never keeps a run waiting.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from cuda_ci.infra.errors import CommandError
from cuda_ci.infra.livelog import LinePump
from cuda_ci.infra.log import LineSink, Reporter
from cuda_ci.infra.secrets import carries_secret, redact

PYTHON = sys.executable
GRACE = 5.0  # seconds a child's group has between SIGTERM and SIGKILL
POLL = 0.5  # seconds between looks at a child that has not closed its output yet


def clean_environ(base: Mapping[str, str] | None = None, /, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's) without any credential, plus ``extra``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not carries_secret(k, v)}
    env.update(extra)
    return env


_CHILDREN: set[subprocess.Popen[str]] = set()
# Reentrant: the SIGTERM handler (stop_children) runs in the main thread, which may hold it at that
# moment (inside run()); a plain Lock would deadlock the run there, for ever.
_CHILDREN_LOCK = threading.RLock()
# Set by stop_children: a thread still working (a retry) starts no new child once the run is ending.
_STOPPING = threading.Event()


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
    start_new_session: bool


def child_options() -> ChildOptions:
    """``Popen`` arguments every child of cuda-ci gets: its own process group (POSIX), which
    :func:`end_groups` ends whole; on Linux it also dies with cuda-ci."""
    if os.name == "nt":
        return {}
    options: ChildOptions = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        options["preexec_fn"] = functools.partial(_die_with_parent, os.getpid())
    return options


def _exited(process: subprocess.Popen[Any]) -> bool:
    """Whether the child has exited, without reaping it: until it is reaped, its pid (its group's id)
    cannot be given to another process, so signalling the group stays safe."""
    if process.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # pragma: no cover - macOS
        return process.poll() is not None
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already (by the thread that waits on it)
        return True


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)  # the child leads its group (child_options)


def end_groups(processes: Iterable[subprocess.Popen[Any]], grace: float | None = None) -> None:
    """End each child and its whole process group, grandchildren included: SIGTERM, then SIGKILL to
    what is left once the child has exited or ``grace`` (default ``GRACE``) seconds have passed."""
    processes = list(processes)
    if os.name == "nt":  # pragma: no cover - exercised on the Windows runner: no process groups to signal
        for process in processes:
            with contextlib.suppress(OSError):
                process.kill()
        return
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + (GRACE if grace is None else grace)
    while time.monotonic() < deadline and not all(_exited(p) for p in processes):
        time.sleep(0.05)
    for process in processes:
        _signal_group(process, signal.SIGKILL)  # a grandchild that ignored SIGTERM, or the child itself


def stop_children() -> None:
    """End every child being waited on, threads' children too, with their groups (on SIGTERM or an
    interrupt); no new :func:`run` starts after this (see :func:`allow_children`)."""
    _STOPPING.set()
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    end_groups(children)


def allow_children() -> None:
    """A new run starts: children may be started again (after an earlier :func:`stop_children`)."""
    _STOPPING.clear()


def _drain(process: subprocess.Popen[str]) -> tuple[str, str]:
    """What is left in the pipes of an ended group; a pipe still held by a process that left the
    group (it made its own session) is closed after ``GRACE`` seconds instead of waited on."""
    try:
        stdout, stderr = process.communicate(timeout=GRACE)
        return stdout or "", stderr or ""
    except subprocess.TimeoutExpired as error:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=GRACE)
        return _text(error.output), _text(error.stderr)


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def _communicate(process: subprocess.Popen[str], timeout: float | None) -> tuple[str, str]:
    """The child's output once it closes its pipes; raises ``TimeoutExpired`` at ``timeout``. A child
    that exited while its pipes stay open left something running in its group: that ends too."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = POLL if deadline is None else max(0.0, min(POLL, deadline - time.monotonic()))
        try:
            stdout, stderr = process.communicate(timeout=step)
            return stdout or "", stderr or ""
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() >= deadline:
                raise
            if _exited(process):
                end_groups([process])
                return _drain(process)


def _wait_for(process: subprocess.Popen[str], timeout: float | None) -> tuple[str, str]:
    """:func:`_communicate`, with the child registered for :func:`stop_children`; on a timeout or an
    interrupt (SIGTERM, Ctrl-C) the child's whole group is ended before the exception goes on."""
    with _CHILDREN_LOCK:
        _CHILDREN.add(process)
    try:
        return _communicate(process, timeout)
    except BaseException:
        end_groups([process])
        _drain(process)
        raise
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(process)


def _wait_streaming(process: subprocess.Popen[str], timeout: float | None, sink: LineSink) -> str:
    """:func:`_wait_for` for a long child whose lines go to ``sink`` as they come (see
    :mod:`cuda_ci.infra.livelog`): the same group handling, the pipe read by a pump thread."""
    assert process.stdout is not None
    with _CHILDREN_LOCK:
        _CHILDREN.add(process)
    pump = LinePump(process.stdout, sink).start()
    try:
        process.wait(timeout=timeout)
        if not pump.done(timeout=POLL):  # the child exited; something it left holds the pipe
            end_groups([process])
        return pump.text(timeout=GRACE)
    except BaseException:  # a timeout or an interrupt: the whole group ends before it goes on
        end_groups([process])
        pump.text(timeout=GRACE)
        raise
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(process)
        if pump.done(timeout=0):  # read to its end: ours to close (a pipe still held stays the pump's)
            process.stdout.close()


def _start(args: list[str], **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(args, text=True, errors="replace", **popen, **child_options())


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
    child's output streams as it comes where someone watches (see :mod:`cuda_ci.infra.livelog`).

    Raises:
        CommandError: the command exited non-zero (with ``check``), timed out (124; its whole
            process group is ended), or could not be started.
    """
    args = [str(a) for a in argv]
    reporter.command(args)
    if _STOPPING.is_set():  # a thread's retry, say; short questions (capture: git's cleanup) still run
        raise CommandError(what, 143, "not started: cuda-ci is stopping (terminated or interrupted)")
    try:
        process = _start(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else clean_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except FileNotFoundError as error:
        raise CommandError(what, 127, str(error)) from None
    with reporter.streaming(what) if live else contextlib.nullcontext(None) as sink:
        try:
            stdout = _wait_for(process, timeout)[0] if sink is None else _wait_streaming(process, timeout, sink)
        except subprocess.TimeoutExpired as error:
            raise CommandError(what, 124, f"timed out after {timeout} s; its process group was ended") from error
        shown = sink is not None and reporter.shows_output_live
    result = subprocess.CompletedProcess(args, process.returncode, stdout)
    if not shown:
        reporter.output(result.stdout)
    if check and result.returncode != 0:
        raise CommandError(what, result.returncode, redact(result.stdout))
    return result


def capture(
    argv: Sequence[str | Path],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, capture_output=True, text=True)`` for a short question to a tool, with
    the same errors (``TimeoutExpired``, ``CalledProcessError``, ``OSError``), its group ended on a
    timeout or an interrupt; no credentials passed unless ``env`` holds them."""
    args = [str(a) for a in argv]
    environ = dict(env) if env is not None else clean_environ()
    process = _start(args, cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = _wait_for(process, timeout)
    if check and process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, args, stdout, stderr)
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def probe_interpreter(python: str, code: str) -> str:
    """What ``python -c code`` prints: a quick question to an interpreter, no credentials passed."""
    return capture([python, "-c", code], timeout=60, check=True).stdout

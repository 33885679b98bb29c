"""Credentials kept out of every environment block a child could read.

A process's environment block stays readable, for its whole life, through ``/proc/<pid>/environ``
by every process of the same user: a build backend, Sphinx's ``conf.py``, a test or pip could read
cuda-ci's, and its parents'. So the CLI, when it starts with credentials in its environment,
runs itself again (``exec``: same process, new environment block) without them, and hands them over
through an inherited pipe whose number alone is in the new environment. The new process reads and
closes the pipe first thing, keeps the credentials in memory only (:class:`~cuda_ci.infra.settings.Settings`),
and, on Linux, makes itself non-dumpable, so that no other process of the user can read its memory,
descriptors or environment either (``PR_SET_DUMPABLE``; its children, once they exec, are dumpable
again). On Windows, where no such block is readable the same way, nothing changes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from cuda_ci.infra import secrets

FD_VARIABLE = "CUDA_CI_SECRETS_FD"
MAX_HANDOFF_BYTES = 60 * 1024  # under a pipe's capacity (64 KiB on Linux): written before anyone reads
_PR_SET_DUMPABLE = 4


class HandoffError(Exception):
    """The credentials could not be handed over to, or read by, the re-executed CLI."""


def split_secrets(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``environ`` as (what may stay in an environment block, the variables that carry a credential).

    The credential variables' values are registered first, so that any other variable holding one
    of them (a copy under another name) moves too."""
    secrets.register_environment(environ)
    held = {k: v for k, v in environ.items() if secrets.carries_secret(k, v)}
    return {k: v for k, v in environ.items() if k not in held}, held


def reexec_without_secrets() -> None:
    """Run this CLI again, in this process, without the credential variables (POSIX only); returns
    only when there is nothing to hide.

    Raises:
        HandoffError: the credentials are too large for the hand-over.
    """
    if os.name != "posix" or FD_VARIABLE in os.environ:
        return
    clean, held = split_secrets(os.environ)
    if not held:
        return
    payload = json.dumps(held).encode("utf-8")
    if len(payload) > MAX_HANDOFF_BYTES:
        raise HandoffError(
            f"the credential variables ({', '.join(sorted(held))}) hold {len(payload)} bytes, more than the "
            f"{MAX_HANDOFF_BYTES} cuda-ci hands over: unset the ones this command does not need"
        )
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, payload)
    finally:
        os.close(write_end)
    os.set_inheritable(read_end, True)
    sys.stdout.flush()
    sys.stderr.flush()
    # sys.orig_argv: the interpreter's own command line, so `cuda-ci ...` and `python -m cuda_ci ...`
    # both run again exactly as started.
    os.execve(sys.executable, sys.orig_argv, {**clean, FD_VARIABLE: str(read_end)})


def received_secrets() -> dict[str, str]:
    """The credentials handed over by :func:`reexec_without_secrets` ({} when none were): read, the
    pipe closed and its variable removed, so that no child learns of either.

    Raises:
        HandoffError: the variable names no readable pipe, or what it holds is not the hand-over.
    """
    number = os.environ.pop(FD_VARIABLE, None)
    if number is None:
        return {}
    try:
        fd = int(number)
        if fd < 3:  # never stdin, stdout or stderr
            raise ValueError(f"{fd} is a standard stream")
        with os.fdopen(fd, "rb", closefd=True) as pipe:
            data = json.loads(pipe.read(MAX_HANDOFF_BYTES + 1))
    except (ValueError, OSError) as error:
        raise HandoffError(f"{FD_VARIABLE}={number} names no credential hand-over of cuda-ci ({error})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise HandoffError(f"{FD_VARIABLE}={number} holds no credential hand-over of cuda-ci")
    _not_dumpable()
    return data


def _not_dumpable() -> None:
    """On Linux: this process's memory, descriptors and environment are readable by root alone."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)

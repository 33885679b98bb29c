"""Running subprocesses: explicit argv, an environment without secrets, failures translated."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cuda_ci.errors import CommandError
from cuda_ci.log import Reporter
from cuda_ci.secrets import carries_secret, redact

PYTHON = sys.executable


def clean_environ(base: Mapping[str, str] | None = None, /, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's) without any credential, plus ``extra``."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not carries_secret(k, v)}
    env.update(extra)
    return env


def run(
    argv: Sequence[str | Path],
    *,
    what: str,
    reporter: Reporter,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = 1800,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; its output is shown on failure (or always with ``--debug``).

    Raises:
        CommandError: the command exited non-zero (with ``check``) or could not be started.
    """
    args = [str(a) for a in argv]
    reporter.command(args)
    try:
        result = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else clean_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as error:
        raise CommandError(what, 127, str(error)) from None
    except subprocess.TimeoutExpired as error:
        raise CommandError(what, 124, f"timed out after {timeout} s") from error
    reporter.output(result.stdout)
    if check and result.returncode != 0:
        raise CommandError(what, result.returncode, redact(result.stdout))
    return result


def probe_interpreter(python: str, code: str) -> str:
    """What ``python -c code`` prints: a quick question to an interpreter, no credentials passed."""
    argv = [python, "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60, env=clean_environ()).stdout

"""Kept tool environments: their names (keys), which ones are pruned, what they held."""

from __future__ import annotations

import os
from pathlib import Path

from cuda_ci.infra.envs import Env
from cuda_ci.infra.toolenvs import COMPLETE_MARKER, STAGING_HOURS, UNUSED_DAYS, env_name, pinned_versions, prune

PINS = "setuptools==80.9.0\nsetuptools-scm==10.3.0\n"
CPYTHON = "cpython-311 3.11.7 linux-x86_64 /usr/bin/python3.11"


def test_the_key_is_the_interpreter_and_the_exact_pins() -> None:
    name = env_name("build", CPYTHON, PINS)
    assert name.startswith("build-") and len(name) == len("build-") + 16
    assert env_name("build", CPYTHON, PINS) == name, "the same tools on the same interpreter: reused"
    assert env_name("build", CPYTHON, PINS.replace("80.9.0", "80.9.1")) != name, "a new setuptools: a new env"
    assert env_name("build", CPYTHON.replace("3.11.7", "3.11.8"), PINS) != name, "another interpreter"
    assert env_name("sphinx", CPYTHON, PINS).startswith("sphinx-")


def test_unused_and_abandoned_environments_are_pruned(tmp_path: Path) -> None:
    now = 10_000_000_000.0
    used, unused, staging, fresh_staging, incomplete = (tmp_path / n for n in ("a", "b", ".c", ".d", "e"))
    for folder in (used, unused, staging, fresh_staging, incomplete):
        folder.mkdir()
    for folder, age_days in ((used, UNUSED_DAYS - 1), (unused, UNUSED_DAYS + 1)):
        (folder / COMPLETE_MARKER).write_text(PINS)
        os.utime(folder / COMPLETE_MARKER, (now - age_days * 86400,) * 2)
    os.utime(staging, (now - (STAGING_HOURS + 1) * 3600,) * 2)
    os.utime(fresh_staging, (now - 3600,) * 2)
    assert prune(tmp_path, now) == [".c", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".d", "a", "e"], "in use, being made, or never finished"


def test_the_manifest_learns_what_an_environment_held(tmp_path: Path) -> None:
    (tmp_path / COMPLETE_MARKER).write_text(
        "# resolved by uv\n--index-url https://pypi.org/simple\nSetuptools_SCM==10.3.0\n"
        "cython==3.3.1  # via cuda-core\nvcs-versioning>=2\n"
    )
    assert pinned_versions(Env(tmp_path)) == {"setuptools-scm": "10.3.0", "cython": "3.3.1"}
    assert pinned_versions(Env(tmp_path / "missing")) == {}

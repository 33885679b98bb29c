"""A pytest plugin cuda-ci writes into every test environment (as ``cuda_ci_wheel_guard``): the tests
must import the installed wheels, never the source tree beside them.

Run from a component's folder, ``python -m pytest`` (or a conftest that edits ``sys.path``) puts
the folder's own ``cuda/`` package first, and the tests would pass against sources that no wheel
ships. After collection, every ``--cuda-ci-installed`` package must come from this environment's
site-packages; otherwise the run stops, naming the file it found. Standard library and pytest only.
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cuda-ci-installed", action="append", default=[], metavar="PACKAGE",
                     help="an import package that must come from the installed wheels (repeatable)")  # fmt: skip


def imported_from(name: str) -> Path | None:
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module else None
    if origin is None:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec else None
    return Path(origin).resolve() if origin else None


def shadowed(names: list[str]) -> list[str]:
    """Each package that does not come from this environment's site-packages, with where it came from."""
    sites = {Path(sysconfig.get_path(key)).resolve() for key in ("purelib", "platlib")}
    problems = []
    for name in names:
        origin = imported_from(name)
        if origin is None or not any(origin.is_relative_to(site) for site in sites):
            where = ", ".join(sorted(map(str, sites)))
            problems.append(f"{name} was imported from {origin}, not from the installed wheel in {where}")
    return problems


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for name in config.getoption("--cuda-ci-installed"):
        terminalreporter.write_line(f"cuda-ci wheel guard: {name} imported from {imported_from(name)}")


def pytest_collection_finish(session: pytest.Session) -> None:
    problems = shadowed(session.config.getoption("--cuda-ci-installed"))
    if problems:
        pytest.exit(
            "; ".join(problems) + ": the source tree shadows the installed wheel (run the pytest console "
            "script from the component's folder, never python -m pytest, and do not put the sources on sys.path)",
            returncode=4,
        )

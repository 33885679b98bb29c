"""validate's pure decisions, from given files: the expected set of distributions and wheels."""

from __future__ import annotations

import contextlib
import io
import sys
import sysconfig
from pathlib import Path
from typing import Any, cast

import pytest

from cuda_ci.infra.components import get_unit
from cuda_ci.infra.manifest import Manifest
from cuda_ci.validate.checks import check_expected_set, expected_identifiers
from cuda_ci.validate.distfiles import DistFile, identify
from cuda_ci.validate.findings import Findings

LINUX = ["cp311-manylinux_x86_64", "cp314t-manylinux_x86_64"]


def manifest(identifiers: list[str]) -> Manifest:
    return cast(Manifest, cast(Any, {"build_identifiers": identifiers}))


def dists(*names: str) -> list[DistFile]:
    return [identify(Path(name)) for name in names]


def test_pure_components_expect_one_pure_wheel_platform_ones_cibuildwheels_answer_and_windows() -> None:
    bindings, meta = get_unit("cuda-bindings").components
    assert expected_identifiers(meta, manifest(LINUX), []) == {"py3-none-any"}
    assert expected_identifiers(bindings, manifest(LINUX), ["cp311-win_amd64"]) == {*LINUX, "cp311-win_amd64"}


def test_exactly_the_expected_set_passes() -> None:
    findings = Findings()
    files = dists(
        "cuda_core-0.3.0.tar.gz",
        "cuda_core-0.3.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "cuda_core-0.3.0-cp314-cp314t-manylinux_2_28_x86_64.whl",
    )
    check_expected_set(files, get_unit("cuda-core"), manifest(LINUX), [], findings)
    assert findings.problems == []
    assert [e["detail"] for e in findings.entries] == [f"cuda-core: 1 sdist, wheels for {', '.join(LINUX)}"]


def test_every_gap_and_surplus_is_named() -> None:
    findings = Findings()
    files = dists(
        "cuda_core-0.3.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "cuda_core-0.3.0-cp311-cp311-manylinux_2_34_x86_64.whl",
        "cuda_core-0.3.0-cp312-cp312-manylinux_2_28_x86_64.whl",
    )
    check_expected_set(files, get_unit("cuda-core"), manifest(LINUX), [], findings)
    assert findings.problems == [
        "expected-files: cuda-core: 0 sdists, expected exactly 1",
        "expected-files: cuda_core-0.3.0-cp312-cp312-manylinux_2_28_x86_64.whl matches no expected build identifier "
        f"({', '.join(sorted(LINUX))})",
        "expected-files: cuda-core: 2 wheels for cp311-manylinux_x86_64, expected exactly 1",
        "expected-files: cuda-core: 0 wheels for cp314t-manylinux_x86_64, expected exactly 1",
    ]


def _wheel(name: str) -> DistFile:
    return identify(Path("/release/dist") / name)


def _probed(code: str) -> str:
    """What the probe's code prints, run here (unit tests start no process)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {})
    return printed.getvalue().strip()


def test_another_interpreter_installs_only_wheels_of_its_own_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """A free-threaded 3.14 (cp314t) and a 3.14 with the GIL (cp314) install different wheels: a
    wheel node of either must find its own, or its import test would test nothing."""
    from cuda_ci.build import identifiers
    from cuda_ci.validate import install

    version = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert _probed(identifiers._INTERPRETER) == f"{version} {sysconfig.get_platform()}"
    real = sysconfig.get_config_var
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: 1 if name == "Py_GIL_DISABLED" else real(name))
    assert _probed(identifiers._INTERPRETER).split()[0] == f"{version}t", "a free-threaded interpreter says so"
    gil, free = (_wheel(f"cuda_core-1.0.0-cp314-{abi}-manylinux_2_28_x86_64.whl") for abi in ("cp314", "cp314t"))
    pure = _wheel("cuda_pathfinder-1.0.0-py3-none-any.whl")
    for tag, own in (("cp314t", free), ("cp314", gil)):
        monkeypatch.setattr(install, "interpreter_of", lambda python, tag=tag: (tag, "linux-x86_64"))
        assert install._installable([gil, free, pure], "/opt/python/other/bin/python") == [own, pure], tag

"""validate's pure decisions, from given files: the expected set of distributions and wheels."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

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

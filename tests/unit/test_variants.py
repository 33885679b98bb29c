"""Variant builds merged into one wheel, and validate's check that each variant's files are there."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from cuda_ci.build.identifiers import kind_problem
from cuda_ci.build.variants import Variants, merge_variant_folders, merge_wheels, missing_variants, parse_variants
from cuda_ci.infra.components import get_component
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.validate.distfiles import record_problems

NAME = "cuda_core-0.3.0-cp311-cp311-manylinux_2_28_x86_64.whl"
VARIANTS = Variants(variable="CUDA_CORE_BUILD_MAJOR", values=("12", "13"), path="cuda/core/_cu{value}")


def wheel(folder: Path, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NAME
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("cuda_core-0.3.0.dist-info/RECORD", "stale,,\n")
    return path


def common(extra: dict[str, bytes]) -> dict[str, bytes]:
    return {
        "cuda/core/__init__.py": b"",
        "cuda_core-0.3.0.dist-info/METADATA": b"Metadata-Version: 2.4\nName: cuda-core\nVersion: 0.3.0\n",
        "cuda_core-0.3.0.dist-info/WHEEL": b"Wheel-Version: 1.0\n",
        **extra,
    }


def test_merge_holds_every_variant_and_a_record_that_matches(tmp_path: Path) -> None:
    twelve = wheel(tmp_path / "12", common({"cuda/core/_cu12/_impl.cpython-311-x86_64-linux-gnu.so": b"12"}))
    thirteen = wheel(tmp_path / "13", common({"cuda/core/_cu13/_impl.cpython-311-x86_64-linux-gnu.so": b"13"}))
    [merged] = merge_variant_folders([twelve.parent, thirteen.parent], tmp_path / "out")
    assert merged.name == NAME
    with zipfile.ZipFile(merged) as archive:
        names = archive.namelist()
    assert names[-1] == "cuda_core-0.3.0.dist-info/RECORD", "RECORD last, dist-info after the package"
    assert {
        "cuda/core/_cu12/_impl.cpython-311-x86_64-linux-gnu.so",
        "cuda/core/_cu13/_impl.cpython-311-x86_64-linux-gnu.so",
    } <= set(names)
    assert record_problems(merged) == []
    assert missing_variants(merged, VARIANTS, "pyproject.toml") == []


def test_a_wheel_missing_a_variant_is_named_with_the_fix(tmp_path: Path) -> None:
    only = wheel(tmp_path, common({"cuda/core/_cu13/_impl.cpython-311-x86_64-linux-gnu.so": b"13"}))
    [problem] = missing_variants(only, VARIANTS, "cuda_core-0.3.0.tar.gz:pyproject.toml")
    assert problem.startswith(f"{NAME}: no compiled module under cuda/core/_cu12/ for variant CUDA_CORE_BUILD_MAJOR=12")
    assert "cuda_core-0.3.0.tar.gz:pyproject.toml [tool.cuda-ci.variants]" in problem
    assert "build the wheel once per variant and merge" in problem


def test_variant_builds_that_differ_outside_their_path_are_refused(tmp_path: Path) -> None:
    twelve = wheel(tmp_path / "12", common({"cuda/core/_device.py": b"a"}))
    thirteen = wheel(tmp_path / "13", common({"cuda/core/_device.py": b"b"}))
    with pytest.raises(CudaCiError, match=r"differ in files outside their own paths: cuda/core/_device.py"):
        merge_wheels([twelve, thirteen], tmp_path / "out")


def test_an_identifier_built_for_only_some_variants_is_refused(tmp_path: Path) -> None:
    wheel(tmp_path / "12", common({}))
    (tmp_path / "13").mkdir()
    with pytest.raises(CudaCiError, match=rf"built for only some variants: {NAME} \(1 of 2\)"):
        merge_variant_folders([tmp_path / "12", tmp_path / "13"], tmp_path / "out")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("not a table", "must be a table"),
        ({"variable": "A B", "values": ["1", "2"], "path": "x/{value}"}, "variable must name an environment variable"),
        ({"variable": "V", "values": ["1"], "path": "x/{value}"}, "values must list two or more strings"),
        ({"variable": "V", "values": ["1", "1"], "path": "x/{value}"}, "lists a value twice"),
        ({"variable": "V", "values": ["1", "2"], "path": "x/fixed"}, "path must be a relative folder holding {value}"),
        ({"variable": "V", "values": ["1", "2"], "path": "../{value}"}, "path must be a relative folder"),
    ],
)
def test_bad_variant_declarations_are_refused(table: object, message: str) -> None:
    with pytest.raises(CudaCiError, match=r"pyproject.toml: \[tool.cuda-ci.variants\]") as raised:
        parse_variants(table, "cuda_core/pyproject.toml")
    assert message in str(raised.value)


def test_the_stand_ins_declaration_parses() -> None:
    assert parse_variants(None, "x") is None
    declared = {"variable": "CUDA_CORE_BUILD_MAJOR", "values": ["12", "13"], "path": "cuda/core/_cu{value}"}
    assert parse_variants(declared, "x") == VARIANTS
    assert VARIANTS.folder("12") == "cuda/core/_cu12/" and VARIANTS.environ("13") == {"CUDA_CORE_BUILD_MAJOR": "13"}


@pytest.mark.parametrize(
    ("distribution", "filename", "message"),
    [
        ("cuda-pathfinder", "cuda_pathfinder-1.0.0-cp311-cp311-linux_x86_64.whl", "is a pure component"),
        ("cuda-core", "cuda_core-0.3.0-py3-none-any.whl", "but this wheel is pure"),
        ("cuda-core", "cuda_core-0.3.0-cp311-cp311-linux_x86_64.whl", "installs only where it was built"),
        ("cuda-core", NAME, None),
        ("cuda-core", "cuda_core-0.3.0-cp314-cp314t-win_amd64.whl", None),
        ("cuda-pathfinder", "cuda_pathfinder-1.0.0-py3-none-any.whl", None),
    ],
)  # fmt: skip
def test_build_refuses_wheels_whose_tags_do_not_match_the_components_kind(
    distribution: str, filename: str, message: str | None
) -> None:
    problem = kind_problem(get_component(distribution), filename)
    assert (problem is None) if message is None else (message in (problem or "") and filename in (problem or ""))

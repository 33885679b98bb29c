"""What a component declares (PEP 735 groups, install extras) and what an install takes from an index."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from cuda_ci.infra.declared import (
    DEFAULT_DOCS,
    Declared,
    docs_requirements,
    requirements_for_tests,
    sphinx_version_variable,
)
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.runtime_requirements import plan_runtime, refuse_components

SOURCE = "cuda_pathfinder/pyproject.toml"


def declared(text: str) -> Declared:
    return Declared.parse(text, SOURCE)


def test_groups_resolve_include_group_and_keep_pins() -> None:
    found = declared(
        '[dependency-groups]\nsphinx = ["sphinx>=7,<8.2"]\n'
        'docs = [{include-group = "sphinx"}, "sphinx-copybutton"]\ntest = ["pytest", "pytest-mock"]\n'
    )
    assert found.group("docs") == ("sphinx<8.2,>=7", "sphinx-copybutton")
    assert docs_requirements([found]) == ("sphinx<8.2,>=7", "sphinx-copybutton")
    assert requirements_for_tests([found], ()) == ("pytest", "pytest-mock")
    assert found.problems() == []


def test_without_groups_docs_get_plain_sphinx_and_tests_bare_pytest() -> None:
    found = declared('[project]\nname = "cuda-pathfinder"\n')
    assert docs_requirements([found]) == DEFAULT_DOCS
    assert requirements_for_tests([found], ()) == ("pytest",)


def test_asked_for_groups_join_the_test_group_and_components_stay_out_of_sphinx() -> None:
    found = declared(
        '[dependency-groups]\ntest = ["pytest"]\ntest-cu13 = ["cupy-cuda13x"]\ndocs = ["sphinx", "cuda-bindings"]\n'
    )
    assert requirements_for_tests([found], ()) == ("pytest",), "GPU toolkits stay out unless asked for"
    assert requirements_for_tests([found], ("test-cu13",)) == ("pytest", "cupy-cuda13x")
    assert docs_requirements([found]) == ("sphinx",), "a sibling comes from this run, never the Sphinx env"


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ('a = [{include-group = "b"}]\nb = [{include-group = "a"}]', "dependency group 'a' has an include-group cycle"),
        ('docs = [{include-group = "nope"}]', "dependency group 'docs' includes a group that is not declared"),
        ('docs = ["sphinx >=>= 7"]', "dependency group 'docs' holds a requirement that does not parse"),
        ("docs = [42]", "dependency group 'docs' is not a PEP 735 group"),
    ],
)
def test_bad_groups_are_refused_naming_the_file_the_group_and_the_fix(groups: str, message: str) -> None:
    problems = declared(f"[dependency-groups]\n{groups}\n").problems()
    assert problems, "refused"
    assert problems[0].startswith(f"{SOURCE}: {message}")
    assert any(fix in problems[0] for fix in ("remove", "declare it", "write it as", "list requirement"))


def test_an_unknown_group_is_refused_listing_the_declared_ones() -> None:
    with pytest.raises(CudaCiError, match=r"declares no dependency group 'gpu' \(declared: docs\): add it"):
        declared('[dependency-groups]\ndocs = ["sphinx"]\n').group("gpu")


def test_install_extras_must_be_declared_extras() -> None:
    text = '[project.optional-dependencies]\ncu13 = ["cuda-bindings"]\n[tool.cuda-ci]\ninstall-extras = ["cu12"]\n'
    [problem] = declared(text).problems()
    assert "install-extras names 'cu12', which [project.optional-dependencies] does not declare" in problem
    assert declared(text.replace("cu12", "cu13")).install_extras == ("cu13",)
    with pytest.raises(CudaCiError, match="install-extras must be a list of extra names"):
        declared('[tool.cuda-ci]\ninstall-extras = "cu13"\n')


def test_sphinx_version_variable_is_upstreams() -> None:
    assert sphinx_version_variable("cuda-pathfinder") == "SPHINX_CUDA_PATHFINDER_VER"
    assert sphinx_version_variable("cuda-core") == "SPHINX_CUDA_CORE_VER"


def wheel(folder: Path, name: str, version: str, *requires: str) -> Path:
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    meta = f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", meta)
    return path


def test_third_party_requirements_of_this_runs_files_come_from_the_index(tmp_path: Path) -> None:
    core = wheel(
        tmp_path,
        "cuda-core",
        "0.3.0",
        "packaging>=23",
        "numpy; python_version < '3'",
        'cuda-bindings>=13; extra == "cu13"',
    )
    bindings = wheel(tmp_path, "cuda-bindings", "13.0.0", "cuda-pathfinder>=1", "tomli-w")
    pathfinder = wheel(tmp_path, "cuda-pathfinder", "1.0.0")
    plain = plan_runtime(["cuda-core==0.3.0"], [core, bindings, pathfinder])
    assert plain.third_party == ("packaging>=23",), "markers evaluated, extras not asked for"
    assert plain.local == ("cuda-core==0.3.0",)
    with_extra = plan_runtime(["cuda-core[cu13]==0.3.0", "pytest-mock"], [core, bindings, pathfinder])
    assert sorted(with_extra.third_party) == ["packaging>=23", "pytest-mock", "tomli-w"], "through the extra's sibling"


def test_a_component_this_run_does_not_provide_is_refused(tmp_path: Path) -> None:
    pathfinder = wheel(tmp_path, "cuda-pathfinder", "1.0.0")
    with pytest.raises(CudaCiError) as info:
        plan_runtime(["cuda-pathfinder==1.0.0", "cuda-bindings>=13"], [pathfinder], what="test install")
    assert (
        "test install: cuda-bindings>=13 names a component of this repository that this run does not provide"
        in (info.value.problems[0])
    )
    assert plan_runtime(["cuda-bindings>=13"], [pathfinder], refuse_missing=False).third_party == ()


def test_a_third_party_requirement_that_pulled_a_component_is_refused() -> None:
    with pytest.raises(CudaCiError, match=r"docs install: the third-party requirements \(numba-cuda\) pulled cuda-"):
        refuse_components(["numba_cuda", "cuda_bindings", "numpy"], ["numba-cuda"], "docs install")
    refuse_components(["numpy", "packaging"], ["numpy"], "docs install")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[tool]\ncuda-ci = "strict"\n',
            "tool.cuda-ci is a string ('strict'), not a table: write it as a [tool.cuda-ci]",
        ),
        ("project = [1]\n", "project is an array ('[1]'), not a table: write it as a [project] table"),
        ("tool = 3\n", "tool is an integer ('3'), not a table"),
        ('[project]\noptional-dependencies = ["cu13"]\n', "project.optional-dependencies is an array"),
    ],
)
def test_hostile_declarations_are_refused_naming_the_file_and_the_key(text: str, message: str) -> None:
    with pytest.raises(CudaCiError) as raised:
        declared(text)
    assert raised.value.problems[0].startswith(f"{SOURCE}: {message}")


def test_an_include_group_chain_of_1500_is_a_clean_refusal() -> None:
    chain = "".join(f'g{i} = [{{include-group = "g{i + 1}"}}]\n' for i in range(1500))
    found = declared(f'[dependency-groups]\n{chain}g1500 = ["sphinx"]\n')
    problems = found.problems()  # no RecursionError
    assert problems[0].startswith(f"{SOURCE}: dependency group 'g0' includes groups more than 100 levels deep")
    assert "include the groups you need directly" in problems[0]
    assert len(problems) == 11 and problems[-1] == f"{SOURCE}: and 1391 more dependency group problems"
    assert found.group("g1450") == ("sphinx",), "a chain within the bound resolves"


def test_diamond_includes_resolve_each_group_once() -> None:
    levels = "".join(
        f'd{i} = [{{include-group = "d{i - 1}"}}, {{include-group = "d{i - 1}"}}, "r{i}"]\n' for i in range(1, 26)
    )
    found = declared(f'[dependency-groups]\nd0 = ["sphinx"]\n{levels}')
    start = time.monotonic()
    assert found.group("d25") == ("sphinx", *(f"r{i}" for i in range(1, 26))), "each requirement once, in order"
    assert found.problems() == []
    assert time.monotonic() - start < 5, "2^25 paths are not walked one by one"


def test_an_include_cycle_names_every_group_on_it() -> None:
    found = declared(
        '[dependency-groups]\na = [{include-group = "b"}]\nb = [{include-group = "c"}]\nc = [{include-group = "a"}]\n'
    )
    assert found.problems()[0] == (
        f"{SOURCE}: dependency group 'a' has an include-group cycle (a -> b -> c -> a): "
        "remove one of the include-group entries"
    )

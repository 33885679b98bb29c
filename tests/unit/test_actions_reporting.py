"""What release managers see: GitHub Actions' annotations, masks, job summary and step outputs, the
``--json`` documents and their schemas, and the live view on a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from cuda_ci.ci import jobs as checks
from cuda_ci.cli import actions, commands, jobsummary, results
from cuda_ci.cli.app import HANDLERS, main
from cuda_ci.cli.flags import DEPRECATED_ALIASES, build_parser
from cuda_ci.cli.liveview import Terminal
from cuda_ci.infra.declared import Declared
from cuda_ci.infra.errors import CudaCiError, Location, location_of
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import SCHEMA_FILE
from tests.helpers import result_document


def test_annotations_escape_data_and_properties_as_github_documents() -> None:
    line = actions.annotation("error", "50% done\r\nnext: a, b", Location("odd:name,x.toml", 3), title="cuda-ci")
    assert line == "::error title=cuda-ci,file=odd%3Aname%2Cx.toml,line=3::50%25 done%0D%0Anext: a, b"
    assert actions.annotation("warning", "plain") == "::warning::plain"
    assert actions.workflow_command("group", "a::b") == "::group::a::b", "data keeps colons (only properties escape)"


def test_a_multi_line_secret_is_masked_line_by_line() -> None:
    assert actions.mask_commands(["one-line-secret", "first line\nsecond %line"]) == [
        "::add-mask::first line",
        "::add-mask::one-line-secret",
        "::add-mask::second %25line",
    ]


def test_step_outputs_use_a_heredoc_only_for_multi_line_values() -> None:
    block = actions.output_block({"tag": "v13.0.0", "notes": "line 1\nline 2"})
    lines = block.splitlines()
    assert lines[0] == "tag=v13.0.0"
    assert lines[1].startswith("notes<<ghadelimiter_") and lines[2:4] == ["line 1", "line 2"]
    assert lines[4] == lines[1].removeprefix("notes<<") and block.endswith("\n")


def test_step_outputs_name_the_folder_the_tag_and_each_distributions_version() -> None:
    versions = {"cuda-bindings": "13.0.0", "cuda-python": "13.0.0"}
    outputs = results.step_outputs(component="cuda-bindings", tag="v13.0.0", versions=versions, release_dir=Path("/r"))
    assert outputs == {
        "component": "cuda-bindings",
        "tag": "v13.0.0",
        "release-dir": "/r",
        "version": "13.0.0",
        "version-cuda-bindings": "13.0.0",
        "version-cuda-python": "13.0.0",
        "distributions": '{"cuda-bindings": "13.0.0", "cuda-python": "13.0.0"}',
    }
    assert "release-dir" not in results.step_outputs(component="cuda-core", tag=None, versions={}), "a plan's"


def test_the_summary_of_a_failed_run_lists_each_problem_with_its_file() -> None:
    problem = CudaCiError("release-notes: x-notes.rst is missing | write it", location=Location("x-notes.rst", 1))
    doc = results.document("release", {}, problem.problems, {"preflight": 0.42})
    text = jobsummary.markdown(doc)
    assert text.startswith("## cuda-ci release: **failed**")
    assert "- :x: release-notes: x-notes.rst is missing \\| write it (`x-notes.rst`, line 1)" in text
    assert "| preflight | 0.4 |" in text


def test_a_declaration_problem_points_at_its_line_of_pyproject_toml() -> None:
    text = '[project]\nname = "x"\n\n[tool.cuda-ci]\nwheel-size-budget = "2 MiB"\ninstall-extras = ["cu13"]\n'
    found = Declared.parse(text, "cuda_core/pyproject.toml", "cuda_core/pyproject.toml")
    [problem] = found.problems()
    assert location_of(problem) == Location("cuda_core/pyproject.toml", 6)
    with pytest.raises(CudaCiError) as info:
        Declared.parse(text.replace('"2 MiB"', '"two"'), "cuda_core/pyproject.toml", "cuda_core/pyproject.toml")
    assert location_of(info.value.problems[0]) == Location("cuda_core/pyproject.toml", 4)
    assert location_of(Declared.parse(text, "x.tar.gz:pyproject.toml").problems()[0]) is None, "not a repo file"


def test_in_actions_a_long_childs_output_folds_in_its_own_group_outside_a_step() -> None:
    stream = io.StringIO()
    reporter = Reporter(stream=stream, github_actions=True)
    with reporter.streaming("cibuildwheel") as sink:
        assert sink is not None
        sink("building cp312-manylinux_x86_64\n")
    with reporter.step("build"), reporter.streaming("Sphinx") as sink:
        assert sink is not None
        sink("writing output\n")
    assert stream.getvalue().splitlines()[:3] == [
        "::group::cibuildwheel",
        "building cp312-manylinux_x86_64",
        "::endgroup::",
    ]
    assert stream.getvalue().splitlines()[3:5] == ["::group::build", "writing output"], "inside the step's fold"
    with Reporter(stream=io.StringIO()).streaming("quiet") as sink:
        assert sink is None, "not a terminal, not Actions: shown on failure only"


@pytest.mark.parametrize("color", [True, False])
def test_the_terminal_shows_live_lines_and_honours_no_color(color: bool) -> None:
    stream = io.StringIO()
    terminal = Terminal(stream, color=color, force_terminal=True)
    reporter = Reporter(stream=stream, terminal=terminal)
    with reporter.step("stage build"), reporter.streaming("cibuildwheel") as sink:
        assert sink is not None
        sink("Building cp312-manylinux_x86_64 wheel\n")
        assert terminal.showing() == ["stage build", "cibuildwheel: Building cp312-manylinux_x86_64 wheel"]
        reporter.warn("careful")
    assert terminal.showing() == []
    out = stream.getvalue()
    assert "warning: careful" in out
    assert ("\x1b[33m" in out) is color, "yellow only with colours (NO_COLOR unset)"


def test_every_command_takes_json_and_has_a_valid_schema() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in HANDLERS:
        flags = {o for a in sub.choices[command]._actions for o in a.option_strings}  # type: ignore[attr-defined]
        assert "--json" in flags, command
        schema = json.loads((SCHEMA_FILE.parent / f"{command}.schema.json").read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["properties"]["command"] == {"const": command}


def _actions_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    return summary, outputs


def test_ci_on_actions_annotates_a_failed_job_on_its_file_and_writes_json_and_a_summary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary, outputs = _actions_env(monkeypatch, tmp_path)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secretvalue123")
    monkeypatch.setenv("CUDA_CI_PYPI_UPLOAD_URL", "https://uploader:pa55word-in-url@pypi.example.invalid/legacy/")
    schema_failure = checks.JobResult(
        "workflow schema: release.yml", False, "bad: ghs_secretvalue123", Location(".github/workflows/release.yml")
    )
    monkeypatch.setattr(commands, "lint", lambda **_: [checks.JobResult("ruff", True, "clean"), schema_failure])
    monkeypatch.setattr(commands, "ci_test", lambda **kw: checks.JobResult(f"test {kw['component']}", True, "ok"))
    assert main(["ci", "--json", "--repo", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    doc = result_document(captured.out, "ci")
    assert doc["status"] == "failed" and doc["errors"][0]["file"] == ".github/workflows/release.yml"
    err = captured.err.splitlines()
    masks = [line for line in err if line.startswith("::add-mask::")]
    assert "::add-mask::ghs_secretvalue123" in masks and "::add-mask::pa55word-in-url" in masks
    assert err.index("::add-mask::ghs_secretvalue123") < err.index("error: workflow schema: release.yml failed:")
    where = "title=cuda-ci ci,file=.github/workflows/release.yml"
    assert f"::error {where}::workflow schema: release.yml failed:%0Abad: <hidden>" in err
    text = summary.read_text()
    assert "ghs_secretvalue123" not in captured.out + text
    assert "| failed | workflow schema: release.yml | .github/workflows/release.yml | bad: <hidden> |" in text
    assert not outputs.exists(), "ci names no release folder: no step outputs"


def test_the_old_version_command_still_works_and_says_it_is_deprecated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(commands, "component_version", lambda **kw: "1.2.3")
    assert DEPRECATED_ALIASES == {"version": "component-version"}
    assert main(["version", "--component", "cuda-core", "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning: `cuda-ci version` is deprecated: use `cuda-ci component-version`" in captured.err
    assert result_document(captured.out, "component-version")["version"] == "1.2.3"

"""The command layer (``commands.py``): one function per CLI command, one outcome for a bad tag,
settings made once from the environment and the Dagger hand-off flags."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest

from cuda_ci.ci import jobs as checks
from cuda_ci.cli import commands
from cuda_ci.cli import flags as cliflags
from cuda_ci.cli.app import HANDLERS, build_parser, main, settings_of
from cuda_ci.executors import host as hostrun
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.log import Reporter


def test_every_cli_command_has_its_function_in_the_command_layer() -> None:
    """One function per command; ``release`` is the host executor's (it runs a plan's nodes)."""
    names = {name: name.replace("-", "_") for name in HANDLERS}
    names["test"] = "ci_test"  # `test` would be collected by pytest wherever it is imported
    layers = {name: hostrun if name == "release" else commands for name in HANDLERS}
    missing = [f"{cli} → {layers[cli].__name__}.{n}" for cli, n in names.items() if not hasattr(layers[cli], n)]
    assert not missing
    assert len(HANDLERS) == 19


@pytest.mark.parametrize("command", ["build", "preflight", "release"])
@pytest.mark.parametrize(
    ("tag", "canonical"),
    [("v13.0.0-rc1", "v13.0.0rc1"), ("V13.01.0", "v13.1.0"), ("cuda-core-v0.3.0.RC1", "cuda-core-v0.3.0rc1")],
)
def test_a_non_canonical_tag_is_one_usage_error_naming_the_canonical_form(
    command: str, tag: str, canonical: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same exit (2) and message for build, preflight and release, before the repository is read."""
    args = [command, f"--tag={tag}", "--repo", str(tmp_path / "no-repository-here")]
    args += ["--dry-run"] if command != "build" else []
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: tag {tag!r} is not a release tag: did you mean {canonical}?" in err, err
    assert "valid release tags are" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["build", "preflight", "release"])
def test_another_units_tag_is_the_same_usage_error_everywhere(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [command, "--tag=v13.0.0", "--component=cuda-core", "--repo", str(tmp_path)]
    assert main(args + (["--dry-run"] if command != "build" else [])) == 2
    assert "releases cuda-bindings, not cuda-core" in capsys.readouterr().err


def test_hand_off_flags_are_the_runner_settings_and_the_environment_is_not() -> None:
    handed = {"CUDA_CI_PREBUILT_WHEELS": "/x", "CUDA_CI_BUILD_PYTHON": "/py", "CUDA_CI_BUILT_BY": "dagger"}
    plain = settings_of(build_parser().parse_args(["build", "--tag=v13.0.0"]), handed)
    assert plain.runner.prebuilt_wheels is None and plain.runner.build_python is None
    assert plain.runner.built_by == "host" and plain.runner.preflight_result is None
    args = build_parser().parse_args(
        [
            *("build", "--tag=v13.0.0", "--built-by=dagger", "--prebuilt-wheels=/prebuilt", "--build-python=/opt/py"),
            "--preflight-result=/work/preflight.json",
        ]
    )
    runner = settings_of(args, {}).runner
    assert (runner.built_by, runner.prebuilt_wheels, runner.build_python) == ("dagger", "/prebuilt", "/opt/py")
    assert runner.preflight_result == "/work/preflight.json"
    publish = ["publish", "--release-dir=r", "--dry-run", "--dry-run-index=testpypi=http://t:8080"]
    urls = settings_of(build_parser().parse_args(publish), {}).runner.dry_run_index_urls
    assert urls == {"testpypi": "http://t:8080"}


def test_a_bad_hand_off_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["publish", "--release-dir=r", "--dry-run-index=warehouse=http://w"])
    assert exited.value.code == 2
    assert "expected testpypi=URL or pypi=URL" in capsys.readouterr().err


def test_hand_off_flags_are_listed_in_the_commands_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command, flag in [("build", "--prebuilt-wheels"), ("smoke", "--build-python"), ("publish", "--dry-run-index")]:
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        out = capsys.readouterr().out
        assert cliflags.HANDOFF in out.replace("\n", " ").replace("  ", " ") or "Dagger hand-off" in out
        assert flag in out


def test_settings_read_oidc_and_the_container_engine_once() -> None:
    environ = {
        "GITHUB_ACTIONS": "true",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.invalid",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc-secret",
        "CUDA_CI_CONTAINER_ENGINE": "none",
    }
    settings = settings_of(build_parser().parse_args(["lint"]), environ)
    assert settings.in_github_actions and settings.container_engine == "none"
    assert settings.oidc == {
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.invalid",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc-secret",
    }
    assert "oidc-secret" not in repr(settings)


def test_a_full_disk_in_a_stage_names_the_stage_and_the_file() -> None:
    reporter = Reporter(stream=io.StringIO())
    with pytest.raises(CudaCiError) as info, commands.stage(reporter, "build"):
        raise OSError(errno.ENOSPC, "No space left on device", "/small/dist/x.whl")
    assert info.value.problems[0].startswith("no space left on device in stage build writing /small/dist/x.whl:")
    assert reporter.stage_seconds().keys() == {"build"}
    assert commands.translate(ValueError("a bug")) is None


def test_ci_is_lint_and_the_test_job_of_each_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI jobs are the commands' own functions, failures gathered."""
    ran: list[str] = []

    def lint(*, repo: Path, reporter: Reporter) -> list[checks.JobResult]:
        ran.append("lint")
        return [checks.JobResult("ruff", True, "clean")]

    def ci_test(*, repo: Path, component: str, settings: object, reporter: Reporter) -> checks.JobResult:
        ran.append(component)
        if component == "cuda-core":
            raise CudaCiError("the tests failed")
        return checks.JobResult(f"test {component}", True, "ok")

    monkeypatch.setattr(commands, "lint", lint)
    monkeypatch.setattr(commands, "ci_test", ci_test)
    settings = settings_of(build_parser().parse_args(["ci"]), {})
    results = commands.ci(repo=Path("."), component=None, settings=settings, reporter=Reporter(stream=io.StringIO()))
    assert ran == ["lint", "cuda-pathfinder", "cuda-bindings", "cuda-core"]
    assert [r.ok for r in results] == [True, True, True, False]

"""The module's functions, their graphs run for real in podman by the lane (see engine.py)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import anyio
import pytest

import dagger
from cuda_ci.executors.dagger_nodes import CiJobsFailed
from cuda_ci.executors.dagger_parts import CUDA_CI, TOOLING_IMAGE
from cuda_ci.main import CudaCi
from dagger import dag
from tests.container.conftest import STAND_IN, module_on
from tests.container.engine import Lane, StandInMismatch
from tests.container.execs import Unsupported
from tests.helpers import REPO_ROOT

UNITS = {"cuda-pathfinder": "cuda-pathfinder-v1.0.0", "cuda-bindings": "v13.0.0", "cuda-core": "cuda-core-v0.3.0"}


@pytest.mark.parametrize("unit", list(UNITS))
def test_release_dry_run_runs_in_containers(
    engine: Lane, module: CudaCi, unit: str, lane_repo: Path, tmp_path: Path
) -> None:
    bound_before = len(engine.bound)
    released = anyio.run(CudaCi.release, module, UNITS[unit], None, False, True)
    folder = engine.directory(released)
    manifest = json.loads((folder / "release-manifest.json").read_text())
    assert manifest["built_by"] == "dagger" and manifest["tag"] == UNITS[unit]
    names = sorted(f["name"] for f in manifest["files"] if f["kind"] in ("sdist", "wheel"))
    assert names and sorted(p.name for p in (folder / "dist").iterdir()) == names
    if unit != "cuda-pathfinder":
        assert any("-cp311-cp311-manylinux" in n for n in names), names
    assert (folder / "docs").is_dir() and any((folder / "docs").rglob("index.html"))
    log = json.loads((folder / "publish-log.json").read_text())
    assert log, "publish recorded what it did against the index services"
    bound = engine.bound[bound_before:]
    assert sorted(alias for alias, _ in bound) == ["pypi", "testpypi"], "each index service bound by its publish"
    assert all(n != engine.network for _, n in bound) and len({n for _, n in bound}) == len(bound), (
        "each service on its client's own network: no other container answers to its alias"
    )
    assert engine.leftovers() == [], "every step's container and every service stopped and removed"
    if unit == "cuda-pathfinder":
        _same_folder_as_the_hosts(folder, lane_repo, UNITS[unit], tmp_path / "host")


# What may differ between the two executors' folders of one commit: who built it and with which
# tools' builds (hashes, sizes), the times, and the dry-run's index data (the host's pypiservers
# keep theirs in the folder; Dagger's are services).
EXECUTOR_FIELDS = {"built_by", "tools"}


def _same_folder_as_the_hosts(folder: Path, repo: Path, tag: str, out: Path) -> None:
    """The host executor's release of the same commit: the same files, node logs and manifest fields."""
    from cuda_ci.cli.app import main

    assert main(["release", "--tag", tag, "--dry-run", "--repo", str(repo), "--out", str(out)]) == 0

    def files(root: Path) -> set[str]:
        return {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and p.parts[len(root.parts)] != "index"
        }

    assert files(folder) == files(out)
    dagger_manifest, host_manifest = (json.loads((f / "release-manifest.json").read_text()) for f in (folder, out))
    assert set(dagger_manifest) == set(host_manifest)
    for field in set(host_manifest) - EXECUTOR_FIELDS - {"files", "validation", "docs"}:
        assert dagger_manifest[field] == host_manifest[field], field

    def shape(entries: list[dict[str, object]], keys: tuple[str, ...]) -> list[tuple[object, ...]]:
        return sorted(tuple(e.get(k) for k in keys) for e in entries)

    keys = ("name", "path", "kind", "distribution")
    assert shape(dagger_manifest["files"], keys) == shape(host_manifest["files"], keys)
    checks = ("check", "file", "status")
    assert shape(dagger_manifest["validation"], checks) == shape(host_manifest["validation"], checks)
    assert dagger_manifest["docs"]["status"] == host_manifest["docs"]["status"] == "built"
    runs = [json.loads((f / "run-log.json").read_text()) for f in (folder, out)]
    assert [sorted(n["node"] for n in r["nodes"]) for r in runs] == [sorted(n["node"] for n in runs[1]["nodes"])] * 2
    assert runs[0]["status"] == runs[1]["status"] == "succeeded"


def _tooling_installs(engine: Lane) -> int:
    return len([argv for argv in engine.log if argv[1:3] == ["-m", "venv"] and argv[-1] == "/opt/cuda-ci"])


def test_ci_reports_the_failing_job_with_its_last_output(engine: Lane, module: CudaCi, broken_repo: Path) -> None:
    with pytest.raises(CiJobsFailed) as failed:
        anyio.run(CudaCi.ci, module_on(broken_repo), "cuda-pathfinder")
    assert set(failed.value.failures) == {"test --component cuda-pathfinder"}, str(failed.value)
    error = failed.value.failures["test --component cuda-pathfinder"]
    assert isinstance(error, dagger.ExecError) and error.exit_code != 0
    message = str(failed.value)
    assert message.startswith("1 CI job(s) failed") and f"exit code {error.exit_code}" in message
    assert "test_the_lane_breaks_this_job" in message or "broke this job on purpose" in message, message
    installed = _tooling_installs(engine)
    anyio.run(CudaCi.lint, module)
    assert _tooling_installs(engine) == installed, (
        "the other checkout's lint reuses the cuda-ci install layers the broken one made: keys follow content"
    )


def test_a_ci_test_job_runs_in_containers(engine: Lane, module: CudaCi) -> None:
    output: str = anyio.run(CudaCi.test, module, "cuda-pathfinder", "3.11")
    assert "passed" in output


def test_the_gpu_jobs_chain_runs_its_tests_against_the_installed_wheels(engine: Lane, module: CudaCi) -> None:
    """The GPU job's own chain, only its GPU attachment removed: a CUDA base image (its stand-in), the
    job's wheels installed, the component's gpu tests run by the plan's test step with the wheel guard."""
    output: str = anyio.run(CudaCi.test, module, "cuda-pathfinder", "3.11", True)
    guard = "cuda-ci wheel guard: cuda.pathfinder imported from /venv/lib/python3.11/site-packages/cuda/pathfinder/"
    assert guard in output, output[-3000:]
    assert "skipped" in output and "failed" not in output, "the gpu test ran, and skips without a driver"
    ran = [argv for argv in engine.log if argv[:2] == ["uv", "venv"]]
    assert ran[-1] == ["uv", "venv", "--python", "3.11", "--python-preference", "only-system", "/venv"]
    assert engine.log[-1][:3] == ["/venv/bin/pytest", "-p", "cuda_ci_wheel_guard"]


def test_lint_runs_in_containers(engine: Lane, module: CudaCi) -> None:
    anyio.run(CudaCi.lint, module)
    assert any(argv[1:2] == ["lint"] for argv in engine.log)


def test_tokens_reach_containers_only_as_env_secrets_of_one_exec(
    engine: Lane, module: CudaCi, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "ghs_lane_token_never_printed_0123456789"
    monkeypatch.setenv("CUDA_CI_LANE_GITHUB_TOKEN", token)
    secret = dag.secret("env://CUDA_CI_LANE_GITHUB_TOKEN")  # as `dagger call --github-token=env://...` passes it
    check = functools.partial(CudaCi.preflight, module, "cuda-pathfinder-v1.0.0", dry_run=True, github_token=secret)
    findings = anyio.run(check)
    assert token not in findings
    assert not [argv for argv in engine.log if any(token in a for a in argv)], "never in an argv"
    assert engine.secret_configs, "the preflight step carried the secret"
    assert not [c for c in engine.secret_configs if token in c], "never in a container's or image's configuration"


def test_every_exec_option_is_honoured_and_each_step_starts_afresh(engine: Lane) -> None:
    base = dag.container(platform=dagger.Platform("linux/amd64")).from_(TOOLING_IMAGE).with_env_variable("WHO", "lane")
    started = base.with_exec(["sh", "-c", "sleep 300 & echo started"])
    count = "for p in /proc/[0-9]*; do cat $p/comm; done 2>/dev/null | grep -c '^sleep$' || true"
    assert engine.stdout(started.with_exec(["sh", "-c", count])).strip() == "0", "nothing left running"
    piped = started.with_exec(["cat"], stdin="from stdin", redirect_stdout="out.txt")
    piped = piped.with_exec(["sh", "-c", "echo to stderr >&2"], redirect_stderr="/tmp/err.txt")
    assert engine.stdout(piped.with_exec(["cat", "/out.txt", "/tmp/err.txt"])) == "from stdin" + "to stderr\n"
    assert engine.stdout(base.with_exec(["echo", "${WHO} $WHO"], expand=True)) == "lane lane\n"
    assert engine.stdout(base.with_exec(["echo", "${WHO}"])) == "${WHO}\n"
    failing = base.with_exec(["false"], expect=dagger.ReturnType.FAILURE)
    assert engine.stdout(failing.with_exec(["echo", "ok"])) == "ok\n"
    with pytest.raises(dagger.ExecError, match="was expected to fail"):
        engine.stdout(base.with_exec(["true"], expect=dagger.ReturnType.FAILURE))
    assert engine.stdout(base.with_exec(["false"], expect=dagger.ReturnType.ANY).with_exec(["echo", "on"])) == "on\n"
    assert engine.stdout(base.with_exec(["sh", "-c", "echo $$"], no_init=True)) == "1\n"
    assert engine.stdout(base.with_exec(["sh", "-c", "echo $$"])) != "1\n", "an init is pid 1 by default"
    with pytest.raises(Unsupported, match="option insecureRootCapabilities is not honoured"):
        engine.stdout(base.with_exec(["true"], insecure_root_capabilities=True))
    with pytest.raises(Unsupported, match=r"Container\.withUser is not known to the container lane"):
        engine.stdout(base.with_user("nobody").with_exec(["true"]))


def test_a_stand_in_that_lacks_what_the_graph_runs_fails_the_lane(engine: Lane) -> None:
    container = dag.container(platform=dagger.Platform("linux/amd64")).from_(TOOLING_IMAGE)
    with pytest.raises(StandInMismatch, match=f"stand-in image {STAND_IN} has no /opt/python/cp313-cp313/bin/python"):
        engine.stdout(container.with_exec(["/opt/python/cp313-cp313/bin/python", "-V"]))
    with pytest.raises(Unsupported, match=r"platform linux/arm64: this machine runs linux/amd64"):
        engine.stdout(dag.container(platform=dagger.Platform("linux/arm64")).from_(TOOLING_IMAGE).with_exec(["true"]))


def _cibuildwheel_env() -> dict[str, str]:
    """cibuildwheel on this machine, with podman and the stand-in for its pinned manylinux x86_64 image
    (STAND_INS; the lane repository's selection is already cut to what the stand-in serves)."""
    return {
        **os.environ,
        "CUDA_CI_CONTAINER_ENGINE": "podman",
        "CONTAINERS_CONF": str(REPO_ROOT / ".ci" / "containers.conf"),
        "CIBW_MANYLINUX_X86_64_IMAGE": STAND_IN,
    }


def test_cibuildwheel_builds_the_compiled_wheels_in_podman_and_validate_passes(
    podman: object, lane_repo: Path, tmp_path: Path
) -> None:
    """The host runner's `build --wheels-only` with a container engine: cibuildwheel's own Linux
    build (its [tool.cibuildwheel] selection, cut to what the stand-in image serves), then a
    release folder taking those wheels, validated here."""
    env = _cibuildwheel_env()
    cuda_ci = str(Path(sys.executable).parent / "cuda-ci")
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [cuda_ci, "build", "--tag", "v13.0.0", "--wheels-only", "--repo", str(lane_repo), "--out", str(wheels)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "cibuildwheel" in built.stdout + built.stderr, "the build ran cibuildwheel"
    (wheel,) = (wheels / "dist").glob("cuda_bindings-13.0.0-cp311-cp311-manylinux_*_x86_64.whl")
    release = tmp_path / "release"
    prebuilt = ["--prebuilt-wheels", str(wheels / "dist")]  # the Dagger module's hand-off flag
    for argv in (
        ["build", "--tag", "v13.0.0", *prebuilt, "--repo", str(lane_repo), "--out", str(release)],
        ["validate", "--release-dir", str(release), "--repo", str(lane_repo)],
    ):
        result = subprocess.run([cuda_ci, *argv], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    manifest = json.loads((release / "release-manifest.json").read_text())
    assert manifest["build_identifiers"] == ["cp311-manylinux_x86_64"]
    assert wheel.name in {f["name"] for f in manifest["files"]}
    assert (release / "dist" / wheel.name).read_bytes() == wheel.read_bytes()


def test_cibuildwheel_builds_compiled_cuda_core_against_this_commits_bindings(
    podman: object, lane_repo: Path, tmp_path: Path
) -> None:
    """cuda-core's backend asks for cuda-bindings: cibuildwheel's before-build installs the declared
    build requirements and builds this commit's siblings from their sdists in the container, the
    wheel builds without isolation once per declared variant, and the two are merged."""
    cuda_ci = str(Path(sys.executable).parent / "cuda-ci")
    wheels = tmp_path / "wheels"
    argv = [cuda_ci, "build", "--tag", "cuda-core-v0.3.0", "--wheels-only", "--repo", str(lane_repo)]
    argv += ["--out", str(wheels)]
    built = subprocess.run(argv, env=_cibuildwheel_env(), capture_output=True, text=True)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-6000:]
    (wheel,) = (wheels / "dist").glob("cuda_core-0.3.0-cp311-cp311-*manylinux*_x86_64.whl")
    with zipfile.ZipFile(wheel) as archive:
        modules = sorted(n for n in archive.namelist() if n.endswith(".so"))
    assert [m.split("/")[2] for m in modules] == ["_cu12", "_cu13"], "one cibuildwheel run per variant, merged"


def test_one_platforms_wheels_run_in_containers(
    engine: Lane, module: CudaCi, capsys: pytest.CaptureFixture[str]
) -> None:
    """``wheels --platform linux/amd64 --keep-failed``, as the workflows' wheel jobs call it: the plan's
    wheel nodes of that platform (cut here to the stand-in's cp311), after its preflight node, each
    built, repaired and import-tested in its pinned image; the wheels in dist/, the logs in logs/."""
    from cuda_ci.cli.app import main

    before = len(engine.stderr)  # the session's lane ran other wheel nodes before this test
    call = functools.partial(CudaCi.wheels, module, "v13.0.0", platform="linux/amd64", keep_failed=True)
    folder = engine.directory(anyio.run(call))
    names = sorted(p.name for p in (folder / "dist").iterdir())
    assert names == [n for n in names if n.startswith("cuda_bindings-13.0.0-cp311-cp311-manylinux")], names
    assert names and all(n.endswith("_x86_64.whl") for n in names)
    assert any(argv[1:2] == ["preflight"] for argv in engine.log), "its preflight node ran first"
    [(argv, err)] = [(argv, err) for argv, err in engine.stderr[before:] if "--wheels-only" in argv]
    assert "--build-python=/opt/python/cp311-cp311/bin/python" in argv, argv
    assert "ok in" in err.split("==> stage smoke", 1)[1], "the wheel, installed and imported in its own image"
    logs = sorted(p.name for p in (folder / "logs").iterdir())
    assert logs == ["preflight.json", "wheel-cp311-manylinux_x86_64.json"], logs
    assert main(["report", "--release-dir", str(folder), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n["node"] for n in doc["nodes"]] == ["preflight", "wheel:cp311-manylinux_x86_64"], doc["nodes"]


def test_a_failed_release_returns_its_folder_for_report_with_keep_failed(
    engine: Lane, lane_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tag without its release notes: preflight fails in its container, the run stops there, and the
    folder returned holds its log, which `cuda-ci report` turns into the job's error on the runner."""
    from cuda_ci.cli.app import main

    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--no-local", str(lane_repo), str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "tag", "cuda-pathfinder-v1.0.1"], check=True)
    before = len(engine.log)  # the session's lane ran other releases before this test
    call = functools.partial(CudaCi.release, module_on(repo), "cuda-pathfinder-v1.0.1", dry_run=True, keep_failed=True)
    folder = engine.directory(anyio.run(call))
    ran = [argv[1] for argv in engine.log[before:] if argv[0] == CUDA_CI]
    assert "preflight" in ran and "build" not in ran, ran
    record = json.loads((folder / "logs" / "preflight.json").read_text())
    assert record["status"] == "failed" and record["errors"][0].startswith("preflight (exit code 1): ")
    assert main(["report", "--release-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "release-notes: cuda_pathfinder/docs/source/release/1.0.1-notes.rst is missing" in err, err

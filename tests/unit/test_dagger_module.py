"""The Dagger layer, inspected offline: the SDK builds lazy call chains without an engine.

Nothing here runs Dagger; these tests prove what the graph would ask the engine to do.
"""

from __future__ import annotations

import argparse
import inspect
import re
import typing
from pathlib import Path

import anyio
import dagger.mod
import gql
import pytest
from dagger._exceptions import QueryErrorValue

import dagger
from cuda_ci.cli import build_parser
from cuda_ci.cliflags import HANDOFF
from cuda_ci.components import unit_names
from cuda_ci.graphparts import (
    CUDA_IMAGE,
    TOOL_PYTHON,
    TOOL_PYTHON_VERSION,
    TOOLING_IMAGE,
    MissingHistoryError,
    python_path,
    smoke_versions,
)
from cuda_ci.main import CiJobsFailed, CudaCi
from cuda_ci.wheelplan import linux_wheel_jobs, tooling_image
from dagger import dag
from tests.dagger_render import Call, contains_chain, execs, render, walk
from tests.helpers import REPO_ROOT

FUNCTIONS = ["build", "ci", "docs", "lint", "preflight", "publish", "release", "test", "validate"]
JOBS = linux_wheel_jobs(REPO_ROOT / "cuda_bindings")
TOKENS = {
    "GITHUB_TOKEN": dag.set_secret("gh", "ghs_secret_value_for_graph_tests"),
    "CUDA_CI_TESTPYPI_TOKEN": dag.set_secret("tp", "pypi-testpypi-secret-value"),
    "CUDA_CI_PYPI_TOKEN": dag.set_secret("pp", "pypi-pypi-secret-value"),
}
PLAINTEXTS = ["ghs_secret_value_for_graph_tests", "pypi-testpypi-secret-value", "pypi-pypi-secret-value"]


@pytest.fixture
def module() -> CudaCi:
    return CudaCi(source=dag.directory())  # type: ignore[call-arg]


def _images(chain: list[Call]) -> set[str]:
    return {c.args["address"] for c in walk(chain) if c.name == "from"}


INVOCATION = "0123456789abcdef"
GATE: dict[str, str | None] = {"status": "verified", "run_url": "https://github.com/NVIDIA/cuda-python/actions/runs/1"}


def _release(module: CudaCi, *, dry_run: bool = False, no_publish: bool = False) -> list[Call]:
    gate = GATE
    graph = module.release_graph(
        ["--tag=v13.1.0"], JOBS, gate, None, no_publish, dry_run, TOKENS, "NVIDIA/cuda-python", INVOCATION
    )
    return render(graph)


def test_the_module_registers_every_function_with_docs() -> None:
    registered = dagger.mod._default_mod._objects["CudaCi"]
    assert sorted(registered.functions) == FUNCTIONS
    for name in FUNCTIONS:
        method = getattr(CudaCi, name)
        doc = inspect.getdoc(method) or ""
        assert doc and "\n" not in doc, f"{name}: a one-line docstring"
        hints = typing.get_type_hints(method, include_extras=True)
        for parameter in inspect.signature(method).parameters.values():
            if parameter.name == "self":
                continue
            metadata = getattr(hints[parameter.name], "__metadata__", ())
            assert any(isinstance(m, dagger.Doc) for m in metadata), f"{name}({parameter.name}) needs Doc"
    create = typing.get_type_hints(CudaCi.create, include_extras=True)["source"].__metadata__
    assert any(isinstance(m, dagger.DefaultPath) and m.from_context == "/" for m in create)
    ignore = next(m for m in create if isinstance(m, dagger.Ignore))
    assert {".venv", ".release", "**/dist", "**/*.pyd", "dagger/sdk"} <= set(ignore.patterns)
    # setuptools-scm needs the history: nothing may exclude .git, and "!" re-includes only what was excluded.
    assert not [p for p in ignore.patterns if ".git" in p], ignore.patterns


def test_every_image_is_pinned_by_digest_and_the_tooling_pin_is_cibuildwheels(module: CudaCi) -> None:
    chains = [
        _release(module),
        render(module.test_container("cuda-core", "3.12", gpu=True)),
        render(module.lint_container()),
    ]
    images = set().union(*(_images(c) for c in chains))
    assert images, "the graph starts from images"
    assert all("@sha256:" in image for image in images), images
    assert tooling_image() == TOOLING_IMAGE, "keep TOOLING_IMAGE equal to cibuildwheel's pinned manylinux_2_28"
    assert CUDA_IMAGE in images


def test_wheel_builds_cover_exactly_cibuildwheels_identifiers(module: CudaCi) -> None:
    chain = render(module.build_graph(["--tag=v13.1.0"], JOBS))
    per_job = [a for a in execs(chain) if "--wheels-only" in a]
    assert sorted(_flag(a, "--build-python") for a in per_job) == sorted(str(j.python) for j in JOBS)
    platforms = [c.args["platform"] for c in walk(chain) if c.name == "container" and "platform" in c.args]
    assert sorted(platforms) == sorted(j.platform for j in JOBS)
    assert {j.image for j in JOBS} <= _images(chain)
    wheel_builds = [a for a in execs(chain) if "--wheels-only" in a]
    # upstream's selection: CPython 3.10-3.15 and free-threaded 3.14t and 3.15t, two arches
    assert len(wheel_builds) == len(JOBS) == 16
    pythons = {j.identifier.split("-")[0] for j in JOBS}
    assert pythons == {"cp310", "cp311", "cp312", "cp313", "cp314", "cp314t", "cp315", "cp315t"}
    assert {j.arch for j in JOBS} == {"x86_64", "aarch64"}
    once = ["--tag=v13.1.0", "--built-by=dagger", "--prebuilt-wheels=/prebuilt", "--repo", "/src", "--out", "/release"]
    assert ["/opt/cuda-ci/bin/cuda-ci", "build", *once] in execs(chain)


def test_compiled_cuda_core_has_wheel_jobs_for_the_same_selection(module: CudaCi) -> None:
    core_jobs = linux_wheel_jobs(REPO_ROOT / "cuda_core")
    assert [j.identifier for j in core_jobs] == [j.identifier for j in JOBS]
    chain = render(module.build_graph(["--tag=cuda-core-v0.3.0"], core_jobs))
    wheel_builds = [a for a in execs(chain) if "--wheels-only" in a]
    assert len(wheel_builds) == 16 and all("--tag=cuda-core-v0.3.0" in a for a in wheel_builds)
    pythons = {_flag(a, "--build-python") for a in wheel_builds}
    assert {"/opt/python/cp314-cp314t/bin/python", "/opt/python/cp315-cp315t/bin/python"} <= pythons


def test_stages_hand_the_same_directory_along(module: CudaCi) -> None:
    built = render(module.build_graph(["--tag=v13.1.0"], JOBS, GATE))
    smokes = smoke_versions([j.identifier for j in JOBS])
    validated = module.validate_graph(module.build_graph(["--tag=v13.1.0"], JOBS, GATE), None, smokes)
    assert contains_chain(render(validated), built), "validate consumes build's Directory"
    documented = render(module.docs_graph(validated))
    assert contains_chain(documented, render(validated)), "docs consume validate's Directory"
    released = _release(module)
    assert contains_chain(released, documented), "publish consumes docs' Directory"
    builds = {tuple(a) for a in execs(released) if a[:2] == ["/opt/cuda-ci/bin/cuda-ci", "build"]}
    # The same node may appear under several consumers; the engine runs it once. One build of the sdists and manifest.
    assert len([b for b in builds if "--wheels-only" not in b]) == 1
    assert not any(c.name == "host" for c in walk(released)), "no dag.host() inside functions"
    assert not any(c.name in ("http", "git") and c.type_name == "Query" for c in walk(released)), "no re-download"


def _flag(argv: list[str], flag: str) -> str | None:
    """The value of ``--flag=value`` in an argv (how main.py passes the hand-off flags)."""
    return next((a.split("=", 1)[1] for a in argv if a.startswith(f"{flag}=")), None)


def _cuda_ci_argvs(chain: list[Call]) -> list[list[str]]:
    return [a[1:] for a in execs(chain) if a and a[0] == "/opt/cuda-ci/bin/cuda-ci"]


@pytest.mark.parametrize("dry_run", [False, True])
def test_every_cuda_ci_argv_the_module_runs_is_one_the_cli_parses(module: CudaCi, dry_run: bool) -> None:
    """The Dagger → CLI hand-off is the CLI's flags, nothing else: no CUDA_CI_* variable carries a setting."""
    chain = _release(module, dry_run=dry_run)
    argvs = _cuda_ci_argvs(chain) + _cuda_ci_argvs(render(module.test_container("cuda-core", "3.13", gpu=False)))
    checked = module.preflight_container("v13.1.0", None, False, dry_run, None, "NVIDIA/cuda-python", INVOCATION)
    argvs += _cuda_ci_argvs(render(checked))
    assert {a[0] for a in argvs} >= {"preflight", "build", "validate", "smoke", "docs", "publish", "test"}
    for argv in argvs:
        build_parser().parse_args(argv)  # exits on an unknown flag
    handed = {n for c in walk(chain) if c.name == "withEnvVariable" for n in [c.args["name"]]}
    assert handed <= {"GITHUB_REPOSITORY", "CUDA_CI_INVOCATION", "CUDA_CI_INDEX_NAME", "UV_PYTHON_INSTALL_DIR"}, handed
    builds = [a for a in argvs if a[0] == "build" and "--wheels-only" not in a]
    assert {(_flag(a, "--ci-gate"), _flag(a, "--ci-run-url"), _flag(a, "--built-by")) for a in builds} == {
        ("verified", GATE["run_url"], "dagger")
    }
    publishes = [a for a in argvs if a[0] == "publish"]
    if dry_run:
        assert all(
            "--dry-run-index=testpypi=http://testpypi:8080" in a and "--dry-run-index=pypi=http://pypi:8080" in a
            for a in publishes
        )
    smokes = [a for a in argvs if a[0] == "smoke"]
    assert smokes and all(_flag(a, "--build-python") for a in smokes)


def test_the_smoke_runs_skip_the_tooling_interpreter_whichever_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    assert python_path(TOOL_PYTHON_VERSION) == TOOL_PYTHON, "the tooling interpreter is named once"
    identifiers = ["cp312-manylinux_x86_64", "cp313-manylinux_x86_64", "cp313-manylinux_aarch64"]
    monkeypatch.setattr("cuda_ci.graphparts.TOOL_PYTHON_VERSION", "3.13")
    assert smoke_versions(identifiers) == ["3.12"], "validate smoke-tests the tooling interpreter itself"


def test_one_smoke_install_per_other_supported_python(module: CudaCi) -> None:
    assert smoke_versions([j.identifier for j in JOBS]) == ["3.10", "3.11", "3.13", "3.14", "3.14t", "3.15", "3.15t"]
    assert python_path("3.15t") == "/opt/python/cp315-cp315t/bin/python", "manylinux's free-threaded prefix"
    assert {str(j.python) for j in JOBS} >= {python_path(v) for v in smoke_versions([j.identifier for j in JOBS])}
    chain = _release(module, no_publish=True)
    smokes = [a for a in execs(chain) if a[1:2] == ["smoke"]]
    assert len(smokes) == 7


def test_tokens_enter_only_as_secrets(module: CudaCi) -> None:
    chain = _release(module)
    secret_vars = {c.args["name"] for c in walk(chain) if c.name == "withSecretVariable"}
    assert secret_vars == set(TOKENS)
    env_names = [c.args["name"] for c in walk(chain) if c.name == "withEnvVariable"]
    assert not [n for n in env_names if "TOKEN" in n or "PASSWORD" in n]
    visible = [c for c in walk(chain) if c.name in ("withExec", "withEnvVariable", "withNewFile", "withLabel")]
    for call in visible:
        assert not any(p in repr(call.args) for p in PLAINTEXTS), call


def test_dry_run_publishes_to_pypiserver_services(module: CudaCi) -> None:
    chain = _release(module, dry_run=True)
    bindings = [c for c in walk(chain) if c.name == "withServiceBinding"]
    assert sorted(c.args["alias"] for c in bindings) == ["pypi", "testpypi"]
    assert all(any(x.name == "asService" for x in c.args["service"]) for c in bindings)
    assert not any(c.name == "withSecretVariable" for c in walk(chain)), "a dry-run carries no token"
    assert any("--dry-run" in a for a in execs(chain))


def test_gpu_adds_the_gpu_call_and_only_then(module: CudaCi) -> None:
    with_gpu = render(module.test_container("cuda-bindings", "3.12", gpu=True))
    without = render(module.test_container("cuda-bindings", "3.12", gpu=False))
    assert any(c.name == "experimentalWithAllGPUs" for c in walk(with_gpu))
    assert not any(c.name == "experimentalWithAllGPUs" for c in walk(without))
    workdirs = [c.args["path"] for c in walk(with_gpu) if c.name == "withWorkdir"]
    assert workdirs[-2:] == ["/src/cuda_bindings", "/src/cuda_python"], "each component's tests from its own folder"
    assert [a[-1] for a in execs(with_gpu) if "pytest" in a and "-m" in a][-2:] == ["tests", "tests"]
    groups = [a for a in execs(with_gpu) if "--group" in a]
    assert groups[0][-4:] == [
        "--group",
        "/src/cuda_bindings/pyproject.toml:test",
        "--group",
        "/src/cuda_python/pyproject.toml:test",
    ]


def test_caches_are_named_volumes(module: CudaCi) -> None:
    mounts = [c for c in walk(_release(module)) if c.name == "withMountedCache"]
    assert mounts
    keys = {c.args["cache"][0].args["key"] for c in mounts}
    assert keys == {"cuda-ci-pip", "cuda-ci-uv", "cuda-ci-tool-envs"}
    paths = {c.args["path"] for c in mounts}
    assert "/root/.cache/cuda-ci" in paths, "where cuda-ci keeps tool environments (toolenvs.cache_dir)"


# Flags that exist on one side only, by design (DESIGN.md: host-only and Dagger-only arguments); the
# hand-off flags (cliflags.HANDOFF) are the ones main.py passes itself.
HOST_ONLY = {"repo", "debug", "out", "wheels_only", "release_dir", "json", "help"}
DAGGER_ONLY = {"python", "gpu", "github_token", "pypi_token", "testpypi_token", "github_repository", "release"}


def _cli_flags(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    handoff = {a.dest for g in sub.choices[command]._action_groups if g.title == HANDOFF for a in g._group_actions}
    return {a.dest for a in sub.choices[command]._actions} - HOST_ONLY - handoff


@pytest.mark.parametrize("name", ["preflight", "build", "validate", "docs", "publish", "release", "lint", "test", "ci"])
def test_dagger_arguments_mirror_the_cli_flags(name: str) -> None:
    parameters = set(inspect.signature(getattr(CudaCi, name)).parameters) - {"self"} - DAGGER_ONLY
    assert parameters == _cli_flags(name)


def test_importing_the_module_needs_no_engine() -> None:
    import subprocess as real_subprocess  # the autouse guard would refuse; importing runs nothing

    del real_subprocess
    assert Path(inspect.getfile(CudaCi)).name == "main.py"
    assert "dagger" not in (REPO_ROOT / "dagger/src/cuda_ci/__init__.py").read_text().split("import")[-1]


# --- behaviour a real engine would show (issue: the module on a real engine) ----------------------


def _exec_error(command: list[str], exit_code: int, stderr: str) -> dagger.ExecError:
    value = QueryErrorValue(
        message=f"process {command} did not complete successfully: exit code: {exit_code}",
        extensions={"_type": "EXEC_ERROR", "cmd": command, "exitCode": exit_code, "stdout": "", "stderr": stderr},
    )
    error = dagger.QueryError([value], gql.GraphQLRequest("{ container { id } }"))
    assert isinstance(error, dagger.ExecError)
    return error


def _job_name(container: dagger.Container) -> str:
    argv = next(a for a in reversed(execs(render(container))) if a[0] == "/opt/cuda-ci/bin/cuda-ci")
    return "lint" if argv[1] == "lint" else f"test --component {argv[3]}"


def test_ci_runs_every_job_at_once_and_reports_every_failure(module: CudaCi, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = module.ci_jobs(None)
    assert list(jobs) == ["lint", *(f"test --component {u}" for u in unit_names())]
    started: list[str] = []
    all_started = anyio.Event()

    async def stdout(self: dagger.Container) -> str:
        name = _job_name(self)
        started.append(name)
        if len(started) == len(jobs):
            all_started.set()
        with anyio.fail_after(5):  # run one after another, a job would wait here for ever
            await all_started.wait()
        if name in ("lint", "test --component cuda-core"):
            raise _exec_error(["cuda-ci", name], 1, f"error: {name} broke\n")
        return f"{name} ok"

    monkeypatch.setattr(dagger.Container, "stdout", stdout)
    with pytest.raises(CiJobsFailed) as failed:
        anyio.run(CudaCi.ci, module, None)
    message = str(failed.value)
    assert message.startswith("2 CI job(s) failed")
    assert "- lint: exit code 1\n    error: lint broke" in message
    assert "- test --component cuda-core: exit code 1\n    error: test --component cuda-core broke" in message
    assert "cuda-pathfinder" not in message
    monkeypatch.setattr(dagger.Container, "stdout", _passing_stdout)
    assert anyio.run(CudaCi.ci, module, "cuda-pathfinder") == "lint ok\ntest --component cuda-pathfinder ok"


async def _passing_stdout(self: dagger.Container) -> str:
    return f"{_job_name(self)} ok"


def test_side_effecting_steps_are_never_served_from_a_cache(module: CudaCi) -> None:
    def invocations(chain: list[Call]) -> set[str]:
        return {
            c.args["value"]
            for c in walk(chain)
            if c.name == "withEnvVariable" and c.args["name"] == "CUDA_CI_INVOCATION"
        }

    first = render(anyio.run(CudaCi.publish, module, dag.directory()))
    second = render(anyio.run(CudaCi.publish, module, dag.directory()))
    assert len(invocations(first)) == 1 and invocations(first) != invocations(second)
    released = _release(module, dry_run=True)
    assert invocations(released) == {INVOCATION}, "publish and both index services are keyed to the call"
    services = [c for c in walk(released) if c.name == "asService"]
    assert len(services) == 2
    built = render(module.build_graph(["--tag=v13.1.0"], JOBS, GATE))
    assert not invocations(built), "builds stay cacheable: the same commit gives the same files"


def test_publish_returns_the_release_folder(module: CudaCi) -> None:
    published = anyio.run(CudaCi.publish, module, dag.directory(), "github")
    assert isinstance(published, dagger.Directory)
    chain = render(published)
    assert chain[-1].name == "directory" and chain[-1].args["path"] == "/release"
    assert [
        "/opt/cuda-ci/bin/cuda-ci",
        "publish",
        "--release-dir",
        "/release",
        "--target",
        "github",
        "--repo",
        "/src",
    ] in execs(chain)


def test_the_gpu_job_uses_the_requested_python_and_names_its_wheels(module: CudaCi) -> None:
    chain = render(module.test_container("cuda-pathfinder", "3.11", gpu=True))
    argvs = execs(chain)
    assert ["uv", "venv", "--python", "3.11", "--python-preference", "only-managed", "/venv"] in argvs
    assert ["/venv/bin/python", "-c", "import sys; assert sys.version_info[:2] == (3, 11)"] in argvs
    install = next(a for a in argvs if "--no-index" in a)
    assert install[-1] == "cuda-pathfinder" and "/wheels/siblings" not in install, "no siblings: no sibling folder"
    core = execs(render(module.test_container("cuda-core", "3.13", gpu=True)))
    install = next(a for a in core if "--no-index" in a)
    assert install[-3:] == ["cuda-core", "cuda-pathfinder", "cuda-bindings"]
    assert install[install.index("/wheels/siblings") - 1] == "--find-links"
    assert not [a for a in argvs + core if a[0] in ("sh", "bash") or any("*" in x for x in a if x.startswith("/"))]


@pytest.mark.parametrize(("has_git", "shallow"), [(False, False), (True, True)])
def test_a_source_without_full_history_is_refused_before_any_container(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch, has_git: bool, shallow: bool
) -> None:
    async def exists(self: dagger.Directory, path: str, **_: object) -> bool:
        return {".git": has_git, ".git/shallow": shallow}[path]

    monkeypatch.setattr(dagger.Directory, "exists", exists)
    for function in (CudaCi.preflight, CudaCi.build, CudaCi.release):
        with pytest.raises(
            MissingHistoryError, match=r"remote module call loads a depth-1 tree without tags"
        ) as refused:
            anyio.run(function, module, "v13.1.0")
        assert "dagger -m <module> call --source=<full clone>" in str(refused.value)


def _documented_dagger_calls() -> list[tuple[str, str, list[str]]]:
    """(file, function, flags) of every `dagger call` in the README, docs/, the release guides and the workflows."""
    found = []
    sources = [
        REPO_ROOT / "README.md",
        *(REPO_ROOT / "docs").glob("*.md"),
        *(REPO_ROOT / ".github").glob("*.md"),
        *(REPO_ROOT / ".github/workflows").glob("*.yml"),
    ]
    for path in sources:
        text = path.read_text().replace("\\\n", " ")
        # Workflows build the argument list in a shell array first: `args=(release ...)`, `args+=(...)`.
        for match in re.finditer(r"args=\((\w[\w-]*)([^)]*)\)((?:\n.*args\+=\([^)]*\).*)*)", text):
            flags = re.findall(r"(--[\w-]+)", match.group(2) + match.group(3))
            found.append((path.name, match.group(1), flags))
        for match in re.finditer(r"dagger (?:--progress plain )?call (?:--source=\S+ )?(\w[\w-]*)([^\n`#]*)", text):
            before_export = match.group(2).split(" export ")[0]
            found.append((path.name, match.group(1), re.findall(r"(--[\w-]+)", before_export)))
    return found


def test_documented_dagger_calls_match_the_module() -> None:
    calls = _documented_dagger_calls()
    assert {f for _, f, _ in calls} >= {"release", "publish", "preflight", "test", "lint", "ci"}
    for source, function, flags in calls:
        assert function in FUNCTIONS, f"{source}: `dagger call {function}` is no function of the module"
        parameters = {p.replace("_", "-") for p in inspect.signature(getattr(CudaCi, function)).parameters}
        unknown = {f.removeprefix("--") for f in flags} - parameters
        assert not unknown, f"{source}: `dagger call {function}` has no flag(s) {sorted(unknown)}"
    for path in [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md"), *(REPO_ROOT / ".github").rglob("*.*")]:
        if path.is_file():
            assert not re.search(r"\benv:[A-Z]", path.read_text()), f"{path.name}: secrets are env://NAME in v0.21"

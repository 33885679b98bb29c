"""The Dagger module as the engine would install, load and run it, as closely as this machine allows.

No engine runs here. What does run, for real:
- the install: a fresh environment made by ``uv sync --no-dev --frozen`` of a copy of ``dagger/``
  with the SDK vendored in ``sdk/``, as Dagger's Python runtime does (it runs ``uv lock`` first);
- the load and registration: ``dagger.mod``'s entry point and ``Module._typedefs()`` in that
  environment, every function's type definition captured as the engine would receive it;
- the embedded index service: pypiserver with the service's exact arguments, in a temporary root
  laid out as the service container is, answering on its port.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cuda_ci.executors.dagger_parts import CUDA_CI, PYPISERVER_ARGS, SOURCE_IGNORE
from cuda_ci.main import CudaCi
from dagger import dag
from tests.dagger_render import Call, execs, offline_plan, render, walk
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.e2e
VENV_BIN = Path(sys.executable).parent
# What the runtime sets (sdk/python/runtime: WithSource) for the module named "cuda-ci".
RUNTIME_ENV = {"DAGGER_MODULE": "cuda-ci", "DAGGER_DEFAULT_PYTHON_PACKAGE": "cuda_ci", "DAGGER_MAIN_OBJECT": "CudaCi"}
NEVER_CACHED = {"preflight", "publish", "release"}
TAGS = {"cuda-pathfinder": "cuda-pathfinder-v1.3.0", "cuda-bindings": "v13.1.0", "cuda-core": "cuda-core-v0.3.0"}


@pytest.fixture(scope="module")
def runtime_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's source installed as the runtime installs it; its interpreter."""
    sdk = REPO_ROOT / "dagger" / "sdk"
    if not (sdk / "pyproject.toml").is_file():
        pytest.fail("dagger/sdk is missing: `python3 .ci/dagger_sdk.py` vendors it (bash .ci/setup does)")
    work = tmp_path_factory.mktemp("dagger-runtime")
    source = work / "src"
    shutil.copytree(
        REPO_ROOT / "dagger", source, ignore=shutil.ignore_patterns(".venv", "__pycache__", "*.egg-info", "build")
    )
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(work / "venv")}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [str(VENV_BIN / "uv"), "sync", "--no-dev", "--frozen"], cwd=source, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "venv" / "bin" / "python"


@pytest.fixture(scope="module")
def registered(runtime_python: Path) -> dict[str, Any]:
    """The main object's type definition, as the module registers it."""
    env = {**os.environ, **RUNTIME_ENV, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [str(runtime_python), "-m", "tests.dagger_register"], env=env, capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    module = json.loads(result.stdout)
    objects = [c["args"]["object"] for c in module if c["call"] == "withObject"]
    (main,) = [o for o in objects if any(c["call"] == "withObject" and c["args"]["name"] == "CudaCi" for c in o)]
    return {"functions": _functions(main), "constructor": _constructor(main)}


def _type(chain: list[dict[str, Any]]) -> dict[str, Any]:
    kind = {"optional": False}
    for call in chain:
        if call["call"] == "withKind":
            kind["kind"] = call["args"]["kind"]
        elif call["call"] == "withObject":
            kind["kind"] = call["args"]["name"]
        elif call["call"] == "withOptional":
            kind["optional"] = call["args"]["optional"]
        elif call["call"] == "withListOf":
            kind["kind"], kind["of"] = "LIST_KIND", _type(call["args"]["elementType"])["kind"]
    return kind


def _function(chain: list[dict[str, Any]]) -> dict[str, Any]:
    head = chain[0]
    described: dict[str, Any] = {"returns": _type(head["args"]["returnType"])["kind"], "cache": None, "args": {}}
    for call in chain[1:]:
        if call["call"] == "withCachePolicy":
            described["cache"] = call["args"]["policy"]
        elif call["call"] == "withArg":
            args = call["args"]
            described["args"][args["name"]] = {**_type(args["typeDef"]), **{k: v for k, v in args.items() if k in (
                "defaultValue", "defaultPath", "ignore")}}  # fmt: skip
        elif call["call"] == "withDescription":
            described["doc"] = call["args"]["description"]
    described["name"] = head["args"]["name"]
    return described


def _functions(main: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = [_function(c["args"]["function"]) for c in main if c["call"] == "withFunction"]
    return {f["name"]: f for f in found}


def _constructor(main: list[dict[str, Any]]) -> dict[str, Any]:
    (chain,) = [c["args"]["function"] for c in main if c["call"] == "withConstructor"]
    return _function(chain)


def test_the_runtime_environment_holds_the_engines_sdk_and_the_cli(runtime_python: Path) -> None:
    probe = "import dagger.mod.cli, importlib.metadata as m; print(m.version('dagger-io'), dagger.__file__)"
    result = subprocess.run([str(runtime_python), "-c", probe], capture_output=True, text=True, check=True)
    version, location = result.stdout.split()
    assert version == json.loads((REPO_ROOT / "dagger.json").read_text())["engineVersion"].removeprefix("v")
    assert "/sdk/src/dagger/" in location, "dagger-io comes from the vendored sdk/, as in the engine"
    assert (runtime_python.parent / "cuda-ci").is_file()


def test_every_function_registers_with_its_types_defaults_and_cache_policy(registered: dict[str, Any]) -> None:
    functions = registered["functions"]
    assert sorted(functions) == [
        "build", "ci", "docs", "lint", "plan", "preflight", "publish", "release", "test", "validate", "wheels",
    ]  # fmt: skip
    for name, function in functions.items():
        assert function["cache"] == ("Never" if name in NEVER_CACHED else None), name
        assert function.get("doc"), f"{name} has a description"
    returns = {name: f["returns"] for name, f in functions.items()}
    assert returns == {
        "build": "Directory", "validate": "Directory", "docs": "Directory", "publish": "Directory",
        "release": "Directory", "preflight": "STRING_KIND", "lint": "STRING_KIND", "test": "STRING_KIND",
        "ci": "STRING_KIND", "plan": "STRING_KIND", "wheels": "Directory",
    }  # fmt: skip
    release = functions["release"]["args"]
    assert release["tag"] == {"kind": "STRING_KIND", "optional": True, "defaultValue": "null", "defaultPath": None}
    assert release["dry_run"]["kind"] == "BOOLEAN_KIND" and release["dry_run"]["defaultValue"] == "false"
    assert release["github_token"]["kind"] == "Secret" and release["github_token"]["optional"]
    assert release["extra_dist"]["kind"] == "Directory" and release["extra_dist"]["optional"]
    assert release["github_repository"]["defaultValue"] == '"NVIDIA/cuda-python"'
    test = functions["test"]["args"]
    assert test["component"] == {"kind": "STRING_KIND", "optional": False, "defaultPath": None}
    assert test["python"]["defaultValue"] == '"3.12"'
    assert functions["publish"]["args"]["release"]["kind"] == "Directory"
    plan = functions["plan"]["args"]
    assert set(plan) == {"tag", "component", "snapshot", "dry_run", "rehearse", "ref", "no_publish", "extra_dist",
                         "prebuilt", "pull_request_base"}  # fmt: skip
    assert plan["extra_dist"]["kind"] == "BOOLEAN_KIND", "plan only asks whether other wheels will join validate"
    # The fan-out: one platform's wheels, and a release taking such folders with their jobs' reports.
    wheels = functions["wheels"]["args"]
    assert set(wheels) == {"tag", "component", "snapshot", "rehearse", "ref", "platform", "identifiers", "keep_failed"}
    for function in (wheels, release):  # what a workflow job asks for `cuda-ci report` to show a failed run
        assert function["keep_failed"] == {
            "kind": "BOOLEAN_KIND", "optional": False, "defaultValue": "false", "defaultPath": None
        }, function["keep_failed"]
    assert wheels["platform"]["defaultValue"] == '"linux/amd64"'
    assert wheels["identifiers"]["kind"] == "LIST_KIND" and wheels["identifiers"]["of"] == "STRING_KIND"
    assert release["prebuilt"]["kind"] == "LIST_KIND" and release["prebuilt"]["of"] == "Directory"
    assert wheels["identifiers"]["optional"] and release["prebuilt"]["optional"]
    assert release["wheel_reports"]["kind"] == "File" and release["wheel_reports"]["optional"]


def test_the_constructor_loads_the_repository_with_its_history(registered: dict[str, Any]) -> None:
    source = registered["constructor"]["args"]["source"]
    assert source["kind"] == "Directory" and source["defaultPath"] == "/"
    assert source["ignore"] == SOURCE_IGNORE
    assert not [p for p in source["ignore"] if ".git" in p], "setuptools-scm needs .git"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _on_host(argv: list[str], root: Path, port: int) -> list[str]:
    """A container's argv for this machine: cuda-ci's tools from this environment, absolute paths
    under ``root``, the service port free here, loopback only."""
    mapped = []
    for arg in argv:
        if arg.startswith("/opt/cuda-ci/bin/"):
            mapped.append(str(VENV_BIN / Path(arg).name))
        elif arg.startswith("/"):
            mapped.append(f"{root}{arg}")
        else:
            mapped.append({"0.0.0.0": "127.0.0.1", "8080": str(port)}.get(arg, arg))
    return mapped


def _service_steps(service: list[Call]) -> tuple[list[list[str]], list[str]]:
    """The execs the service's container runs after cuda-ci's install, and the service's own argv."""
    (as_service,) = [c for c in service if c.name == "asService"]
    container = render_prefix(service)
    last_setup = max(i for i, c in enumerate(container) if c.name == "withWorkdir")
    steps = [c.args["args"] for c in container[last_setup:] if c.name == "withExec"]
    return steps, as_service.args["args"]


def render_prefix(chain: list[Call]) -> list[Call]:
    return chain[: next(i for i, c in enumerate(chain) if c.name == "asService")]


@pytest.fixture
def index_service(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    service = render(CudaCi(source=dag.directory())._index_service("testpypi", "invocation"))  # type: ignore[call-arg]
    steps, argv = _service_steps(service)
    assert argv == PYPISERVER_ARGS
    root = tmp_path / "root"
    root.mkdir()
    port = _free_port()
    for step in steps:
        subprocess.run(_on_host(step, root, port), check=True)
    log = (tmp_path / "pypiserver.log").open("wb")
    process = subprocess.Popen(_on_host(argv, root, port), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_the_dry_run_index_service_starts_and_answers(index_service: tuple[subprocess.Popen[bytes], int]) -> None:
    process, port = index_service
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"pypiserver exited with {process.returncode} (see its log)"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/", timeout=2) as response:
                assert response.status == 200
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail("pypiserver did not answer within 30 s")


def test_every_cuda_ci_exec_is_accepted_by_the_host_cli() -> None:
    module = CudaCi(source=dag.directory())  # type: ignore[call-arg]
    chains = [render(c) for c in module.ci_jobs(None).values()]
    chains.append(render(module.test_container("cuda-core", "3.11", gpu=True)))
    chains.append(render(module.plan_container(["--tag=v13.1.0", "--dry-run"])))
    chains.append(render(module.single_node(["validate"], dag.directory(), dag.directory())))
    chains.append(render(module.single_node(["docs"], dag.directory())))
    for dry_run in (True, False):  # every node of every unit's release plan, as the release function runs it
        for unit, tag in TAGS.items():
            plan = offline_plan(unit, tag, dry_run=dry_run, extra_dist=True)
            made = module.plan_graph(plan, dag.directory(), {}, "o/r", "i")
            chains.append(render(made[plan.nodes[-1].id]))
    argvs = [a for chain in chains for a in execs(chain) if a[0] == CUDA_CI]
    commands = {a[1] for a in argvs}
    assert commands >= {"lint", "test", "plan", "preflight", "build", "validate", "docs", "record-docs",
                        "publish"}  # fmt: skip
    for argv in argvs:
        _parse(argv)
    shells = [
        c for chain in chains for c in walk(chain) if c.name == "withExec" and c.args["args"][0] in ("sh", "bash")
    ]
    assert not shells, "argv lists only: no shell, so no glob left unexpanded"


def _parse(argv: list[str]) -> None:
    from cuda_ci.cli.app import build_parser

    try:
        build_parser().parse_args(argv[1:])
    except SystemExit as exit_:
        pytest.fail(f"the host CLI refuses {argv}: exit {exit_.code}")

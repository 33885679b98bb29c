"""The Dagger layer, inspected offline: the SDK builds lazy call chains without an engine.

Nothing here runs Dagger; these tests prove what the graph would ask the engine to do. Every graph
is derived from a release plan (``cuda_ci.plan.release``), decided here offline (``offline_plan``), and the
host executor (``cuda_ci.executors.host``) is held to run the very same nodes.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import re
import threading
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import dagger.mod
import gql
import pytest
from dagger._exceptions import QueryErrorValue

import dagger
from cuda_ci.build.wheel_jobs import linux_wheel_jobs, tooling_image
from cuda_ci.cli.app import build_parser
from cuda_ci.cli.flags import HANDOFF
from cuda_ci.executors import host as hostrun
from cuda_ci.executors.dagger_parts import (
    CUDA_CI,
    CUDA_IMAGE,
    NODE_PATHS,
    TOOL_PYTHON,
    TOOLING_IMAGE,
    MissingHistoryError,
    python_path,
)
from cuda_ci.infra.components import get_unit, unit_names
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.settings import Settings
from cuda_ci.main import NODE_OUTPUT, CiJobsFailed, CudaCi
from cuda_ci.plan.release import (
    TOOL_PYTHON_VERSION,
    WHEEL_GUARD,
    Mode,
    Node,
    ReleasePlan,
    fill,
    installed_test_steps,
)
from dagger import dag
from tests.dagger_render import (
    Call,
    chains,
    contains_chain,
    derives_from,
    execs,
    offline_plan,
    own_exec,
    printing_plans,
    render,
    walk,
    wheel_jobs,
)
from tests.helpers import REPO_ROOT

FUNCTIONS = ["build", "ci", "docs", "lint", "plan", "preflight", "publish", "release", "test", "validate", "wheels"]
JOBS = linux_wheel_jobs(REPO_ROOT / "cuda_bindings")
TAGS = {"cuda-pathfinder": "cuda-pathfinder-v1.3.0", "cuda-bindings": "v13.1.0", "cuda-core": "cuda-core-v0.3.0"}
TOKENS = {
    "GITHUB_TOKEN": dag.set_secret("gh", "ghs_secret_value_for_graph_tests"),
    "CUDA_CI_TESTPYPI_TOKEN": dag.set_secret("tp", "pypi-testpypi-secret-value"),
    "CUDA_CI_PYPI_TOKEN": dag.set_secret("pp", "pypi-pypi-secret-value"),
}
PLAINTEXTS = ["ghs_secret_value_for_graph_tests", "pypi-testpypi-secret-value", "pypi-pypi-secret-value"]
INVOCATION = "0123456789abcdef"
MODULE = CudaCi(source=dag.directory())  # type: ignore[call-arg]


@pytest.fixture
def module() -> CudaCi:
    return CudaCi(source=dag.directory())  # type: ignore[call-arg]


# --- plans and their graphs, made once per test session -------------------------------------------
def _plan(
    unit_name: str,
    tag: str | None,
    mode: Mode = "release",
    dry_run: bool = False,
    no_publish: bool = False,
    ref: str | None = None,
    extra_dist: bool = False,
) -> ReleasePlan:
    """The Dagger runner's plan for this checkout, offline: cibuildwheel's Linux jobs for the unit's
    platform component (``wheelplan.linux_wheel_jobs``) as ``plan.WheelJob``s, a fake commit."""
    return offline_plan(unit_name, tag, mode, dry_run=dry_run, no_publish=no_publish, ref=ref, extra_dist=extra_dist)


@dataclass(frozen=True)
class Run:
    """One run the tests derive a plan, and its Dagger graph, for."""

    unit: str = "cuda-bindings"
    mode: Mode = "release"
    dry_run: bool = False
    no_publish: bool = False
    ref: str | None = None


RELEASE, DRY_RUN, NO_PUBLISH = Run(), Run(dry_run=True), Run(no_publish=True)


@functools.cache
def _graph(run: Run) -> tuple[ReleasePlan, dict[str, dagger.Directory]]:
    """The run's plan and what each of its nodes made in the Dagger graph, by node id."""
    tag = None if run.mode == "snapshot" else TAGS[run.unit]
    plan = _plan(run.unit, tag, run.mode, dry_run=run.dry_run, no_publish=run.no_publish, ref=run.ref)
    return plan, MODULE.plan_graph(plan, None, TOKENS, "NVIDIA/cuda-python", INVOCATION)


@functools.cache
def _node_chain(run: Run, node_id: str) -> list[Call]:
    """The chain of the container that runs one node, ending in the folder it made."""
    return render(_graph(run)[1][node_id])


def _release(run: Run = RELEASE) -> list[Call]:
    """The whole release, as the release function returns it: what the plan's last node made."""
    return _node_chain(run, _graph(run)[0].nodes[-1].id)


def _images(chain: list[Call]) -> set[str]:
    return {c.args["address"] for c in walk(chain) if c.name == "from"}


def _bases(chain: list[Call]) -> set[tuple[str | None, str]]:
    """(platform, image) of every container the chain starts, nested ones included."""
    return {(c[0].args.get("platform"), c[1].args["address"]) for c in chains(chain) if c[0].name == "container"}


def _node_execs(chain: list[Call]) -> dict[str, list[list[str]]]:
    """Every distinct cuda-ci argv in the chain, by the plan node it runs as (``--node=ID``)."""
    found: dict[str, list[list[str]]] = {}
    for argv in execs(chain):
        node = _flag(argv, "--node")
        if argv[0] == CUDA_CI and node is not None and argv not in found.setdefault(node, []):
            found[node].append(argv)
    return found


def _flag(argv: Sequence[str], flag: str) -> str | None:
    """The value of ``--flag=value`` in an argv (how the plan writes its hand-off flags)."""
    return next((a.split("=", 1)[1] for a in argv if a.startswith(f"{flag}=")), None)


def _top(chain: list[Call], name: str) -> list[Call]:
    """The chain's own calls of that name (not those of the chains it reads)."""
    return [c for c in chain if c.name == name]


def _mounted(chain: list[Call], path: str) -> list[Call]:
    (mount,) = [c for c in _top(chain, "withDirectory") if c.args["path"] == path]
    source: list[Call] = mount.args["source"]
    return source


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
    assert {".venv", ".release", "cuda_*/**/dist", "cuda_*/**/*.pyd", "dagger/sdk"} <= set(ignore.patterns)
    # setuptools-scm needs the history: nothing may exclude .git, and "!" re-includes only what was excluded.
    assert not [p for p in ignore.patterns if ".git" in p], ignore.patterns


def test_every_image_is_pinned_by_digest_and_the_tooling_pin_is_cibuildwheels(module: CudaCi) -> None:
    chains_ = [
        _release(),
        _release(Run("cuda-core")),
        render(module.test_container("cuda-core", "3.12", gpu=True)),
        render(module.lint_container()),
        render(module.plan_container(["--tag=v13.1.0"])),
    ]
    images = set().union(*(_images(c) for c in chains_))
    assert images, "the graph starts from images"
    assert all("@sha256:" in image for image in images), images
    assert tooling_image() == TOOLING_IMAGE, "keep TOOLING_IMAGE equal to cibuildwheel's pinned manylinux_2_28"
    assert CUDA_IMAGE in images
    # Every container names its platform: the manylinux images are single-architecture.
    bases = set().union(*(_bases(c) for c in chains_))
    expected = {(j.platform, j.image) for j in JOBS} | {("linux/amd64", TOOLING_IMAGE), ("linux/amd64", CUDA_IMAGE)}
    assert bases == expected


def test_wheel_builds_cover_exactly_cibuildwheels_identifiers() -> None:
    plan, _ = _graph(RELEASE)
    wheels = plan.of_kind("wheel")
    assert [(w.identifier, w.platform, w.image, w.python) for w in wheels] == [
        (j.identifier, j.platform, j.image, str(j.python)) for j in JOBS
    ]
    for job in JOBS:
        chain = _node_chain(RELEASE, f"wheel:{job.identifier}")
        assert chain[0].args == {"platform": job.platform} and chain[1].args == {"address": job.image}
        python = str(job.python)
        assert not [a for a in execs(chain) if a[:3] == [python, "-m", "pip"]], "nothing unpinned is installed"
        assert own_exec(chain) == [CUDA_CI, "build", "--tag=v13.1.0", "--component=cuda-bindings", "--wheels-only",
                                   f"--build-python={python}", "--preflight-result=/preflight/preflight.json",
                                   "--repo", "/src", "--out", "/out",
                                   f"--node=wheel:{job.identifier}"]  # fmt: skip
        assert chain[-1].name == "directory" and chain[-1].args["path"] == NODE_OUTPUT["wheel"]
    per_job = [a for a in execs(_release()) if "--wheels-only" in a]
    assert sorted({_flag(a, "--build-python") for a in per_job}) == sorted({str(j.python) for j in JOBS})
    # upstream's selection: CPython 3.10-3.15 and free-threaded 3.14t and 3.15t, two arches
    assert len({tuple(a) for a in per_job}) == len(JOBS) == 16
    pythons = {j.identifier.split("-")[0] for j in JOBS}
    assert pythons == {"cp310", "cp311", "cp312", "cp313", "cp314", "cp314t", "cp315", "cp315t"}
    assert {j.arch for j in JOBS} == {"x86_64", "aarch64"}
    handoff = ["--built-by=dagger", "--prebuilt-wheels=/prebuilt", "--preflight-result=/preflight/preflight.json"]
    once = ["--tag=v13.1.0", "--component=cuda-bindings", *handoff, "--repo", "/src", "--out=/release", "--node=build"]
    assert [CUDA_CI, "build", *once] in execs(_release())


def test_compiled_cuda_core_has_wheel_jobs_for_the_same_selection() -> None:
    core_jobs = linux_wheel_jobs(REPO_ROOT / "cuda_core")
    assert [j.identifier for j in core_jobs] == [j.identifier for j in JOBS]
    assert [j.identifier for j in wheel_jobs("cuda-core")] == [j.identifier for j in core_jobs]
    wheel_builds = {tuple(a) for a in execs(_release(Run("cuda-core"))) if "--wheels-only" in a}
    assert len(wheel_builds) == 16 and all("--tag=cuda-core-v0.3.0" in a for a in wheel_builds)
    pythons = {_flag(a, "--build-python") for a in wheel_builds}
    assert {"/opt/python/cp314-cp314t/bin/python", "/opt/python/cp315-cp315t/bin/python"} <= pythons


def test_pure_cuda_pathfinder_builds_once_without_wheel_jobs() -> None:
    plan, _ = _graph(Run("cuda-pathfinder"))
    assert not plan.of_kind("wheel")
    chain = _release(Run("cuda-pathfinder"))
    assert not [a for a in execs(chain) if "--wheels-only" in a or a[1:2] == ["smoke"]]
    build = _node_chain(Run("cuda-pathfinder"), "build")
    assert "--prebuilt-wheels=/prebuilt" not in own_exec(build)
    assert not [c for c in _top(build, "withDirectory") if c.args["path"] == "/prebuilt"]


def test_nodes_hand_the_same_directory_along() -> None:
    """Each node reads the Directory the nodes it needs made: one graph, one build, what was validated is published."""
    plan, made = _graph(RELEASE)
    chain = functools.partial(_node_chain, RELEASE)
    build = chain("build")
    assert _mounted(build, "/preflight") == chain("preflight"), "build reads preflight's folder, as it made it"
    assert chain("preflight")[-1].args["path"] == NODE_OUTPUT["preflight"] == "/preflight"
    prebuilt = _mounted(build, "/prebuilt")
    for wheel in plan.of_kind("wheel"):
        assert contains_chain(prebuilt, chain(wheel.id)), f"{wheel.id}'s wheel is in /prebuilt"
    for node_id in ("validate", "docs"):
        assert _mounted(chain(node_id), "/release") == build, f"{node_id} reads build's Directory"
    record = _mounted(chain("record-docs"), "/release")
    assert record[: len(chain("validate"))] == chain("validate"), "record-docs reads validate's folder"
    assert derives_from(record, chain("docs")), "with what docs made laid over it"
    previous = "record-docs"
    for publish in plan.of_kind("publish"):
        assert _mounted(chain(publish.id), "/release") == chain(previous), f"{publish.id} reads {previous}'s"
        previous = publish.id
    released = _release()
    assert released == chain(plan.nodes[-1].id) and set(made) == {n.id for n in plan.nodes}
    builds = {tuple(a) for a in execs(released) if a[:2] == [CUDA_CI, "build"] and "--wheels-only" not in a}
    # The same node may appear under several consumers; the engine runs it once. One build of the sdists and manifest.
    assert len(builds) == 1
    assert not any(c.name == "host" for c in walk(released)), "no dag.host() inside functions"
    assert not any(c.name in ("http", "git") and c.type_name == "Query" for c in walk(released)), "no re-download"


def _cuda_ci_argvs(chain: list[Call]) -> list[list[str]]:
    return [a[1:] for a in execs(chain) if a and a[0] == CUDA_CI]


def _standalone_chains(module: CudaCi, dry_run: bool) -> list[list[Call]]:
    """The functions that run nodes outside a release: test, validate, docs, publish, plan."""
    published = anyio.run(CudaCi.publish, module, dag.directory(), "all", dry_run)
    return [
        render(module.test_container("cuda-core", "3.13", gpu=False)),
        render(module.single_node(["validate"], dag.directory(), dag.directory())),
        render(module.single_node(["docs"], dag.directory())),
        render(published),
        render(module.plan_container(["--tag=v13.1.0", *(["--dry-run"] if dry_run else [])])),
    ]


@pytest.mark.parametrize("dry_run", [False, True])
def test_every_cuda_ci_argv_the_module_runs_is_one_the_cli_parses(module: CudaCi, dry_run: bool) -> None:
    """The Dagger → CLI hand-off is the CLI's flags, nothing else: no CUDA_CI_* variable carries a setting."""
    chain = _release(Run(dry_run=dry_run))
    argvs = _cuda_ci_argvs(chain) + [a for c in _standalone_chains(module, dry_run) for a in _cuda_ci_argvs(c)]
    assert {a[0] for a in argvs} >= {"preflight", "build", "validate", "docs", "record-docs", "publish", "test",
                                     "plan"}  # fmt: skip
    for argv in argvs:
        build_parser().parse_args(argv)  # exits on an unknown flag
    handed = {c.args["name"] for c in walk(chain) if c.name == "withEnvVariable"}
    assert handed <= {"GITHUB_REPOSITORY", "CUDA_CI_INVOCATION", "CUDA_CI_INDEX_NAME", "UV_PYTHON_INSTALL_DIR"}, handed
    builds = [a for a in argvs if a[0] == "build" and "--wheels-only" not in a]
    # preflight's result reaches build as the file preflight wrote (--out), in the folder it handed on
    assert {(_flag(a, "--preflight-result"), _flag(a, "--built-by")) for a in builds} == {
        (f"{NODE_OUTPUT['preflight']}/preflight.json", "dagger")
    }
    assert {_flag(a, "--out") for a in argvs if a[0] == "preflight"} == {NODE_PATHS["preflight"]}
    assert not [a for a in argvs if _flag(a, "--ci-gate") or _flag(a, "--ci-run-url")], "no gate in argv any more"
    publishes = {_flag(a, "--target"): a for a in argvs if a[0] == "publish" and _flag(a, "--node")}
    indexes = {t: [x for x in a if x.startswith("--dry-run-index")] for t, a in publishes.items()}
    assert indexes == {
        "github": [],
        "testpypi": ["--dry-run-index=testpypi=http://testpypi:8080"] if dry_run else [],
        "pypi": ["--dry-run-index=pypi=http://pypi:8080"] if dry_run else [],
        "finalize": [],
    }
    wheel_nodes = [a for a in argvs if "--wheels-only" in a]
    assert wheel_nodes and all(_flag(a, "--build-python") for a in wheel_nodes), "each import-tests its own"


def test_wheels_from_another_platform_join_validate_only() -> None:
    plan = _plan("cuda-bindings", "v13.1.0", no_publish=True, extra_dist=True)
    extra = dag.directory().with_new_directory("windows-wheels")
    made = MODULE.plan_graph(plan, extra, {}, "NVIDIA/cuda-python", INVOCATION)
    readers = [n.id for n in plan.nodes if _mounted_paths(render(made[n.id])) & {"/extra"}]
    assert readers == ["validate"]
    validate = render(made["validate"])
    assert _mounted(validate, "/extra") == render(extra)
    assert own_exec(validate)[1:] == ["validate", "--release-dir", "/release", "--repo", "/src",
                                      "--extra-dist", "/extra", "--node=validate"]  # fmt: skip


def _mounted_paths(chain: list[Call]) -> set[str]:
    return {c.args["path"] for c in _top(chain, "withDirectory")}


def test_every_python_is_import_tested_in_its_own_wheel_node_and_image() -> None:
    """No later node installs another interpreter's wheel (the folder's siblings are the tool
    interpreter's): each wheel node builds, repairs and import-tests its identifier in its image."""
    assert python_path(TOOL_PYTHON_VERSION) == TOOL_PYTHON, "the tooling interpreter is named once"
    assert python_path("3.15t") == "/opt/python/cp315-cp315t/bin/python", "manylinux's free-threaded prefix"
    plan, _ = _graph(NO_PUBLISH)
    chain = _release(NO_PUBLISH)
    assert not [a for a in execs(chain) if a[1:2] == ["smoke"]] and plan.nodes[-1].id == "record-docs"
    for wheel in plan.of_kind("wheel"):
        run = _node_chain(NO_PUBLISH, wheel.id)
        assert run[1].args["address"] == wheel.image and _flag(own_exec(run), "--build-python") == wheel.python
        assert own_exec(run) in execs(chain), "the returned folder depends on every wheel node: none is skipped"
    assert {str(j.python) for j in JOBS} == {n.python for n in plan.of_kind("wheel")}


def _secrets_by_node(unit: str, dry_run: bool) -> dict[str, set[str]]:
    plan, _ = _graph(Run(unit, dry_run=dry_run))
    found = {}
    for node in plan.nodes:
        chain = _node_chain(Run(unit, dry_run=dry_run), node.id)
        found[node.id] = {c.args["name"] for c in _top(chain, "withSecretVariable")}
    return found


def test_tokens_enter_only_as_secrets_and_only_where_needed() -> None:
    by_node = _secrets_by_node("cuda-bindings", False)
    assert {n: s for n, s in by_node.items() if s} == {
        "preflight": {"GITHUB_TOKEN"},
        "publish:github": {"GITHUB_TOKEN"},
        "publish:testpypi": {"GITHUB_TOKEN", "CUDA_CI_TESTPYPI_TOKEN"},
        "publish:pypi": {"GITHUB_TOKEN", "CUDA_CI_PYPI_TOKEN"},
        "publish:finalize": {"GITHUB_TOKEN"},
    }, "builds, checks and docs see no token; each index token only its own upload"
    chain = _release()
    assert {c.args["name"] for c in walk(chain) if c.name == "withSecretVariable"} == set(TOKENS)
    env_names = [c.args["name"] for c in walk(chain) if c.name == "withEnvVariable"]
    assert not [n for n in env_names if "TOKEN" in n or "PASSWORD" in n]
    visible = [c for c in walk(chain) if c.name in ("withExec", "withEnvVariable", "withNewFile", "withLabel")]
    for call in visible:
        assert not any(p in repr(call.args) for p in PLAINTEXTS), call
    for argv in execs(chain):
        assert not [a for a in argv if "TOKEN" in a or "token" in a], argv


def test_dry_run_publishes_to_pypiserver_services() -> None:
    plan, _ = _graph(DRY_RUN)
    bound = {}
    for node in plan.of_kind("publish"):
        bindings = _top(_node_chain(DRY_RUN, node.id), "withServiceBinding")
        assert all(any(x.name == "asService" for x in c.args["service"]) for c in bindings)
        bound[node.id] = [c.args["alias"] for c in bindings]
    assert bound == {"publish:github": [], "publish:testpypi": ["testpypi"], "publish:pypi": ["pypi"],
                     "publish:finalize": []}  # fmt: skip
    carried = {n: s for n, s in _secrets_by_node("cuda-bindings", True).items() if s}
    assert carried == {"preflight": {"GITHUB_TOKEN"}}, "a dry-run publishes without tokens (preflight reads GitHub)"
    for node in plan.of_kind("publish"):
        assert "--dry-run" in own_exec(_node_chain(DRY_RUN, node.id))


def test_gpu_adds_the_gpu_call_and_only_then(module: CudaCi) -> None:
    with_gpu = render(module.test_container("cuda-bindings", "3.12", gpu=True))
    without = render(module.test_container("cuda-bindings", "3.12", gpu=False))
    assert any(c.name == "experimentalWithAllGPUs" for c in walk(with_gpu))
    assert not any(c.name == "experimentalWithAllGPUs" for c in walk(without))
    workdirs = [c.args["path"] for c in _top(with_gpu, "withWorkdir")]
    assert workdirs[-2:] == ["/src/cuda_bindings", "/src/cuda_python"], "each component's tests from its own folder"
    steps = installed_test_steps(get_unit("cuda-bindings"), "/venv/bin", "/src", marker="gpu")
    tail = [(c.name, c.args.get("path") or c.args.get("args")) for c in with_gpu[-4:]]
    assert tail == [x for s in steps for x in (("withWorkdir", s.workdir), ("withExec", list(s.argv)))]
    assert [a for a in execs(with_gpu) if a[0] == "/venv/bin/pytest"] == [list(s.argv) for s in steps]
    assert all(s.argv[-3:] == ("-m", "gpu", "tests") and s.argv[1:3] == ("-p", WHEEL_GUARD) for s in steps)
    groups = [a for a in execs(with_gpu) if "--group" in a]
    assert groups[0][-4:] == [
        "--group",
        "/src/cuda_bindings/pyproject.toml:test",
        "--group",
        "/src/cuda_python/pyproject.toml:test",
    ]


@pytest.mark.parametrize(("python", "purelib"), [("3.12", "python3.12"), ("3.14t", "python3.14t")])
def test_the_gpu_job_runs_its_tests_with_the_wheel_guard(module: CudaCi, python: str, purelib: str) -> None:
    chain = render(module.test_container("cuda-core", python, gpu=True))
    (guard,) = [c for c in _top(chain, "withFile") if WHEEL_GUARD in c.args["path"]]
    assert guard.args["path"] == f"/venv/lib/{purelib}/site-packages/{WHEEL_GUARD}.py", "importable by pytest -p"
    assert guard.args["source"][-1].args == {"path": "dagger/src/cuda_ci/ci/wheelguard.py"}
    runs = [(i, c.args["args"][0]) for i, c in enumerate(chain) if c.name == "withExec"]
    last_install = max(i for i, program in runs if program == "uv")
    first_test = min(i for i, program in runs if program == "/venv/bin/pytest")
    assert last_install < chain.index(guard) < first_test, "written after the installs, before the tests"
    assert own_exec(chain)[:3] == ["/venv/bin/pytest", "-p", WHEEL_GUARD]
    assert "--cuda-ci-installed=cuda.core" in own_exec(chain)


def _volumes(chain: list[Call]) -> set[str]:
    return {c.args["cache"][0].args["key"] for c in walk(chain) if c.name == "withMountedCache"}


def test_caches_are_named_volumes_a_release_shares_with_no_untrusted_work(module: CudaCi) -> None:
    mounts = [c for c in walk(_release()) if c.name == "withMountedCache"]
    paths = {c.args["path"] for c in mounts}
    assert "/root/.cache/cuda-ci" in paths, "where cuda-ci keeps tool environments (toolenvs.cache_dir)"
    release = _volumes(_release())
    assert release == {"cuda-ci-release-pip", "cuda-ci-release-uv", "cuda-ci-release-tool-envs"}
    snapshot = _release(Run(mode="snapshot", dry_run=True, no_publish=True))
    untrusted = {"cuda-ci-pip", "cuda-ci-uv", "cuda-ci-tool-envs"}
    assert _volumes(snapshot) == untrusted, "a snapshot builds code no review vouches for"
    ci = [render(job) for job in module.ci_jobs(None).values()]
    gpu = render(module.test_container("cuda-core", "3.12", gpu=True))
    assert set().union(*map(_volumes, [*ci, gpu])) == untrusted


# Flags that exist on one side only, by design (DESIGN.md: host-only and Dagger-only arguments); the
# hand-off flags (cliflags.HANDOFF) are the ones main.py passes itself; the plan's own flags (a node's
# id, docs beside validate, the runner a plan is for) are what the plan writes into its nodes.
HOST_ONLY = {"repo", "debug", "out", "wheels_only", "release_dir", "json", "help"}
PLAN_ONLY = {"node", "beside_validate", "runner"}
# publish's upload and install-back apart: for the release workflow's jobs (one holds the credentials,
# the next runs the installed code); the Dagger module's publish does both.
HOST_ONLY |= {"no_install_back", "install_back_only"}
DAGGER_ONLY = {"python", "gpu", "github_token", "pypi_token", "testpypi_token", "github_repository", "release"}
# What a workflow's release job asks of the module so that `cuda-ci report` can show a failed run.
DAGGER_ONLY |= {"keep_failed"}
# One platform's identifiers: `dagger call wheels` is the CLI's `build --wheels-only` for one platform.
DAGGER_ONLY |= {"platform", "identifiers"}
MIRRORS = {"wheels": "build"}


def _cli_flags(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    handoff = {a.dest for g in sub.choices[command]._action_groups if g.title == HANDOFF for a in g._group_actions}
    return {a.dest for a in sub.choices[command]._actions} - HOST_ONLY - PLAN_ONLY - handoff


@pytest.mark.parametrize("name", FUNCTIONS)
def test_dagger_arguments_mirror_the_cli_flags(name: str) -> None:
    parameters = set(inspect.signature(getattr(CudaCi, name)).parameters) - {"self"} - DAGGER_ONLY
    assert parameters == _cli_flags(MIRRORS.get(name, name))


def test_importing_the_module_needs_no_engine() -> None:
    import subprocess as real_subprocess  # the autouse guard would refuse; importing runs nothing

    del real_subprocess
    assert Path(inspect.getfile(CudaCi)).name == "main.py"
    assert "dagger" not in (REPO_ROOT / "dagger/src/cuda_ci/__init__.py").read_text().split("import")[-1]


# --- the plan, run by both executors (issue 23) ---------------------------------------------------
HOST_PATHS = {
    "repo": "/host/repo",
    "release": "/host/.release/run",
    "preflight": "/host/tmp/preflight.json",
    "out": "/host/out",
    "prebuilt": "/host/prebuilt",
    "extra": "/host/extra",
}
MODES: dict[str, tuple[Mode, bool, str | None]] = {
    "tag-dry-run": ("release", True, None),
    "snapshot": ("snapshot", True, None),
    "rehearsal": ("rehearsal", True, "main"),
}


class Recorder:
    """Stands in for ``hostrun.run_node``: records each node's start and end instead of running it
    (the host runs a wave's nodes on threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.argv: dict[str, list[list[str]]] = {}

    def __call__(self, node_id: str, argv: Sequence[str], settings: Settings, reporter: Reporter) -> None:
        assert isinstance(reporter, Reporter) and isinstance(settings, Settings)
        with self.lock:
            self.events.append(("start", node_id))
            self.argv.setdefault(node_id, []).append(list(argv))
        with self.lock:
            self.events.append(("end", node_id))


def _template(argv: Sequence[str], paths: dict[str, str]) -> list[str]:
    """An executor's argv with its paths put back as the plan's placeholders (whole values only)."""
    by_value = {value: "{" + name + "}" for name, value in paths.items()}
    templated = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if arg in by_value:
            templated.append(by_value[arg])
        elif arg.startswith("--") and sep and value in by_value:
            templated.append(f"{flag}={by_value[value]}")
        else:
            templated.append(arg)
    return templated


def _handoff(plan: ReleasePlan, node: Node) -> list[str]:
    """What only a container adds to a node's command line: a dry-run upload's index service."""
    target = _flag(node.argv, "--target")
    if plan.dry_run and node.kind == "publish" and target in ("testpypi", "pypi"):
        return [f"--dry-run-index={target}=http://{target}:8080"]
    return []


def _host_run(plan: ReleasePlan) -> Recorder:
    recorder = Recorder()
    hostrun.execute_plan(plan, HOST_PATHS, Settings.from_environ({}), Reporter(), runner=recorder)
    return recorder


def _check_host_order(plan: ReleasePlan, events: list[tuple[str, str]]) -> None:
    for node in plan.nodes:
        start = events.index(("start", node.id))
        for need in node.needs:
            assert events.index(("end", need)) < start, f"host: {node.id} started before {need} ended"


def _check_dagger_order(run: Run, runs: dict[str, list[str]]) -> None:
    for node in _graph(run)[0].nodes:
        chain = _node_chain(run, node.id)
        assert own_exec(chain) == runs[node.id], f"{node.id}: made[{node.id!r}] is the container that runs it"
        inside = execs(chain)[:-1]
        for need in node.needs:
            assert runs[need] in inside, f"Dagger: {node.id} does not wait for {need}"


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("unit", list(TAGS))
def test_the_host_and_dagger_run_the_same_plan(unit: str, mode: str) -> None:
    """One plan, two executors: the same nodes, each with the same command line, in an order the plan allows."""
    kind, dry_run, ref = MODES[mode]
    run = Run(unit, kind, dry_run=dry_run, ref=ref)
    plan, made = _graph(run)
    assert ReleasePlan.from_json(json.loads(json.dumps(plan.as_json()))) == plan, "the plan the module reads back"
    recorder = _host_run(plan)
    dagger_runs = _node_execs(_release(run))
    ids = {n.id for n in plan.nodes}
    assert set(recorder.argv) == ids == set(dagger_runs) == set(made), "every node, and only the plan's"
    runs: dict[str, list[str]] = {}
    for node in plan.nodes:
        (host,) = recorder.argv[node.id]  # each node once
        (ran,) = dagger_runs[node.id]  # the same node everywhere in the graph: the engine runs it once
        assert host == fill(node.argv, HOST_PATHS)
        assert ran == [CUDA_CI, *fill(node.argv, NODE_PATHS), *_handoff(plan, node)]
        dagger_argv = ran[1 : len(ran) - len(_handoff(plan, node))]
        assert _template(host, HOST_PATHS) == _template(dagger_argv, NODE_PATHS) == list(node.argv), node.id
        build_parser().parse_args(host)
        runs[node.id] = ran
    _check_host_order(plan, recorder.events)
    _check_dagger_order(run, runs)


# --- the functions: each runs the plan `cuda-ci plan` printed ------------------------------------
def test_release_and_build_run_the_plan_cuda_ci_plan_printed(module: CudaCi, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = printing_plans(monkeypatch, TAGS)
    released = render(anyio.run(functools.partial(CudaCi.release, module, "v13.1.0", dry_run=True)))
    assert asked[-1] == [CUDA_CI, "plan", "--tag=v13.1.0", "--dry-run", "--runner=dagger", "--json", "--repo", "/src"]
    plan = _plan("cuda-bindings", "v13.1.0", dry_run=True)
    expected = _node_execs(_release(DRY_RUN))
    assert _node_execs(released) == expected and set(expected) == {n.id for n in plan.nodes}
    built = render(anyio.run(functools.partial(CudaCi.build, module, component="cuda-core", snapshot=True)))
    assert asked[-1][1:] == ["plan", "--component=cuda-core", "--snapshot", "--dry-run", "--no-publish",
                             "--runner=dagger", "--json", "--repo", "/src"]  # fmt: skip
    assert own_exec(built)[1] == "build" and _flag(own_exec(built), "--node") == "build"
    assert not [a for a in execs(built) if a[1:2] in (["validate"], ["docs"], ["publish"])], "build stops at build"


def test_preflight_runs_the_plans_preflight_node(module: CudaCi, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = printing_plans(monkeypatch, TAGS)
    read: list[list[Call]] = []

    async def contents(self: dagger.File) -> str:
        read.append(render(self))
        return "{}"

    monkeypatch.setattr(dagger.File, "contents", contents)
    token = dag.set_secret("gh2", "ghs_other")
    assert anyio.run(functools.partial(CudaCi.preflight, module, "v13.1.0", github_token=token)) == "{}"
    assert asked[-1][1:] == ["plan", "--tag=v13.1.0", "--no-publish", "--runner=dagger", "--json", "--repo", "/src"]
    (chain,) = read
    assert chain[-1].args == {"path": "preflight.json"} and chain[-2].args == {"path": "/preflight"}
    selected = ["--tag=v13.1.0", "--component=cuda-bindings"]
    out = ["--out=/preflight/preflight.json", "--node=preflight"]
    assert own_exec(chain[:-1])[1:] == ["preflight", *selected, "--json", "--repo", "/src", *out]
    assert {c.args["name"] for c in _top(chain, "withSecretVariable")} == {"GITHUB_TOKEN"}


def test_keep_failed_stops_at_the_first_failed_wave_and_returns_every_failed_nodes_log(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate and docs fail side by side: validate left its own log, docs none (killed); nothing
    after their wave runs, and the folder holds both logs for `cuda-ci report`."""
    printing_plans(monkeypatch, TAGS)
    evaluated: list[str] = []

    async def exit_code(self: dagger.Container) -> int:
        node = _flag(own_exec(render(self)), "--node")
        assert node is not None
        evaluated.append(node)
        return 1 if node in ("validate", "docs") else 0

    async def exists(self: dagger.Directory, path: str, **_: object) -> bool:
        return path in (".git", "logs/validate.json")  # full history; validate's own log

    async def stderr(self: dagger.Container) -> str:
        return "==> stage docs\nerror: docs: sphinx-build was killed\n  (signal 9)\n"

    monkeypatch.setattr(dagger.Container, "exit_code", exit_code)
    monkeypatch.setattr(dagger.Directory, "exists", exists)
    monkeypatch.setattr(dagger.Container, "stderr", stderr)
    call = functools.partial(CudaCi.release, module, "v13.1.0", dry_run=True, keep_failed=True)
    folder = render(anyio.run(call))
    plan = _plan("cuda-bindings", "v13.1.0", dry_run=True)
    wheels = [n.id for n in plan.of_kind("wheel")]
    assert evaluated[0] == "preflight" and sorted(evaluated[1:-3]) == sorted(wheels)
    assert evaluated[-3] == "build" and sorted(evaluated[-2:]) == ["docs", "validate"], "wave by wave, then stop"
    assert not [n for n in evaluated if n.startswith(("smoke", "record-docs", "publish"))]
    added = {c.args["path"]: c for c in _top(folder, "withFile") + _top(folder, "withNewFile")}
    assert {path for path in added if path.startswith("logs/")} == {"logs/validate.json", "logs/docs.json"}
    record = json.loads(added["logs/docs.json"].args["contents"])
    assert record["status"] == "failed" and record["node"] == "docs"
    assert record["errors"] == ["docs (exit code 1): docs: sphinx-build was killed\n(signal 9)"]
    assert {_flag(a, "--node") for a in execs(folder) if a[0] == CUDA_CI} >= {"validate", "build"}, "validate's folder"
    assert not [a for a in execs(folder) if a[1:2] == ["publish"]], "nothing published after a failure"
    expects = [c.args.get("expect") for c in walk(folder) if c.name == "withExec" and c.args["args"][0] == CUDA_CI]
    assert expects and set(expects) == {"ANY"}, "each node's exit code read, never raised"


def test_a_wheel_job_with_keep_failed_returns_the_failed_nodes_folder(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One arm64 wheel node fails (its import test, say): the folder returned is its /out, its own log
    there, and the other platform's nodes never run."""
    printing_plans(monkeypatch, TAGS)
    evaluated: list[str] = []
    plan = _plan("cuda-core", "cuda-core-v0.3.0")
    arm = [n.id for n in plan.of_kind("wheel") if n.platform == "linux/arm64"]

    async def exit_code(self: dagger.Container) -> int:
        node = str(_flag(own_exec(render(self)), "--node"))
        evaluated.append(node)
        return 1 if node == arm[0] else 0

    async def exists(self: dagger.Directory, path: str, **_: object) -> bool:
        return path in (".git", f"logs/{arm[0].replace(':', '-')}.json")

    monkeypatch.setattr(dagger.Container, "exit_code", exit_code)
    monkeypatch.setattr(dagger.Directory, "exists", exists)
    call = functools.partial(CudaCi.wheels, module, "cuda-core-v0.3.0", platform="linux/arm64", keep_failed=True)
    folder = render(anyio.run(call))
    assert evaluated[0] == "preflight" and sorted(evaluated[1:]) == sorted(arm), "one platform's nodes only"
    assert folder[-1].name == "withFile" and folder[-1].args["path"] == f"logs/{arm[0].replace(':', '-')}.json"
    assert _flag(own_exec(folder), "--node") == arm[0] and any(c.args.get("path") == "/out" for c in folder)
    assert {c.args.get("platform") for c in folder if c.name == "container"} == {"linux/arm64"}


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
    argv = next(a for a in reversed(execs(render(container))) if a[0] == CUDA_CI)
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


def _env(chain: Sequence[Call], name: str) -> set[str]:
    return {c.args["value"] for c in chain if c.name == "withEnvVariable" and c.args["name"] == name}


def _invocations(chain: list[Call]) -> set[str]:
    return _env(list(walk(chain)), "CUDA_CI_INVOCATION")


def test_side_effecting_steps_are_never_served_from_a_cache(module: CudaCi) -> None:
    first = render(anyio.run(CudaCi.publish, module, dag.directory()))
    second = render(anyio.run(CudaCi.publish, module, dag.directory()))
    assert len(_invocations(first)) == 1 and _invocations(first) != _invocations(second)
    plan, _ = _graph(DRY_RUN)
    assert _invocations(_release(DRY_RUN)) == {INVOCATION}, "publish and both index services are keyed to the call"
    for node in plan.nodes:
        own = _env(_node_chain(DRY_RUN, node.id), "CUDA_CI_INVOCATION")
        assert own == ({INVOCATION} if node.kind in ("preflight", "publish") else set()), node.id
    services = [c.args["service"] for c in walk(_release(DRY_RUN)) if c.name == "withServiceBinding"]
    names = {name for s in services for name in _env(s, "CUDA_CI_INDEX_NAME")}
    assert names == {"testpypi", "pypi"}, "two services, not one deduplicated"
    assert all(_invocations(s) == {INVOCATION} for s in services), "each starts empty in every call"
    for wheel in plan.of_kind("wheel"):  # after preflight (nothing is built for a refused release)
        assert _invocations(_node_chain(DRY_RUN, wheel.id)) == {INVOCATION}, "they read preflight's result"
    assert not _invocations(render(module.lint_container()))


def test_publish_returns_the_release_folder(module: CudaCi) -> None:
    published = anyio.run(CudaCi.publish, module, dag.directory(), "github")
    assert isinstance(published, dagger.Directory)
    chain = render(published)
    assert chain[-1].name == "directory" and chain[-1].args["path"] == "/release"
    assert own_exec(chain) == [CUDA_CI, "publish", "--release-dir", "/release", "--repo", "/src", "--target=github"]
    every = render(anyio.run(CudaCi.publish, module, dag.directory(), "all", True))
    targets = [_flag(a, "--target") for a in execs(every) if a[1:2] == ["publish"]]
    assert targets == ["github", "testpypi", "pypi", "finalize"], "each target after the one before, on its folder"
    assert _mounted(every, "/release")[-1].args == {"path": "/release"}


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
    assert chain[0].args == {"platform": "linux/amd64"} and chain[1].args == {"address": CUDA_IMAGE}


@pytest.mark.parametrize(("has_git", "shallow"), [(False, False), (True, True)])
def test_a_source_without_full_history_is_refused_before_any_container(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch, has_git: bool, shallow: bool
) -> None:
    async def exists(self: dagger.Directory, path: str, **_: object) -> bool:
        return {".git": has_git, ".git/shallow": shallow}[path]

    async def stdout(self: dagger.Container) -> str:
        raise AssertionError("a container ran")

    monkeypatch.setattr(dagger.Directory, "exists", exists)
    monkeypatch.setattr(dagger.Container, "stdout", stdout)
    for function in (CudaCi.plan, CudaCi.preflight, CudaCi.build, CudaCi.release):
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

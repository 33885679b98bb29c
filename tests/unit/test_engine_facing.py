"""What a real engine on a user's machine meets: an arm64 engine, a pruned cache, a `git worktree`
checkout, refs that look like build folders, a job whose image cannot be pulled."""

from __future__ import annotations

import functools

import anyio
import gql
import pytest

import dagger
from cuda_ci.executors.dagger_nodes import CiJobsFailed
from cuda_ci.executors.dagger_parts import CUDA_IMAGE, SOURCE_IGNORE, TOOLING_IMAGE, MissingHistoryError
from cuda_ci.main import CudaCi
from cuda_ci.plan.release import ReleasePlan
from dagger import dag
from tests.container.execs import exec_error
from tests.container.fsfilter import compile_patterns, excluded
from tests.dagger_render import Call, chains, execs, offline_plan, render


@pytest.fixture
def module() -> CudaCi:
    return CudaCi(source=dag.directory())  # type: ignore[call-arg]


@functools.cache
def _bindings_release() -> tuple[ReleasePlan, list[list[Call]]]:
    """cuda-bindings' dry-run release graph, every node's chain (cibuildwheel's x86_64 and aarch64 jobs)."""
    plan = offline_plan("cuda-bindings", "v13.1.0", dry_run=True)
    module = CudaCi(source=dag.directory())  # type: ignore[call-arg]
    made = module.plan_graph(plan, None, {}, "NVIDIA/cuda-python", "invocation")
    return plan, [render(made[node.id]) for node in plan.nodes]


def _containers(chain: list[Call]) -> list[list[Call]]:
    return [c for c in chains(chain) if c[0].name == "container"]


# --- platforms --------------------------------------------------------------------------------------
def test_aarch64_wheel_jobs_and_the_tooling_name_their_platform() -> None:
    plan, _ = _bindings_release()
    arm = [n for n in plan.of_kind("wheel") if n.identifier and n.identifier.endswith("aarch64")]
    assert arm, "cibuildwheel selects aarch64 identifiers for cuda-bindings"
    assert {n.id for n in arm} == {r["node"] for r in plan.wheel_matrix()["linux/arm64"]}
    chains_by_node = dict(zip((n.id for n in plan.nodes), _bindings_release()[1], strict=True))
    for node in arm:
        chain = chains_by_node[node.id]
        assert chain[0].args == {"platform": "linux/arm64"}, node.id
        assert chain[1].args["address"] == node.image and "_aarch64@sha256:" in str(node.image)
    module = CudaCi(source=dag.directory())  # type: ignore[call-arg]
    tooling = render(module.lint_container())
    assert tooling[0].args == {"platform": "linux/amd64"} and tooling[1].args == {"address": TOOLING_IMAGE}
    assert "_x86_64@sha256:" in TOOLING_IMAGE, "a single-architecture image: its platform is named"


def test_every_container_of_every_graph_names_its_platform(module: CudaCi) -> None:
    _, nodes = _bindings_release()
    graphs = [*nodes, render(module.test_container("cuda-core", "3.12", gpu=True)), render(module.lint_container())]
    graphs.append(render(module._index_service("testpypi", "invocation")))
    started = [c for g in graphs for c in _containers(g)]
    assert started and all("platform" in c[0].args for c in started), "no container is left to the engine's default"
    gpu = _containers(render(module.test_container("cuda-core", "3.12", gpu=True)))[0]
    assert gpu[0].args == {"platform": "linux/amd64"} and gpu[1].args == {"address": CUDA_IMAGE}


# --- no interpreter lives only in a cache volume ------------------------------------------------------
def test_no_interpreter_or_environment_lives_in_a_cache_volume(module: CudaCi) -> None:
    """Cache volumes and layers are pruned apart: what a later layer runs must be in a layer."""
    for chain in (render(module.test_container("cuda-pathfinder", "3.11", gpu=True)), render(module.lint_container())):
        for container in _containers(chain):
            caches = [c.args["path"] for c in container if c.name == "withMountedCache"]
            env = {c.args["name"]: c.args["value"] for c in container if c.name == "withEnvVariable"}
            places = [argv[0] for argv in execs(container) if argv[0].startswith("/")]
            places += [env[k] for k in ("UV_PYTHON_INSTALL_DIR", "VIRTUAL_ENV") if k in env]
            places += [a for argv in execs(container) for a in argv if a in ("/venv", "/opt/cuda-ci")]
            assert caches and places
            inside = [p for p in places for c in caches if p == c or p.startswith(c.rstrip("/") + "/")]
            assert not inside, f"{inside} live in a cache volume"


# --- the module's source ------------------------------------------------------------------------------
def test_the_source_ignores_never_drop_anything_under_git() -> None:
    patterns = compile_patterns(SOURCE_IGNORE)
    refs = [".git/refs/heads/build", ".git/refs/heads/dist", ".git/refs/tags/v1.0.0.so", ".git/worktrees/build/HEAD",
            ".git/logs/refs/heads/build", ".git/refs/heads/__pycache__", ".git/refs/heads/x.egg-info",
            ".git/refs/remotes/origin/.venv", ".git/refs/heads/.release"]  # fmt: skip
    assert [r for r in refs if excluded(r, patterns)] == []
    built = ["cuda_core/build/lib/cuda/core/_x.so", "cuda_core/docs/build/html/index.html", "dist/a.whl", "build/x",
             "cuda_bindings/cuda/bindings/driver.cpython-312-x86_64-linux-gnu.so", ".venv/bin/python",
             "dagger/src/cuda_ci/__pycache__/main.cpython-312.pyc", "cuda_core/cuda_core.egg-info/PKG-INFO",
             "dagger/sdk/pyproject.toml", "tests/unit/__pycache__/x.pyc", "cuda_pathfinder/dist/x.tar.gz"]  # fmt: skip
    assert [b for b in built if not excluded(b, patterns)] == []
    assert not excluded("cuda_core/cuda/core/__init__.py", patterns) and not excluded(".git/HEAD", patterns)


def test_the_old_unanchored_patterns_dropped_refs_named_like_build_folders() -> None:
    """Why the patterns are anchored: `**/build` is BuildKit's "any depth", `.git` included."""
    old = compile_patterns(["**/build", "**/dist", "**/*.so"])
    assert excluded(".git/refs/heads/build", old) and excluded(".git/refs/heads/dist", old)
    assert not excluded("build/x", compile_patterns(["cuda_*/build"])), "a pattern is anchored at the root"


def _fake_source(monkeypatch: pytest.MonkeyPatch, entries: dict[str, str]) -> list[str]:
    """A source with ``entries`` (path -> "dir" | "file:<text>"); returns the containers asked to run."""
    ran: list[str] = []

    async def exists(self: dagger.Directory, path: str, *, expected_type: object = None, **_: object) -> bool:
        kind = entries.get(path)
        if kind is None:
            return False
        if expected_type == dagger.ExistsType.DIRECTORY_TYPE:
            return kind == "dir"
        return True

    async def contents(self: dagger.File) -> str:
        path = render(self)[-1].args["path"]
        return entries[path].removeprefix("file:")

    async def stdout(self: dagger.Container) -> str:
        ran.append(str(execs(render(self))[-1]))
        return "{}"

    monkeypatch.setattr(dagger.Directory, "exists", exists)
    monkeypatch.setattr(dagger.File, "contents", contents)
    monkeypatch.setattr(dagger.Container, "stdout", stdout)
    return ran


def test_a_worktree_checkout_is_refused_before_any_container_naming_the_fix(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = _fake_source(monkeypatch, {".git": "file:gitdir: /home/me/cuda-python/.git/worktrees/fix-build\n"})
    for function in (CudaCi.plan, CudaCi.preflight, CudaCi.build, CudaCi.release):
        with pytest.raises(MissingHistoryError) as refused:
            anyio.run(function, module, "v13.1.0")
        message = str(refused.value)
        assert "`git worktree` checkout" in message and "/home/me/cuda-python/.git/worktrees/fix-build" in message
        assert "run the module from the main clone" in message and "git clone --no-local" in message
    assert ran == []
    _fake_source(monkeypatch, {".git": "dir", ".git/shallow": "file:"})
    with pytest.raises(MissingHistoryError, match="no full git history"):
        anyio.run(CudaCi.plan, module, "v13.1.0")


# --- ci: every job's failure, whatever it is ----------------------------------------------------------
def _pull_error(message: str) -> dagger.QueryError:
    """What the SDK raises when the engine cannot pull an image: a query error, no exec's."""
    from dagger._exceptions import QueryErrorValue

    return dagger.QueryError([QueryErrorValue(message=message)], gql.GraphQLRequest("{ container { id } }"))


def test_ci_reports_a_pull_or_network_error_per_job_beside_the_exec_failures(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def name(container: dagger.Container) -> str:
        argv = execs(render(container))[-1]
        return "lint" if argv[1] == "lint" else argv[3]

    async def stdout(self: dagger.Container) -> str:
        job = name(self)
        if job == "cuda-core":
            raise _pull_error("failed to resolve source metadata for quay.io/pypa/manylinux_2_28_x86_64: 503")
        if job == "cuda-bindings":
            raise ConnectionResetError("connection to the engine reset by peer")
        if job == "lint":
            raise exec_error(["cuda-ci", "lint"], 1, "", "ruff: 2 errors\nerror: lint failed\n", "SUCCESS")
        return f"{job} ok"

    monkeypatch.setattr(dagger.Container, "stdout", stdout)
    with pytest.raises(CiJobsFailed) as failed:
        anyio.run(CudaCi.ci, module, None)
    message = str(failed.value)
    assert message.startswith("3 CI job(s) failed")
    assert "- lint: exit code 1\n    ruff: 2 errors\n    error: lint failed" in message
    assert "- test --component cuda-core: QueryError\n    failed to resolve source metadata for quay.io" in message
    assert "- test --component cuda-bindings: ConnectionResetError\n    connection to the engine reset" in message
    assert "cuda-pathfinder" not in message
    assert set(failed.value.failures) == {"lint", "test --component cuda-core", "test --component cuda-bindings"}

"""The Dagger module's node mapping, besides the object itself: how a plan node's folder is
assembled from what the nodes it needs made, the hand-off flags only a container needs, the GPU
job's container and the CI report. Imported by ``main.py`` only (the CLI never imports dagger)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import anyio

import dagger
from cuda_ci.executors.dagger_parts import CUDA_IMAGE, MissingHistoryError
from cuda_ci.executors.dagger_wheels import Handed
from cuda_ci.executors.runlog import LOGS_DIR, failed_node_record, node_log_name
from cuda_ci.infra.components import dependency_closure, get_unit
from cuda_ci.plan.release import WHEEL_GUARD, Node, ReleasePlan, installed_test_steps
from dagger import dag

# Where each kind of node leaves what it made; every other node leaves the release folder.
NODE_OUTPUT = {"preflight": "/preflight", "wheel": "/out/dist"}
# The folder whose logs/ a node writes (the release folder's, for the others). A failed preflight writes
# none there (its log travels in its result), so its record is made from what it printed.
NODE_ROOT = {"preflight": "/preflight", "wheel": "/out", "build": "/release"}


@dataclass(frozen=True)
class NodeRun:
    """What every node container of one call is made with, besides the nodes before it."""

    plan: ReleasePlan
    extra_dist: dagger.Directory | None
    tokens: dict[str, dagger.Secret | None]
    github_repository: str
    invocation: str
    handed: Handed


NodeExec = Callable[[Node, dict[str, dagger.Directory]], dagger.Container]


@dataclass
class Outcome:
    """What a plan's nodes made, run wave by wave: each node's folder and container; ``failed``, the
    folder of the run so far where a node failed (every failed node's log in it), else None."""

    made: dict[str, dagger.Directory]
    ran: dict[str, dagger.Container]
    failed: dagger.Directory | None = None


async def outcome_of_waves(plan: ReleasePlan, node_exec: NodeExec, only: Collection[str] | None = None) -> Outcome:
    """The plan's nodes (of ``only``, where given) wave by wave, a wave's side by side, each allowed
    to fail; the run ends after the first wave in which one failed (``--keep-failed``: the function
    returns that folder and ``cuda-ci report`` then fails the job)."""
    outcome = Outcome(made={}, ran={})
    for wave in plan.waves():
        nodes = [node for node in wave if only is None or node.id in only]
        ran = {node.id: node_exec(node, outcome.made) for node in nodes}
        codes = await _exit_codes(ran)
        outcome.ran.update(ran)
        for node in nodes:
            outcome.made[node.id] = ran[node.id].directory(NODE_OUTPUT.get(node.kind, "/release"))
        failed = [node for node in nodes if codes[node.id] != 0]
        if failed:
            outcome.failed = await _failed_folder(failed, ran, codes)
            return outcome
    return outcome


def wheel_job_folder(outcome: Outcome, wheel_nodes: Sequence[str]) -> dagger.Directory:
    """A wheel job's folder (``wheels --keep-failed``): its wheels in ``dist/``, each node's log in ``logs/``."""
    folder = dag.directory().with_directory("dist", dag.directory())
    for node_id in wheel_nodes:
        out = outcome.ran[node_id].directory(NODE_ROOT["wheel"])
        folder = folder.with_directory("dist", outcome.made[node_id]).with_directory(LOGS_DIR, out.directory(LOGS_DIR))
    return folder


async def _exit_codes(ran: dict[str, dagger.Container]) -> dict[str, int]:
    """Each container's exit code, the containers run side by side."""
    codes: dict[str, int] = {}

    async def exit_code(node_id: str) -> None:
        codes[node_id] = await ran[node_id].exit_code()

    async with anyio.create_task_group() as group:
        for node_id in ran:
            group.start_soon(exit_code, node_id)
    return codes


async def _failed_folder(
    failed: list[Node], ran: dict[str, dagger.Container], codes: dict[str, int]
) -> dagger.Directory:
    """The first failed node's folder (its log, the earlier nodes' logs, what it made), with each failed
    node's log: its own, or one made from what it printed where it could write none."""
    folder = ran[failed[0].id].directory(NODE_ROOT.get(failed[0].kind, "/release"))
    for node in failed:
        name = f"{LOGS_DIR}/{node_log_name(node.id)}"
        root = ran[node.id].directory(NODE_ROOT.get(node.kind, "/release"))
        if await root.exists(name):
            folder = folder.with_file(name, root.file(name))
        else:
            record = failed_node_record(node.id, codes[node.id], await ran[node.id].stderr())
            folder = folder.with_new_file(name, json.dumps(record, indent=2))
    return folder


def folder_for(node: Node, made: dict[str, dagger.Directory], plan: ReleasePlan | None = None) -> dagger.Directory:
    """The release folder a node reads: its first need's, with what the other needs made beside
    it (docs' pages, each node's log) laid over it."""
    folders = [n for n in node.needs if n in made and n != "preflight" and not n.startswith("wheel:")]
    folder = made[folders[0]]
    for other in folders[1:]:
        source = made[other]
        nodes = {n.id: n for n in plan.nodes} if plan else {}
        outputs = nodes[other].outputs if other in nodes else ()
        for path in (*outputs, f"{LOGS_DIR}/{node_log_name(other)}"):
            if path.endswith((".json", ".log")):
                folder = folder.with_file(path, source.file(path))
            else:
                folder = folder.with_directory(path, source.directory(path))
    return folder


def handoff(node: Node, dry_run: bool) -> list[str]:
    """Hand-off flags that only a container needs: the dry-run's index services."""
    if node.kind == "publish" and dry_run:
        target = node.id.partition(":")[2]
        if target in ("testpypi", "pypi"):
            return [f"--dry-run-index={target}=http://{target}:8080"]
    return []


def gpu_test_container(
    source: dagger.Directory, uv: dagger.File, component: str, python: str, built: dagger.Directory, groups: list[str]
) -> dagger.Container:
    """The wheels a test job built and tested, on a CUDA base image with every GPU attached.

    The interpreter is the ``--python`` the wheels were built for (a uv-managed CPython kept in the
    image's own layer, never only in a cache volume that can be pruned apart from it); wheels are
    named, never globbed. Each component's ``test`` group (and each asked-for group) is installed,
    this run's files and siblings from the job's folders only, then their third-party requirements
    from the index. The tests are the plan's test steps (``cuda_ci.plan.release.installed_test_steps``):
    the pytest console script from each component's folder, the wheel guard stopping a run that
    would import the source tree instead of the installed wheels.
    """
    unit = get_unit(component)
    siblings = dependency_closure(unit)
    find_links = ["--find-links", "/wheels/dist", *(["--find-links", "/wheels/siblings"] if siblings else [])]
    distributions = [*unit.distributions, *(c.distribution for c in siblings)]
    pip = ["uv", "pip", "install", "--python", "/venv/bin/python"]
    major, minor = python.removesuffix("t").split(".")
    container = (
        dag.container(platform=dagger.Platform("linux/amd64"))
        .from_(CUDA_IMAGE)
        .experimental_with_all_gp_us()
        .with_file("/usr/local/bin/uv", uv)
        .with_mounted_cache("/root/.cache/uv", dag.cache_volume("cuda-ci-uv"))
        .with_env_variable("UV_PYTHON_INSTALL_DIR", "/opt/uv-python")
        .with_exec(["uv", "venv", "--python", python, "--python-preference", "only-managed", "/venv"])
        .with_exec(["/venv/bin/python", "-c", f"import sys; assert sys.version_info[:2] == ({major}, {minor})"])
        .with_directory("/wheels", built)
        .with_directory("/src", source)
    )
    for group in ["test", *groups]:
        declared = [("--group", f"/src/{c.dir}/pyproject.toml:{group}") for c in unit.components]
        container = container.with_exec([*pip, *(arg for pair in declared for arg in pair)])
    # Own files and siblings from this job only (their names hold other builds on the index);
    # then the same names again, already satisfied, so only third-party requirements are fetched.
    container = container.with_exec([*pip, "--no-deps", "--no-index", *find_links, *distributions])
    container = container.with_exec([*pip, *distributions])
    purelib = f"/venv/lib/python{major}.{minor}{'t' if python.endswith('t') else ''}/site-packages"
    guard = source.file("dagger/src/cuda_ci/ci/wheelguard.py")
    container = container.with_file(f"{purelib}/{WHEEL_GUARD}.py", guard)
    for step in installed_test_steps(unit, "/venv/bin", "/src", marker="gpu"):
        container = container.with_workdir(step.workdir).with_exec(list(step.argv))
    return container


class CiJobsFailed(Exception):
    """One or more CI jobs failed; the message names each with its last output: an exec's exit code
    and output, or, for an error that is no exec's (an image that cannot be pulled, a network
    error), the error itself."""

    def __init__(self, failures: dict[str, Exception]) -> None:
        lines = [f"{len(failures)} CI job(s) failed (reproduce each with `dagger call <job>`):"]
        for name, error in sorted(failures.items()):
            if isinstance(error, dagger.ExecError):
                lines.append(f"- {name}: exit code {error.exit_code}\n    {_tail(error.stderr or error.stdout)}")
            else:
                lines.append(f"- {name}: {type(error).__name__}\n    {_tail(str(error))}")
        super().__init__("\n".join(lines))
        self.failures = failures


def _tail(output: str, lines: int = 15) -> str:
    return "\n    ".join(output.strip().splitlines()[-lines:])


def with_invocation(container: dagger.Container, invocation: str) -> dagger.Container:
    """Key what follows to this call, so a step that talks to GitHub or an index is never taken from
    the layer cache of an earlier call with the same inputs."""
    return container.with_env_variable("CUDA_CI_INVOCATION", invocation)


# --- the module's source, checked before any container runs -------------------------------------
NO_HISTORY = (
    "the module's source has no full git history (a remote module call loads a depth-1 tree "
    "without tags, so setuptools-scm cannot see the release tag): run the module against a full "
    "local clone, e.g. `git clone https://github.com/NVIDIA/cuda-python && cd cuda-python && "
    "dagger call release ...`, or pass one with `dagger -m <module> call --source=<full clone> ...`"
)


async def require_full_history(source: dagger.Directory) -> None:
    """Refuse a source whose git history no container can read: none, shallow, or a `git worktree`
    checkout, whose `.git` is a file naming a folder of the main clone on the host."""
    if not await source.exists(".git"):
        raise MissingHistoryError(NO_HISTORY)
    if not await source.exists(".git", expected_type=dagger.ExistsType.DIRECTORY_TYPE):
        pointer = (await source.file(".git").contents()).strip()
        raise MissingHistoryError(
            f"the module's source is a `git worktree` checkout: its .git is a file ({pointer}) naming a "
            "folder of the main clone that no container can see, so setuptools-scm finds no history: "
            "run the module from the main clone (`cd <main clone> && dagger call ...`), or from a full "
            "clone of this branch (`git clone --no-local --branch <branch> <main clone> <folder>`), or "
            "pass one with `dagger call --source=<full clone> ...`"
        )
    if await source.exists(".git/shallow"):
        raise MissingHistoryError(NO_HISTORY)

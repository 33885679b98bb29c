"""The Dagger module ``cuda-ci``: the same stage code as the host CLI, run in pinned containers.

Every function is a thin graph over ``cuda-ci <stage>`` commands installed from this module's own
source; no stage logic lives here. The release folder is one ``Directory`` handed from stage to
stage inside one call, so a release builds once and publishes exactly what it validated.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Annotated, TypeVar, cast

import anyio

import dagger
from cuda_ci.executors.dagger_graph import NodeContainers
from cuda_ci.executors.dagger_nodes import (
    NODE_OUTPUT,
    NODE_ROOT,
    CiJobsFailed,
    NodeRun,
    gpu_test_container,
    handoff,
    outcome_of_waves,
    require_full_history,
    wheel_job_folder,
)
from cuda_ci.executors.dagger_parts import (
    CUDA_CI,
    LOCKED_TOOLS,
    NODE_PATHS,
    SOURCE_IGNORE,
    TOOL_PYTHON,
    TOOLING_IMAGE,
    TOOLING_IMAGES,
    CacheTrust,
    cache_volumes,
    new_invocation,
    python_path,
    selection,
    trust_of,
)
from cuda_ci.executors.dagger_wheels import (
    Handed,
    fan_out_flags,
    handed_wheels,
    known_platform,
    merged,
    platform_wheel_nodes,
)
from cuda_ci.infra.components import unit_names
from cuda_ci.infra.toolchain import DEV_REQUIREMENTS, locked_install, source_install
from cuda_ci.plan.ci import ci_nodes, job_name
from cuda_ci.plan.release import Node, ReleasePlan, fill
from dagger import DefaultPath, Doc, Ignore, dag, function, object_type

F = TypeVar("F", bound=Callable[..., object])


def talks_to_the_world(fn: F) -> F:
    """A function that reads or writes GitHub or a package index: never served from Dagger's cache.

    Without a cache policy the engine keeps a function's result for up to 7 days, so a second
    ``publish`` with the same arguments would return the old result without publishing anything.
    """
    # dagger-io 0.21's overloads of `function` omit its `cache` keyword; the runtime accepts it.
    return cast(F, function(fn, cache="never"))  # type: ignore[call-overload]


@object_type
class CudaCi:
    """Build, validate and release the CUDA Python monorepo: one graph per release, CI jobs anyone can rerun."""

    source: Annotated[dagger.Directory, Doc("the monorepo, with .git for setuptools-scm")]

    @classmethod
    def create(
        cls,
        source: Annotated[
            dagger.Directory, Doc("the monorepo checkout (full history)"), DefaultPath("/"), Ignore(SOURCE_IGNORE)
        ],
    ) -> CudaCi:
        """Load the repository once; every function works from it."""
        # object_type is a dataclass_transform on a bound method, which mypy does not follow.
        return cls(source=source)  # type: ignore[call-arg]

    # --- shared setup ----------------------------------------------------------------------
    def _with_cuda_ci(self, container: dagger.Container, trust: CacheTrust = "release") -> dagger.Container:
        """cuda-ci's tools from dagger/uv.lock (hash-checked), cuda-ci from the monorepo at /src; pip and uv
        caches and the kept tool environments (made complete, then renamed into place: safe to share) as
        ``trust``'s volumes."""
        for path, volume in cache_volumes(trust).items():
            container = container.with_mounted_cache(path, dag.cache_volume(volume))
        return (
            container.with_file(LOCKED_TOOLS, self.source.file(DEV_REQUIREMENTS))
            .with_exec([TOOL_PYTHON, "-m", "venv", "/opt/cuda-ci"])
            .with_exec(locked_install("/opt/cuda-ci/bin/pip", LOCKED_TOOLS))
            .with_exec(["git", "config", "--global", "--add", "safe.directory", "*"])
            .with_directory("/src", self.source)
            .with_exec(source_install("/opt/cuda-ci/bin/pip", "/src/dagger"))  # its version: /src's tags
            .with_workdir("/src")
        )

    def _tooling(
        self, platform: str = "linux/amd64", image: str = TOOLING_IMAGE, trust: CacheTrust = "release"
    ) -> dagger.Container:
        """cuda-ci in a pinned image, with ``trust``'s cache volumes; the platform is always named (the
        manylinux images are single-architecture: on an arm64 engine an unnamed one would not match)."""
        return self._with_cuda_ci(dag.container(platform=dagger.Platform(platform)).from_(image), trust)

    def _nodes(self) -> NodeContainers:
        return NodeContainers(self._tooling)

    def _index_service(self, name: str, invocation: str) -> dagger.Service:
        """The dry-run's embedded index as a service (see :meth:`NodeContainers.index_service`)."""
        return self._nodes().index_service(name, invocation)

    async def _require_history(self) -> None:
        """Refuse a source without full git history before any container runs.

        A remote module call (``dagger -m github.com/...``) loads the repository as a depth-1 tree
        without tags, where setuptools-scm cannot see a release tag; a `git worktree` checkout's
        `.git` names a host folder no container sees.
        """
        await require_full_history(self.source)

    # --- the plan, and its nodes as containers ----------------------------------------------
    @function
    async def plan(
        self,
        tag: Annotated[str | None, Doc("the release tag, e.g. v13.1.0")] = None,
        component: Annotated[str | None, Doc("the release unit")] = None,
        snapshot: Annotated[bool, Doc("plan HEAD without a tag")] = False,
        dry_run: Annotated[bool, Doc("publish to embedded indexes only")] = False,
        rehearse: Annotated[bool, Doc("plan ref as if the tag pointed at it (with dry-run)")] = False,
        ref: Annotated[str | None, Doc("the commit a rehearsal builds (default: main's head)")] = None,
        no_publish: Annotated[bool, Doc("stop after docs")] = False,
        extra_dist: Annotated[bool, Doc("wheels from another platform join validate")] = False,
        prebuilt: Annotated[bool, Doc("the Linux wheels come from the workflow's wheel jobs")] = False,
        pull_request_base: Annotated[str | None, Doc("a pull request's base: its matrix subset")] = None,
    ) -> str:
        """What a release will build, check and publish, and where: the plan as JSON."""
        await self._require_history()
        flags = [*selection(tag, component, snapshot, rehearse, ref), *(["--dry-run"] if dry_run or snapshot else [])]
        flags += [*(["--no-publish"] if no_publish else []), *(["--extra-dist"] if extra_dist else [])]
        flags += fan_out_flags(prebuilt, pull_request_base)
        return await self.plan_container(flags).stdout()

    def plan_container(self, flags: list[str], platform: str = "linux/amd64") -> dagger.Container:
        """``cuda-ci plan --runner=dagger --json``: decided in the platform's tooling image, by its cibuildwheel."""
        planner = self._tooling(platform=platform, image=TOOLING_IMAGES[platform], trust=trust_of(flags))
        return planner.with_exec([CUDA_CI, "plan", *flags, "--runner=dagger", "--json", "--repo", "/src"])

    async def _release_plan(self, flags: list[str], platform: str = "linux/amd64") -> ReleasePlan:
        return ReleasePlan.from_json(json.loads(await self.plan_container(flags, platform).stdout()))

    def plan_graph(
        self,
        plan: ReleasePlan,
        extra_dist: dagger.Directory | None,
        tokens: dict[str, dagger.Secret | None],
        github_repository: str,
        invocation: str,
        until: str | None = None,
        handed: Handed | None = None,
    ) -> dict[str, dagger.Directory]:
        """Every node of ``plan`` (up to ``until``; of ``handed.only``, where given) as a container running
        its ``cuda-ci`` command line; what each made, by node id. Nodes that need nothing of each other run
        side by side."""
        made: dict[str, dagger.Directory] = {}
        handed = handed or Handed()
        run = NodeRun(plan, extra_dist, tokens, github_repository, invocation, handed)
        for wave in plan.waves():
            for node in (n for n in wave if handed.only is None or n.id in handed.only):
                made[node.id] = self.node_exec(run, node, made).directory(NODE_OUTPUT.get(node.kind, "/release"))
                if node.id == until:
                    return made
        return made

    def node_exec(
        self, run: NodeRun, node: Node, made: dict[str, dagger.Directory], keep_failed: bool = False
    ) -> dagger.Container:
        """``node``'s container after its command line ran (any exit code, with ``keep_failed``: in an
        empty folder where it leaves its log, for :func:`outcome_of_waves` to read)."""
        plan = run.plan
        wheels = [n.id for n in plan.of_kind("wheel")]
        trust: CacheTrust = "untrusted" if plan.source.mode == "snapshot" else "release"
        container = self._nodes().node_container(node, made, run.extra_dist, wheels, plan, trust, run.handed)
        if node.kind in ("preflight", "publish"):  # talks to the world: never a cached layer
            container = self._nodes().with_world(
                container, node, plan.dry_run, run.tokens, run.github_repository, run.invocation
            )
        argv = [CUDA_CI, *fill(node.argv, NODE_PATHS), *handoff(node, plan.dry_run)]
        if not keep_failed:
            return container.with_exec(argv)
        if node.kind in NODE_ROOT:  # no folder mounted there yet: one for its log
            container = container.with_directory(NODE_ROOT[node.kind], dag.directory())
        return container.with_exec(argv, expect=dagger.ReturnType.ANY)

    @talks_to_the_world
    async def preflight(
        self,
        tag: Annotated[str | None, Doc("the release tag, e.g. v13.1.0")] = None,
        component: Annotated[str | None, Doc("the release unit")] = None,
        snapshot: Annotated[bool, Doc("check HEAD without a tag")] = False,
        dry_run: Annotated[bool, Doc("record unreachable GitHub checks as not verified")] = False,
        rehearse: Annotated[bool, Doc("check ref as if the tag pointed at it (with dry-run)")] = False,
        ref: Annotated[str | None, Doc("the commit a rehearsal checks (default: main's head)")] = None,
        github_token: Annotated[dagger.Secret | None, Doc("token for the CI gate and releases")] = None,
        github_repository: Annotated[str, Doc("owner/name on GitHub")] = "NVIDIA/cuda-python",
    ) -> str:
        """Check that a tag may be released; the findings as JSON (the plan's preflight node)."""
        await self._require_history()
        flags = [*selection(tag, component, snapshot, rehearse, ref), *(["--dry-run"] if dry_run or snapshot else [])]
        plan = await self._release_plan([*flags, "--no-publish"])
        made = self.plan_graph(plan, None, {"GITHUB_TOKEN": github_token}, github_repository, new_invocation(),
                               until="preflight")  # fmt: skip
        return await made["preflight"].file("preflight.json").contents()

    # --- build, validate, docs ---------------------------------------------------------------
    @function
    async def build(
        self,
        tag: Annotated[str | None, Doc("the release tag")] = None,
        component: Annotated[str | None, Doc("the release unit")] = None,
        snapshot: Annotated[bool, Doc("build HEAD as a dev version")] = False,
        rehearse: Annotated[bool, Doc("build ref as if the tag pointed at it")] = False,
        ref: Annotated[str | None, Doc("the commit a rehearsal builds (default: main's head)")] = None,
    ) -> dagger.Directory:
        """Build the unit's sdists and wheels once (the plan up to its build node); the release folder so far."""
        plan = await self._build_plan(tag, component, snapshot, rehearse, ref)
        return self.plan_graph(plan, None, {}, "NVIDIA/cuda-python", new_invocation(), until="build")["build"]

    async def _build_plan(
        self,
        tag: str | None,
        component: str | None,
        snapshot: bool,
        rehearse: bool,
        ref: str | None,
        platform: str = "linux/amd64",
    ) -> ReleasePlan:
        """The plan a build reads (a dry-run's, no publish): its preflight records what it cannot check."""
        await self._require_history()
        flags = [*selection(tag, component, snapshot, rehearse, ref), "--dry-run", "--no-publish"]
        return await self._release_plan(flags, platform)

    @function
    async def wheels(
        self,
        tag: Annotated[str | None, Doc("the release tag")] = None,
        component: Annotated[str | None, Doc("the release unit")] = None,
        snapshot: Annotated[bool, Doc("build HEAD as a dev version")] = False,
        rehearse: Annotated[bool, Doc("build ref as if the tag pointed at it")] = False,
        ref: Annotated[str | None, Doc("the commit a rehearsal builds (default: main's head)")] = None,
        platform: Annotated[str, Doc("the OCI platform whose identifiers to build, e.g. linux/arm64")] = "linux/amd64",
        identifiers: Annotated[list[str] | None, Doc("only these of its identifiers (a pull request's subset)")] = None,
        keep_failed: Annotated[
            bool, Doc("wheels in dist/ and each node's log in logs/; a failed node's folder, not a failure")
        ] = False,
    ) -> dagger.Directory:
        """One platform's wheels from the plan (its wheel nodes, each in its pinned image), in one folder."""
        known_platform(platform, TOOLING_IMAGES)
        plan = await self._build_plan(tag, component, snapshot, rehearse, ref, platform)
        chosen = [n.id for n in platform_wheel_nodes(plan, platform, identifiers)]
        handed = Handed(only={"preflight", *chosen}, tooling=(platform, TOOLING_IMAGES[platform]))
        if keep_failed:  # for `cuda-ci report` on the runner, as release's (executors.dagger_nodes)
            run = NodeRun(plan, None, {}, "NVIDIA/cuda-python", new_invocation(), handed)
            node_exec = functools.partial(self.node_exec, run, keep_failed=True)
            outcome = await outcome_of_waves(plan, node_exec, handed.only)
            return outcome.failed or wheel_job_folder(outcome, chosen)
        made = self.plan_graph(plan, None, {}, "NVIDIA/cuda-python", new_invocation(), handed=handed)
        return merged(made, chosen)

    def single_node(
        self, argv: list[str], release: dagger.Directory, extra: dagger.Directory | None = None
    ) -> dagger.Directory:
        """One stage's command on a release folder handed in from outside a plan."""
        container = self._tooling().with_directory("/release", release)
        if extra is not None:
            container = container.with_directory("/extra", extra)
            argv = [*argv, "--extra-dist", "/extra"]
        return container.with_exec([CUDA_CI, *argv, "--release-dir", "/release", "--repo", "/src"]).directory(
            "/release"
        )

    @function
    async def validate(
        self,
        release: Annotated[dagger.Directory, Doc("the release folder build returned")],
        extra_dist: Annotated[dagger.Directory | None, Doc("wheels built on another platform in this run")] = None,
    ) -> dagger.Directory:
        """Validate the release folder and freeze its manifest."""
        return self.single_node(["validate"], release, extra_dist)

    @function
    def docs(self, release: Annotated[dagger.Directory, Doc("the validated release folder")]) -> dagger.Directory:
        """Build the unit's docs with this run's wheels installed."""
        return self.single_node(["docs"], release)

    # --- publish -----------------------------------------------------------------------------
    @talks_to_the_world
    async def publish(
        self,
        release: Annotated[dagger.Directory, Doc("the validated release folder")],
        target: Annotated[str, Doc("github, testpypi, pypi, finalize or all")] = "all",
        dry_run: Annotated[bool, Doc("publish to embedded indexes (Dagger services)")] = False,
        pypi_token: Annotated[dagger.Secret | None, Doc("PyPI API token")] = None,
        testpypi_token: Annotated[dagger.Secret | None, Doc("TestPyPI API token")] = None,
        github_token: Annotated[dagger.Secret | None, Doc("GitHub token (contents: write)")] = None,
        github_repository: Annotated[str, Doc("owner/name on GitHub")] = "NVIDIA/cuda-python",
    ) -> dagger.Directory:
        """Publish the release folder (GitHub draft, TestPyPI, PyPI, un-draft; resumable); the folder after."""
        tokens = {
            "GITHUB_TOKEN": github_token,
            "CUDA_CI_TESTPYPI_TOKEN": testpypi_token,
            "CUDA_CI_PYPI_TOKEN": pypi_token,
        }
        invocation = new_invocation()
        targets = ("github", "testpypi", "pypi", "finalize") if target == "all" else (target,)
        folder = release
        for name in targets:  # the plan's publish nodes, on a folder handed in
            at = ("--release-dir", "{release}", "--repo", "{repo}")
            node = Node(id=f"publish:{name}", kind="publish", needs=("release",),
                        argv=("publish", *at, f"--target={name}", *(["--dry-run"] if dry_run else [])))  # fmt: skip
            container = self._nodes().node_container(node, {"release": folder}, None)
            container = self._nodes().with_world(container, node, dry_run, tokens, github_repository, invocation)
            argv = [CUDA_CI, *fill(node.argv, NODE_PATHS), *handoff(node, dry_run)]
            folder = container.with_exec(argv).directory("/release")
        return folder

    # --- the release -------------------------------------------------------------------------
    @talks_to_the_world
    async def release(
        self,
        tag: Annotated[str | None, Doc("the release tag")] = None,
        component: Annotated[str | None, Doc("the release unit")] = None,
        snapshot: Annotated[bool, Doc("release HEAD as a dev version (implies dry-run)")] = False,
        dry_run: Annotated[bool, Doc("publish to embedded indexes only")] = False,
        rehearse: Annotated[bool, Doc("before the tag: build ref as if the tag pointed at it (with dry-run)")] = False,
        ref: Annotated[str | None, Doc("the commit a rehearsal builds (default: main's head)")] = None,
        no_publish: Annotated[bool, Doc("stop after docs")] = False,
        extra_dist: Annotated[dagger.Directory | None, Doc("wheels built on another platform in this run")] = None,
        pypi_token: Annotated[dagger.Secret | None, Doc("PyPI API token")] = None,
        testpypi_token: Annotated[dagger.Secret | None, Doc("TestPyPI API token")] = None,
        github_token: Annotated[dagger.Secret | None, Doc("GitHub token")] = None,
        github_repository: Annotated[str, Doc("owner/name on GitHub")] = "NVIDIA/cuda-python",
        prebuilt: Annotated[
            list[dagger.Directory] | None, Doc("Linux wheel folders made by `wheels` earlier in this run")
        ] = None,
        wheel_reports: Annotated[
            dagger.File | None, Doc("with prebuilt: the wheel jobs' reports (their outputs as JSON)")
        ] = None,
        keep_failed: Annotated[
            bool, Doc("on a node's failure return the folder as it stands, for `cuda-ci report` (which fails)")
        ] = False,
    ) -> dagger.Directory:
        """The release plan's nodes in one graph: preflight → wheels → build → validate beside docs → publish."""
        # keep_failed: the nodes run wave by wave (executors.dagger_nodes.outcome_of_waves); the first wave
        # with a failed node ends the run, so nothing after it runs and nothing is published.
        await self._require_history()
        flags = [*selection(tag, component, snapshot, rehearse, ref), *(["--dry-run"] if dry_run or snapshot else [])]
        flags += [*(["--no-publish"] if no_publish else []), *(["--extra-dist"] if extra_dist is not None else [])]
        handed = handed_wheels(prebuilt, wheel_reports)
        flags += fan_out_flags(handed.prebuilt is not None, None)
        plan = await self._release_plan(flags)
        tokens = {
            "GITHUB_TOKEN": github_token,
            "CUDA_CI_TESTPYPI_TOKEN": testpypi_token,
            "CUDA_CI_PYPI_TOKEN": pypi_token,
        }
        if keep_failed:
            run = NodeRun(plan, extra_dist, tokens, github_repository, new_invocation(), handed)
            outcome = await outcome_of_waves(plan, functools.partial(self.node_exec, run, keep_failed=True))
            return outcome.failed or outcome.made[plan.nodes[-1].id]
        made = self.plan_graph(plan, extra_dist, tokens, github_repository, new_invocation(), handed=handed)
        return made[plan.nodes[-1].id]

    # --- CI ----------------------------------------------------------------------------------
    def lint_container(self) -> dagger.Container:
        [lint] = [n for n in ci_nodes([]) if n.kind == "lint"]
        return self._tooling(trust="untrusted").with_exec([CUDA_CI, *fill(lint.argv, NODE_PATHS)])

    @function
    async def lint(self) -> str:
        """ruff, mypy and the workflow checks."""
        return await self.lint_container().stdout()

    def test_container(
        self, component: str, python: str, gpu: bool, groups: list[str] | None = None
    ) -> dagger.Container:
        """The CI plan's test node of ``component`` (``cuda-ci test``), then, with ``gpu``, its GPU job."""
        [node] = [n for n in ci_nodes([component], python_path(python), groups or []) if n.kind == "test"]
        tested = self._tooling(trust="untrusted").with_exec([CUDA_CI, *fill(node.argv, {**NODE_PATHS, "out": "/w"})])
        if not gpu:
            return tested
        uv = self._tooling(trust="untrusted").file("/opt/cuda-ci/bin/uv")
        return gpu_test_container(self.source, uv, component, python, tested.directory("/w"), groups or [])

    @function
    async def test(
        self,
        component: Annotated[str, Doc("the release unit")],
        python: Annotated[str, Doc("the Python version, e.g. 3.12")] = "3.12",
        gpu: Annotated[bool, Doc("also run the GPU tests on a GPU runner")] = False,
        group: Annotated[
            list[str] | None, Doc("also install this dependency group of the unit's components (repeatable)")
        ] = None,
    ) -> str:
        """One CI job: build the unit, test the built wheel, build its docs."""
        return await self.test_container(component, python, gpu, group).stdout()

    def ci_jobs(self, component: str | None) -> dict[str, dagger.Container]:
        """Every CI job of the CI plan by its name, which is also the command that reproduces it."""
        jobs = {}
        for node in ci_nodes([component] if component else list(unit_names())):
            name = job_name(node)
            jobs[name] = (
                self.lint_container()
                if node.kind == "lint"
                else self.test_container(name.split()[-1], "3.12", gpu=False)
            )
        return jobs

    @function
    async def ci(self, component: Annotated[str | None, Doc("only this unit")] = None) -> str:
        """lint and every test job, all at once; every failing job is reported."""
        outputs: dict[str, str] = {}
        failures: dict[str, Exception] = {}

        async def run(name: str, container: dagger.Container) -> None:
            try:
                outputs[name] = await container.stdout()
            except Exception as error:  # a pull or network error is that job's failure too
                failures[name] = error

        jobs = self.ci_jobs(component)
        async with anyio.create_task_group() as group:
            for name, container in jobs.items():
                group.start_soon(run, name, container)
        if failures:
            raise CiJobsFailed(failures)
        return "\n".join(outputs[name] for name in jobs)

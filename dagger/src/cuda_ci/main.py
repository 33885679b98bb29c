"""The Dagger module ``cuda-ci``: the same stage code as the host CLI, run in pinned containers.

Every function is a thin graph over ``cuda-ci <stage>`` commands installed from this module's own
source; no stage logic lives here. The release folder is one ``Directory`` handed from stage to
stage inside one call, so a release builds once and publishes exactly what it validated.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar, cast

import anyio

import dagger
from cuda_ci.components import dependency_closure, get_unit, unit_names
from cuda_ci.graphparts import (
    CUDA_CI,
    CUDA_IMAGE,
    LOCKED_TOOLS,
    PACKAGES_DIR,
    PYPISERVER_ARGS,
    SOURCE_IGNORE,
    TOOL_PYTHON,
    TOOLING_IMAGE,
    MissingHistoryError,
    new_invocation,
    python_path,
    selection,
    smoke_versions,
)
from cuda_ci.tags import parse_tag
from cuda_ci.toolchain import DEV_REQUIREMENTS, locked_install, source_install
from cuda_ci.wheelplan import LinuxWheelJob, linux_wheel_jobs
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
    def _with_cuda_ci(self, container: dagger.Container) -> dagger.Container:
        """cuda-ci's tools from dagger/uv.lock (hash-checked), cuda-ci from the monorepo at /src; pip and uv
        caches and the kept tool environments (made complete, then renamed into place: safe to share) as volumes."""
        return (
            container.with_mounted_cache("/root/.cache/pip", dag.cache_volume("cuda-ci-pip"))
            .with_mounted_cache("/root/.cache/uv", dag.cache_volume("cuda-ci-uv"))
            .with_mounted_cache("/root/.cache/cuda-ci", dag.cache_volume("cuda-ci-tool-envs"))
            .with_file(LOCKED_TOOLS, self.source.file(DEV_REQUIREMENTS))
            .with_exec([TOOL_PYTHON, "-m", "venv", "/opt/cuda-ci"])
            .with_exec(locked_install("/opt/cuda-ci/bin/pip", LOCKED_TOOLS))
            .with_exec(["git", "config", "--global", "--add", "safe.directory", "*"])
            .with_directory("/src", self.source)
            .with_exec(source_install("/opt/cuda-ci/bin/pip", "/src/dagger"))  # its version: /src's tags
            .with_workdir("/src")
        )

    def _tooling(self, platform: str | None = None, image: str = TOOLING_IMAGE) -> dagger.Container:
        base = dag.container(platform=dagger.Platform(platform)) if platform else dag.container()
        return self._with_cuda_ci(base.from_(image))

    @staticmethod
    def _with_github(
        container: dagger.Container, github_token: dagger.Secret | None, github_repository: str
    ) -> dagger.Container:
        container = container.with_env_variable("GITHUB_REPOSITORY", github_repository)
        return container.with_secret_variable("GITHUB_TOKEN", github_token) if github_token else container

    async def _require_history(self) -> None:
        """Refuse a source without full git history before any container runs.

        A remote module call (``dagger -m github.com/...``) loads the repository as a depth-1 tree
        without tags, where setuptools-scm cannot see a release tag.
        """
        if await self.source.exists(".git") and not await self.source.exists(".git/shallow"):
            return
        raise MissingHistoryError(
            "the module's source has no full git history (a remote module call loads a depth-1 tree "
            "without tags, so setuptools-scm cannot see the release tag): run the module against a full "
            "local clone, e.g. `git clone https://github.com/NVIDIA/cuda-python && cd cuda-python && "
            "dagger call release ...`, or pass one with `dagger -m <module> call --source=<full clone> ...`"
        )

    # --- preflight ---------------------------------------------------------------------------
    def preflight_container(
        self,
        tag: str | None,
        component: str | None,
        snapshot: bool,
        dry_run: bool,
        github_token: dagger.Secret | None,
        github_repository: str,
        invocation: str,
        rehearse: bool = False,
        ref: str | None = None,
    ) -> dagger.Container:
        argv = [CUDA_CI, "preflight", *selection(tag, component, snapshot, rehearse, ref), "--json", "--repo", "/src"]
        container = self._with_github(self._tooling(), github_token, github_repository)
        return with_invocation(container, invocation).with_exec([*argv, *(["--dry-run"] if dry_run else [])])

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
        """Check that a tag may be released; the findings as JSON."""
        await self._require_history()
        container = self.preflight_container(
            tag, component, snapshot, dry_run, github_token, github_repository, new_invocation(), rehearse, ref
        )
        return await container.stdout()

    # --- build -------------------------------------------------------------------------------
    async def _wheel_jobs(self, tag: str | None, component: str | None) -> list[LinuxWheelJob]:
        """cibuildwheel's Linux selection for the unit's platform component (read from the source)."""
        unit = parse_tag(tag).unit if tag else get_unit(component or "")
        platform = [c for c in unit.components if c.wheel == "platform"]
        if not platform:
            return []
        pyproject = await self.source.file(f"{platform[0].dir}/pyproject.toml").contents()
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "pyproject.toml").write_text(pyproject)
            return linux_wheel_jobs(Path(tmp))

    def linux_wheel(self, job: LinuxWheelJob, flags: list[str]) -> dagger.Directory:
        """One identifier's wheel, built from the tag and repaired in cibuildwheel's pinned image."""
        handoff = [f"--build-python={job.python}"]  # the Dagger → CLI contract: `cuda-ci build --help`
        return (
            self._tooling(platform=job.platform, image=job.image)
            .with_exec([CUDA_CI, "build", *flags, "--wheels-only", *handoff, "--repo", "/src", "--out", "/out"])
            .directory("/out/dist")
        )

    def build_graph(
        self, flags: list[str], jobs: list[LinuxWheelJob], ci_gate: dict[str, str | None] | None = None
    ) -> dagger.Directory:
        """Wheels per identifier in parallel, then the sdists, pure wheels, archive and manifest once."""
        wheels = dag.directory()
        for job in jobs:
            wheels = wheels.with_directory(".", self.linux_wheel(job, flags))
        container = self._tooling()
        handoff = ["--built-by=dagger"]  # the Dagger → CLI contract: `cuda-ci build --help`
        if jobs:
            container = container.with_directory("/prebuilt", wheels)
            handoff.append("--prebuilt-wheels=/prebuilt")
        if ci_gate is not None:
            handoff.append(f"--ci-gate={ci_gate['status']}")
            handoff += [f"--ci-run-url={ci_gate['run_url']}"] if ci_gate.get("run_url") else []
        argv = [CUDA_CI, "build", *flags, *handoff, "--repo", "/src", "--out", "/release"]
        return container.with_exec(argv).directory("/release")

    @function
    async def build(
        self,
        tag: Annotated[str | None, Doc("the release tag")] = None,
        component: Annotated[str | None, Doc("the release unit")] = None,
        snapshot: Annotated[bool, Doc("build HEAD as a dev version")] = False,
        rehearse: Annotated[bool, Doc("build ref as if the tag pointed at it")] = False,
        ref: Annotated[str | None, Doc("the commit a rehearsal builds (default: main's head)")] = None,
    ) -> dagger.Directory:
        """Build the unit's sdists and wheels once; the release folder so far."""
        await self._require_history()
        jobs = await self._wheel_jobs(tag, component)
        return self.build_graph(selection(tag, component, snapshot, rehearse, ref), jobs)

    # --- validate, docs ----------------------------------------------------------------------
    def validate_graph(
        self, release: dagger.Directory, extra_dist: dagger.Directory | None, smoke_pythons: list[str]
    ) -> dagger.Directory:
        """validate in one container, then one smoke install per other supported Python."""
        container = self._tooling().with_directory("/release", release)
        argv = [CUDA_CI, "validate", "--release-dir", "/release", "--repo", "/src"]
        if extra_dist is not None:
            container = container.with_directory("/extra", extra_dist)
            argv += ["--extra-dist", "/extra"]
        validated = container.with_exec(argv)
        result = validated
        smoke = [CUDA_CI, "smoke", "--release-dir", "/release", "--repo", "/src"]
        for python in smoke_pythons:
            smoke_log = (
                self._tooling()
                .with_directory("/release", validated.directory("/release"))
                .with_exec([*smoke, f"--build-python={python_path(python)}"], redirect_stdout="/smoke.log")
                .file("/smoke.log")
            )
            # The returned folder depends on every smoke run, so none can be skipped.
            result = result.with_file(f"/smoke/{python}.log", smoke_log)
        return result.directory("/release")

    @function
    async def validate(
        self,
        release: Annotated[dagger.Directory, Doc("the release folder build returned")],
        extra_dist: Annotated[dagger.Directory | None, Doc("wheels built on another platform in this run")] = None,
    ) -> dagger.Directory:
        """Validate the release folder and freeze its manifest."""
        manifest = json.loads(await release.file("release-manifest.json").contents())
        return self.validate_graph(release, extra_dist, smoke_versions(manifest["build_identifiers"]))

    def docs_graph(self, release: dagger.Directory) -> dagger.Directory:
        container = self._tooling().with_directory("/release", release)
        return container.with_exec([CUDA_CI, "docs", "--release-dir", "/release", "--repo", "/src"]).directory(
            "/release"
        )

    @function
    def docs(self, release: Annotated[dagger.Directory, Doc("the validated release folder")]) -> dagger.Directory:
        """Build the unit's docs with this run's wheels installed."""
        return self.docs_graph(release)

    # --- publish -----------------------------------------------------------------------------
    def _index_service(self, name: str, invocation: str) -> dagger.Service:
        """pypiserver (from cuda-ci's own dependencies) as a Dagger service: the embedded index.

        It starts empty in every call (the invocation is part of its key) and refuses to start
        without its package folder, so the folder is made first.
        """
        return (
            self._tooling()
            .with_exec(["mkdir", "-p", PACKAGES_DIR])
            .with_env_variable("CUDA_CI_INDEX_NAME", name)  # two services, not one deduplicated
            .with_env_variable("CUDA_CI_INVOCATION", invocation)
            .with_exposed_port(8080)
            .as_service(args=PYPISERVER_ARGS)
        )

    def publish_container(
        self,
        release: dagger.Directory,
        target: str,
        dry_run: bool,
        tokens: dict[str, dagger.Secret | None],
        github_repository: str,
        invocation: str,
    ) -> dagger.Container:
        container = with_invocation(self._tooling().with_directory("/release", release), invocation)
        argv = [CUDA_CI, "publish", "--release-dir", "/release", "--target", target, "--repo", "/src"]
        if dry_run:
            for name in ("testpypi", "pypi"):
                service = self._index_service(name, invocation)
                container = container.with_service_binding(name, service)
                argv.append(f"--dry-run-index={name}=http://{name}:8080")
            return container.with_exec([*argv, "--dry-run"])
        container = self._with_github(container, tokens.get("GITHUB_TOKEN"), github_repository)
        for variable in ("CUDA_CI_TESTPYPI_TOKEN", "CUDA_CI_PYPI_TOKEN"):
            secret = tokens.get(variable)
            if secret is not None:
                container = container.with_secret_variable(variable, secret)
        return container.with_exec(argv)

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
        container = self.publish_container(release, target, dry_run, tokens, github_repository, new_invocation())
        return container.directory("/release")

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
    ) -> dagger.Directory:
        """preflight → build → validate → docs → publish in one graph; the release folder."""
        await self._require_history()
        dry_run = dry_run or snapshot
        invocation = new_invocation()
        checked = self.preflight_container(
            tag, component, snapshot, dry_run, github_token, github_repository, invocation, rehearse, ref
        )
        found = json.loads(await checked.stdout())
        jobs = await self._wheel_jobs(tag, component)
        tokens = {
            "GITHUB_TOKEN": github_token,
            "CUDA_CI_TESTPYPI_TOKEN": testpypi_token,
            "CUDA_CI_PYPI_TOKEN": pypi_token,
        }
        return self.release_graph(
            selection(tag, component, snapshot, rehearse, ref), jobs, found["ci_gate"], extra_dist, no_publish,
            dry_run, tokens, github_repository, invocation,
        )  # fmt: skip

    def release_graph(
        self,
        flags: list[str],
        jobs: list[LinuxWheelJob],
        ci_gate: dict[str, str | None],
        extra_dist: dagger.Directory | None,
        no_publish: bool,
        dry_run: bool,
        tokens: dict[str, dagger.Secret | None],
        github_repository: str,
        invocation: str,
    ) -> dagger.Directory:
        """The one graph: each stage consumes the Directory the previous one returned."""
        built = self.build_graph(flags, jobs, ci_gate)
        validated = self.validate_graph(built, extra_dist, smoke_versions([j.identifier for j in jobs]))
        documented = self.docs_graph(validated)
        if no_publish:
            return documented
        publishing = self.publish_container(documented, "all", dry_run, tokens, github_repository, invocation)
        return publishing.directory("/release")

    # --- CI ----------------------------------------------------------------------------------
    def lint_container(self) -> dagger.Container:
        return self._tooling().with_exec([CUDA_CI, "lint", "--repo", "/src"])

    @function
    async def lint(self) -> str:
        """ruff, mypy and the workflow checks."""
        return await self.lint_container().stdout()

    def test_container(
        self, component: str, python: str, gpu: bool, groups: list[str] | None = None
    ) -> dagger.Container:
        asked = [arg for group in groups or [] for arg in ("--group", group)]
        argv = [CUDA_CI, "test", "--component", component, *asked, f"--build-python={python_path(python)}"]
        tested = self._tooling().with_exec([*argv, "--repo", "/src", "--out", "/w"])
        return self.gpu_test_container(component, python, tested.directory("/w"), groups or []) if gpu else tested

    def gpu_test_container(
        self, component: str, python: str, built: dagger.Directory, groups: list[str]
    ) -> dagger.Container:
        """The wheels a test job built and tested, on a CUDA base image with every GPU attached.

        The interpreter is the ``--python`` the wheels were built for (a uv-managed CPython, since the
        CUDA image's system Python is one fixed version); wheels are named, never globbed. Each
        component's ``test`` group (and each asked-for group) is installed, this run's files and
        siblings from the job's folders only, then their third-party requirements from the index;
        each component's tests run from its own folder, with its own pytest configuration.
        """
        unit = get_unit(component)
        siblings = dependency_closure(unit)
        find_links = ["--find-links", "/wheels/dist", *(["--find-links", "/wheels/siblings"] if siblings else [])]
        distributions = [*unit.distributions, *(c.distribution for c in siblings)]
        pip = ["uv", "pip", "install", "--python", "/venv/bin/python"]
        major, minor = python.split(".")
        container = (
            dag.container()
            .from_(CUDA_IMAGE)
            .experimental_with_all_gp_us()
            .with_file("/usr/local/bin/uv", self._tooling().file("/opt/cuda-ci/bin/uv"))
            .with_mounted_cache("/root/.cache/uv", dag.cache_volume("cuda-ci-uv"))
            .with_env_variable("UV_PYTHON_INSTALL_DIR", "/root/.cache/uv/python")
            .with_exec(["uv", "venv", "--python", python, "--python-preference", "only-managed", "/venv"])
            .with_exec(["/venv/bin/python", "-c", f"import sys; assert sys.version_info[:2] == ({major}, {minor})"])
            .with_directory("/wheels", built)
            .with_directory("/src", self.source)
        )
        for group in ["test", *groups]:
            declared = [("--group", f"/src/{c.dir}/pyproject.toml:{group}") for c in unit.components]
            container = container.with_exec([*pip, *(arg for pair in declared for arg in pair)])
        # Own files and siblings from this job only (their names hold other builds on the index);
        # then the same names again, already satisfied, so only third-party requirements are fetched.
        container = container.with_exec([*pip, "--no-deps", "--no-index", *find_links, *distributions])
        container = container.with_exec([*pip, *distributions])
        for c in unit.components:
            container = container.with_workdir(f"/src/{c.dir}").with_exec(
                ["/venv/bin/python", "-m", "pytest", "-p", "no:cacheprovider", "-m", "gpu", "-v", "tests"]
            )
        return container

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
        """Every CI job by its name, which is also the command that reproduces it."""
        units = [component] if component else list(unit_names())
        jobs = {"lint": self.lint_container()}
        for unit in units:
            jobs[f"test --component {unit}"] = self.test_container(unit, "3.12", gpu=False)
        return jobs

    @function
    async def ci(self, component: Annotated[str | None, Doc("only this unit")] = None) -> str:
        """lint and every test job, all at once; every failing job is reported."""
        outputs: dict[str, str] = {}
        failures: dict[str, dagger.ExecError] = {}

        async def run(name: str, container: dagger.Container) -> None:
            try:
                outputs[name] = await container.stdout()
            except dagger.ExecError as error:
                failures[name] = error

        jobs = self.ci_jobs(component)
        async with anyio.create_task_group() as group:
            for name, container in jobs.items():
                group.start_soon(run, name, container)
        if failures:
            raise CiJobsFailed(failures)
        return "\n".join(outputs[name] for name in jobs)


class CiJobsFailed(Exception):
    """One or more CI jobs failed; the message names each, with its exit code and last output."""

    def __init__(self, failures: dict[str, dagger.ExecError]) -> None:
        lines = [f"{len(failures)} CI job(s) failed (reproduce each with `dagger call <job>`):"]
        for name, error in sorted(failures.items()):
            tail = "\n    ".join((error.stderr or error.stdout).strip().splitlines()[-15:])
            lines.append(f"- {name}: exit code {error.exit_code}\n    {tail}")
        super().__init__("\n".join(lines))
        self.failures = failures


def with_invocation(container: dagger.Container, invocation: str) -> dagger.Container:
    """Key what follows to this call, so a step that talks to GitHub or an index is never taken from
    the layer cache of an earlier call with the same inputs."""
    return container.with_env_variable("CUDA_CI_INVOCATION", invocation)

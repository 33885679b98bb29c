"""The release plan: one pure decision, made once, that every executor runs.

:func:`plan_release` turns a selection (tag, snapshot or rehearsal), the run's options and what the
repository holds (:class:`RepositoryState`) into a :class:`ReleasePlan`: the resolved source and the
nodes, each a ``cuda-ci`` command line with what it needs, what it reads and what it makes. The host
executor (:mod:`cuda_ci.executors.host`) runs those command lines in-process, side by side where the plan
allows; the Dagger module (``main.py``) runs each in a container. Nothing downstream decides again
what the plan decided: the tag is parsed once, here and in the selection it came from.

Command lines hold placeholders that each executor fills with its own paths:
``{repo}`` (the monorepo), ``{release}`` (the release folder), ``{out}`` (a wheel job's own output
folder), ``{prebuilt}`` (every wheel job's output, merged), ``{preflight}`` (preflight's JSON result),
``{extra}`` (``--extra-dist``'s folder) and ``{reports}`` (the sha256 each prebuilt wheel's job reported).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from cuda_ci.infra.components import ReleaseUnit, dependency_closure
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.plan.wheel_matrix import MatrixEntry, NativeWheel, matrix, native_wheels

PLAN_SCHEMA = 1
Runner = Literal["host", "dagger"]
Mode = Literal["release", "rehearsal", "snapshot"]
NodeKind = Literal["preflight", "wheel", "build", "validate", "docs", "record-docs", "publish", "lint", "test"]
PUBLISH_TARGETS = ("github", "testpypi", "pypi", "finalize")
# The interpreter the tooling containers run cuda-ci with (validate installs and imports with it; each
# wheel node import-tests its own identifier with its own interpreter); the host runner has only its own.
TOOL_PYTHON_VERSION = "3.12"


@dataclass(frozen=True, kw_only=True)
class WheelJob:
    """One build identifier cibuildwheel selects, where it builds: image, platform and interpreter."""

    identifier: str
    platform: str  # OCI platform, e.g. linux/amd64
    image: str
    python: str


@dataclass(frozen=True, kw_only=True)
class RepositoryState:
    """What the plan reads from the repository: the commit and every distribution's version."""

    commit: str
    versions: Mapping[str, str]
    wheel_jobs: Sequence[WheelJob] = ()
    host_identifier: str | None = None
    windows_identifiers: Sequence[str] = ()  # cibuildwheel's Windows selection, built on Windows runners


@dataclass(frozen=True, kw_only=True)
class PlanOptions:
    runner: Runner = "host"
    dry_run: bool = False
    no_publish: bool = False
    extra_dist: bool = False
    # The Linux wheels were built by earlier jobs of the same run (the workflows' wheel matrix): build
    # takes them, checked against this plan and the sha256 each job reported, instead of wheel nodes.
    prebuilt: bool = False


@dataclass(frozen=True, kw_only=True)
class Node:
    """One step of a run: a ``cuda-ci`` command line, what it waits for, reads and makes."""

    id: str
    kind: NodeKind
    argv: tuple[str, ...]
    needs: tuple[str, ...] = ()
    # What this node makes: release-folder paths (or a placeholder); each node also writes its log,
    # logs/<id>.json (cuda_ci.executors.runlog), and run-log.json.
    outputs: tuple[str, ...] = ()
    identifier: str | None = None
    platform: str | None = None
    image: str | None = None
    python: str | None = None
    workdir: str | None = None  # where the command runs, for nodes that run a component's own tests


@dataclass(frozen=True, kw_only=True)
class Source:
    unit: str
    commit: str
    tag: str | None
    mode: Mode
    versions: dict[str, str]
    siblings: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ReleasePlan:
    source: Source
    runner: Runner
    dry_run: bool
    nodes: tuple[Node, ...]
    folder: str  # the default release folder's name under .release/
    schema: int = PLAN_SCHEMA
    indexes: tuple[str, ...] = field(default=())
    # Every identifier the release builds and the platform whose native runner builds it (Dagger plans).
    native_wheels: tuple[NativeWheel, ...] = ()

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def of_kind(self, kind: NodeKind) -> list[Node]:
        return [n for n in self.nodes if n.kind == kind]

    def waves(self) -> Iterator[list[Node]]:
        """The nodes in waves: each node after every node it needs (a wave's nodes may run side by side)."""
        done: set[str] = set()
        left = list(self.nodes)
        while left:
            ready = [n for n in left if set(n.needs) <= done]
            if not ready:
                raise CudaCiError(f"the plan has a cycle among {', '.join(n.id for n in left)}")
            yield ready
            done |= {n.id for n in ready}
            left = [n for n in left if n.id not in done]

    def wheel_matrix(self) -> dict[str, list[dict[str, str]]]:
        """The wheel nodes grouped by platform, as a workflow reads a matrix (``fromJSON``)."""
        groups: dict[str, list[dict[str, str]]] = {}
        for node in self.of_kind("wheel"):
            assert node.platform is not None and node.identifier is not None
            groups.setdefault(node.platform, []).append({"identifier": node.identifier, "node": node.id})
        return groups

    def matrix(self) -> list[MatrixEntry]:
        """The workflows' wheel jobs: every identifier grouped by its native runner (``cuda_ci.plan.wheel_matrix``)."""
        return matrix(self.source.unit, self.native_wheels)

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["wheel_matrix"] = self.wheel_matrix()
        data["matrix"] = self.matrix()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReleasePlan:
        """The plan ``cuda-ci plan --json`` printed (the Dagger module reads it back so)."""
        if data.get("schema") != PLAN_SCHEMA:
            raise CudaCiError(f"not a schema {PLAN_SCHEMA} release plan: run cuda-ci plan of this cuda-ci version")
        source = dict(data["source"])
        nodes = tuple(
            Node(**{**n, "argv": tuple(n["argv"]), "needs": tuple(n["needs"]), "outputs": tuple(n["outputs"])})
            for n in data["nodes"]
        )
        return cls(
            source=Source(**{**source, "siblings": tuple(source["siblings"])}),
            runner=data["runner"],
            dry_run=bool(data["dry_run"]),
            nodes=nodes,
            folder=str(data["folder"]),
            indexes=tuple(data["indexes"]),
            native_wheels=tuple(NativeWheel(**w) for w in data.get("native_wheels", ())),
        )


def selection_flags(tag: str | None, unit: str, mode: Mode, ref: str | None) -> tuple[str, ...]:
    """The selection as every node that reads the repository takes it (the CLI's own flags)."""
    if mode == "snapshot":
        return ("--snapshot", f"--component={unit}")
    rehearsal = ("--rehearse", *((f"--ref={ref}",) if ref else ())) if mode == "rehearsal" else ()
    return (f"--tag={tag}", f"--component={unit}", *rehearsal)


def plan_release(
    unit: ReleaseUnit,
    tag: str | None,
    mode: Mode,
    ref: str | None,
    options: PlanOptions,
    state: RepositoryState,
) -> ReleasePlan:
    """Every node of one release run, in an order the executors may follow; nothing runs here."""
    dry_run = options.dry_run or mode != "release"
    selection = selection_flags(tag, unit.name, mode, ref)
    repo = ("--repo", "{repo}")
    at = ("--release-dir", "{release}", *repo)
    preflight = Node(
        id="preflight",
        kind="preflight",
        argv=("preflight", *selection, *(("--dry-run",) if dry_run else ()), "--json", *repo, "--out={preflight}"),
        outputs=("{preflight}",),
    )
    wheels = _wheel_nodes(selection, state, options) if unit.has_platform_wheels else []
    build = _build_node(selection, state, options, [w.id for w in wheels], unit)
    nodes = [preflight, *wheels, build, *_check_nodes(at, options.extra_dist)]
    if not options.no_publish:
        nodes += _publish_nodes(at, dry_run)
    # Every node runs as itself: its log in the release folder (see cuda_ci.executors.runlog).
    nodes = [replace(n, argv=(*n.argv, f"--node={n.id}")) for n in nodes]
    return ReleasePlan(
        source=Source(
            unit=unit.name,
            commit=state.commit,
            tag=tag,
            mode=mode,
            versions=dict(state.versions),
            siblings=tuple(c.distribution for c in dependency_closure(unit)),
        ),
        runner=options.runner,
        dry_run=dry_run,
        nodes=tuple(nodes),
        folder=_folder_name(unit.name, tag, mode, state.commit),
        indexes=() if options.no_publish else ("testpypi", "pypi"),
        native_wheels=_native_wheels(state) if unit.has_platform_wheels else (),
    )


def _native_wheels(state: RepositoryState) -> tuple[NativeWheel, ...]:
    linux = [(job.identifier, job.platform) for job in state.wheel_jobs]
    return native_wheels(linux, state.windows_identifiers)


def _check_nodes(at: tuple[str, ...], extra_dist: bool) -> list[Node]:
    """validate and docs side by side on build's folder, then record-docs once both are done. (Each
    platform wheel was import-tested by the wheel node or job that built it, with its own interpreter
    and this commit's siblings built for it: the release folder's siblings are the tool interpreter's.)"""
    validate = Node(
        id="validate",
        kind="validate",
        argv=("validate", *at, *(("--extra-dist", "{extra}") if extra_dist else ())),
        needs=("build",),
        outputs=("release-manifest.json", "SHA256SUMS"),
    )
    docs = Node(id="docs", kind="docs", argv=("docs", *at, "--beside-validate"), needs=("build",),
                outputs=("docs", "docs-outcome.json"))  # fmt: skip
    record = Node(
        id="record-docs",
        kind="record-docs",
        argv=("record-docs", *at),
        needs=("validate", "docs"),
        outputs=("release-manifest.json",),
    )
    return [validate, docs, record]


def _folder_name(unit: str, tag: str | None, mode: Mode, commit: str) -> str:
    if mode == "snapshot":
        return f"snapshot-{unit}-{commit[:7]}"
    if mode == "rehearsal":
        return f"rehearsal-{tag}-{commit[:7]}"
    return str(tag)


def _wheel_nodes(selection: tuple[str, ...], state: RepositoryState, options: PlanOptions) -> list[Node]:
    """Dagger builds each of cibuildwheel's Linux identifiers in its own pinned image; the host
    builds its own interpreter's wheel inside the build node; prebuilt wheels come from earlier jobs."""
    if options.runner == "host" or options.prebuilt:
        return []
    return [
        Node(
            id=f"wheel:{job.identifier}",
            kind="wheel",
            # the Dagger → CLI contract: `cuda-ci build --help`; preflight's result, so that nothing is
            # built for a refused release and the tag's commit is the one preflight checked
            argv=(
                *("build", *selection, "--wheels-only", f"--build-python={job.python}"),
                *("--preflight-result={preflight}", "--repo", "{repo}", *_OUT),
            ),
            needs=("preflight",),
            outputs=("{out}/dist",),
            identifier=job.identifier,
            platform=job.platform,
            image=job.image,
            python=job.python,
        )
        for job in state.wheel_jobs
    ]


_OUT = ("--out", "{out}")


def _build_node(
    selection: tuple[str, ...], state: RepositoryState, options: PlanOptions, wheel_ids: list[str], unit: ReleaseUnit
) -> Node:
    runner = options.runner
    handoff: tuple[str, ...] = ("--built-by=dagger",) if runner == "dagger" else ()
    if wheel_ids or (options.prebuilt and unit.has_platform_wheels):
        handoff += ("--prebuilt-wheels={prebuilt}",)
    if options.prebuilt and unit.has_platform_wheels:
        handoff += ("--wheel-reports={reports}",)
    dagger_wheels = runner == "dagger" or options.prebuilt
    identifiers = [job.identifier for job in state.wheel_jobs] if dagger_wheels else [state.host_identifier]
    return Node(
        id="build",
        kind="build",
        argv=("build", *selection, *handoff, "--preflight-result={preflight}", "--repo", "{repo}", "--out={release}"),
        needs=("preflight", *wheel_ids),
        outputs=("dist", "assets", "siblings", "release-manifest.json"),
        identifier=" ".join(i for i in identifiers if i) if unit.has_platform_wheels else None,
    )


def _publish_nodes(at: tuple[str, ...], dry_run: bool) -> list[Node]:
    """Each target in publish's order; each resumable on its own."""
    nodes: list[Node] = []
    previous = "record-docs"
    for target in PUBLISH_TARGETS:
        node_id = f"publish:{target}"
        argv = ("publish", *at, f"--target={target}", *(("--dry-run",) if dry_run else ()))
        made = {"github": ("github-release",), "testpypi": ("index/testpypi",), "pypi": ("index/pypi",)}
        outputs = ("publish-log.json", *(made.get(target, ()) if dry_run else ()))
        nodes.append(Node(id=node_id, kind="publish", argv=argv, needs=(previous,), outputs=outputs))
        previous = node_id
    return nodes


def fill(argv: Sequence[str], paths: Mapping[str, str]) -> list[str]:
    """A node's command line with an executor's paths in its placeholders."""
    filled = []
    for arg in argv:
        for name, value in paths.items():
            arg = arg.replace("{" + name + "}", value)
        filled.append(arg)
    return filled


# --- tests against the installed wheels ------------------------------------------------------------
WHEEL_GUARD = "cuda_ci_wheel_guard"  # the pytest plugin (cuda_ci/ci/wheelguard.py) written into the test env


@dataclass(frozen=True, kw_only=True)
class TestStep:
    """One component's tests: its own pytest configuration, run from its own folder, against the
    installed wheels. pytest's console script (never ``python -m pytest``, which puts the folder's
    sources first on ``sys.path``), with the wheel guard, which stops the run when they would shadow
    the installed wheel anyway."""

    __test__ = False  # not a pytest test class
    component: str
    argv: tuple[str, ...]
    workdir: str


def installed_test_steps(unit: ReleaseUnit, env_bin: str, repo: str, marker: str | None = None) -> list[TestStep]:
    """The test step of each component of ``unit``, with the test environment's ``bin`` folder and
    the checkout at ``repo``; ``marker`` selects (the GPU job runs ``-m gpu``)."""
    steps = []
    for component in unit.components:
        guarded = [f"--cuda-ci-installed={name}" for name in component.import_names]
        selected = ["-m", marker] if marker else []
        steps.append(
            TestStep(
                component=component.distribution,
                argv=(f"{env_bin}/pytest", "-p", WHEEL_GUARD, *guarded, "-p", "no:cacheprovider", *selected, "tests"),
                workdir=f"{repo}/{component.dir}",
            )
        )
    return steps

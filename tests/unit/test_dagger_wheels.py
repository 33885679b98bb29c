"""``dagger call wheels`` (one platform's wheel nodes of the plan) and ``dagger call release --prebuilt``
(their folders, made earlier in the run, checked by the build node), inspected as lazy call chains."""

from __future__ import annotations

import functools

import anyio
import pytest

import dagger
from cuda_ci.executors.dagger_parts import CUDA_CI, NODE_PATHS, TOOLING_IMAGES
from cuda_ci.executors.dagger_wheels import PrebuiltWithoutReports, WheelSelectionError
from cuda_ci.main import CudaCi
from dagger import dag
from tests.dagger_render import Call, chains, execs, offline_plan, printing_plans, render

TAGS = {"cuda-pathfinder": "cuda-pathfinder-v1.3.0", "cuda-bindings": "v13.1.0", "cuda-core": "cuda-core-v0.3.0"}
PLATFORMS = ["linux/amd64", "linux/arm64"]


@pytest.fixture
def module() -> CudaCi:
    return CudaCi(source=dag.directory())  # type: ignore[call-arg]


def _bases(chain: list[Call]) -> set[tuple[str, str]]:
    """(platform, image) of every container the chain starts, nested ones included."""
    return {(c[0].args["platform"], c[1].args["address"]) for c in chains(chain) if c[0].name == "container"}


def _cuda_ci(chain: list[Call]) -> dict[str, list[str]]:
    """Each cuda-ci command line the chain runs, by the plan node it runs as."""
    found = {}
    for argv in execs(chain):
        node = next((a.split("=", 1)[1] for a in argv if a.startswith("--node=")), None)
        if argv[0] == CUDA_CI and node:
            found[node] = argv
    return found


@pytest.mark.parametrize("platform", PLATFORMS)
def test_wheels_builds_one_platforms_identifiers_in_their_images_and_nothing_else(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    asked = printing_plans(monkeypatch, TAGS)
    planned_on: list[str] = []
    plan_container = CudaCi.plan_container

    def recorded(self: CudaCi, flags: list[str], platform: str = "linux/amd64") -> dagger.Container:
        planned_on.append(platform)
        return plan_container(self, flags, platform)

    monkeypatch.setattr(CudaCi, "plan_container", recorded)
    folder = anyio.run(functools.partial(CudaCi.wheels, module, TAGS["cuda-core"], platform=platform))
    assert planned_on == [platform], "planned in the platform's own image"
    assert _bases(render(plan_container(module, [], platform))) == {(platform, TOOLING_IMAGES[platform])}
    assert isinstance(folder, dagger.Directory)
    assert asked[-1][1:] == ["plan", "--tag=cuda-core-v0.3.0", "--dry-run", "--no-publish", "--runner=dagger",
                             "--json", "--repo", "/src"]  # fmt: skip
    plan = offline_plan("cuda-core", TAGS["cuda-core"], dry_run=True, no_publish=True)
    mine = [n for n in plan.of_kind("wheel") if n.platform == platform]
    chain = render(folder)
    runs = _cuda_ci(chain)
    assert set(runs) == {"preflight", *(n.id for n in mine)}, "preflight first, then this platform's wheel nodes"
    for node in mine:
        assert runs[node.id][1:] == [a.replace("{out}", NODE_PATHS["out"]).replace("{repo}", "/src")
                                     .replace("{preflight}", NODE_PATHS["preflight"]) for a in node.argv]  # fmt: skip
    # Every container names this platform, in this platform's image: on a native engine nothing is emulated.
    images = {n.image for n in mine}
    assert {p for p, _ in _bases(chain)} == {platform} and {i for _, i in _bases(chain)} == {
        *images,
        TOOLING_IMAGES[platform],
    }
    merged = [c for c in chain if c.name == "withDirectory"]
    assert len(merged) == len(mine) and all(c.args["path"] == "." for c in merged), "one folder of every wheel"


def test_wheels_builds_only_the_identifiers_asked_for(module: CudaCi, monkeypatch: pytest.MonkeyPatch) -> None:
    printing_plans(monkeypatch, TAGS)
    asked = ["cp312-manylinux_aarch64", "cp314t-manylinux_aarch64"]
    folder = anyio.run(
        functools.partial(
            CudaCi.wheels, module, component="cuda-bindings", snapshot=True, platform="linux/arm64", identifiers=asked
        )
    )
    runs = _cuda_ci(render(folder))
    assert sorted(runs) == ["preflight", *(f"wheel:{i}" for i in asked)]
    assert all("--snapshot" in argv for argv in runs.values())


def test_wheels_refuses_a_platform_or_identifier_the_plan_does_not_build(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch
) -> None:
    printing_plans(monkeypatch, TAGS)
    with pytest.raises(WheelSelectionError, match=r"no Linux wheel job runs on platform linux/s390x: choose one of "
                       r"linux/amd64, linux/arm64"):  # fmt: skip
        anyio.run(functools.partial(CudaCi.wheels, module, TAGS["cuda-core"], platform="linux/s390x"))
    with pytest.raises(WheelSelectionError, match=r"cp39-manylinux_x86_64: not an identifier cuda-core builds on "):
        anyio.run(functools.partial(CudaCi.wheels, module, TAGS["cuda-core"], identifiers=["cp39-manylinux_x86_64"]))
    with pytest.raises(WheelSelectionError, match=r"a pure unit has no wheel jobs"):
        anyio.run(functools.partial(CudaCi.wheels, module, TAGS["cuda-pathfinder"]))


def test_release_takes_prebuilt_folders_with_their_reports_into_the_build_node(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = printing_plans(monkeypatch, TAGS)
    amd64, arm64 = (dag.directory().with_new_file(f"{n}.whl", n) for n in ("a", "b"))
    reports = dag.directory().with_new_file("reports.json", "{}").file("reports.json")
    extra = dag.directory().with_new_directory("windows")
    release = functools.partial(CudaCi.release, module, TAGS["cuda-core"], dry_run=True, extra_dist=extra,
                                prebuilt=[amd64, arm64], wheel_reports=reports)  # fmt: skip
    chain = render(anyio.run(release))
    assert "--prebuilt" in asked[-1] and "--extra-dist" in asked[-1]
    runs = _cuda_ci(chain)
    assert not [n for n in runs if n.startswith("wheel:")], "no wheel is built again"
    build = runs["build"]
    assert "--prebuilt-wheels=/prebuilt" in build and f"--wheel-reports={NODE_PATHS['reports']}" in build
    builder = next(c for c in chains(chain) if any(x.name == "withExec" and x.args["args"] == build for x in c))
    mounts = {c.args["path"]: c.args.get("source") for c in builder if c.name in ("withDirectory", "withFile")}
    handed = render(dag.directory().with_directory(".", amd64).with_directory(".", arm64))
    assert mounts["/prebuilt"] == handed, "both folders, merged"
    assert mounts[NODE_PATHS["reports"]] == render(reports)


def test_release_refuses_prebuilt_folders_without_their_reports(
    module: CudaCi, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = printing_plans(monkeypatch, TAGS)
    with pytest.raises(PrebuiltWithoutReports, match="--prebuilt needs --wheel-reports"):
        anyio.run(functools.partial(CudaCi.release, module, TAGS["cuda-core"], prebuilt=[dag.directory()]))
    reports = dag.directory().with_new_file("r.json", "{}").file("r.json")
    with pytest.raises(PrebuiltWithoutReports, match="--wheel-reports needs --prebuilt"):
        anyio.run(functools.partial(CudaCi.release, module, TAGS["cuda-core"], wheel_reports=reports))
    assert asked == [], "refused before any plan or container"


def test_each_platforms_tooling_image_is_cibuildwheels_pin() -> None:
    from cibuildwheel.options import _get_pinned_container_images

    pinned = _get_pinned_container_images()
    assert {
        "linux/amd64": pinned["x86_64"]["manylinux_2_28"],
        "linux/arm64": pinned["aarch64"]["manylinux_2_28"],
    } == TOOLING_IMAGES, "keep graphparts.TOOLING_IMAGES equal to cibuildwheel's pinned manylinux_2_28 images"

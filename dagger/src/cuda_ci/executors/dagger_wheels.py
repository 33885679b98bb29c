"""The Dagger module's fan-out: one platform's wheel nodes as a graph of their own (``dagger call wheels``),
and the folders such graphs made, handed to a release (``dagger call release --prebuilt``) with the
sha256 their jobs reported. Imported by ``main.py`` only (the CLI never imports dagger)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import dagger
from cuda_ci.plan.release import Node, ReleasePlan
from dagger import dag


class WheelSelectionError(Exception):
    """A platform or identifier the plan builds no wheel for; the message lists what it builds."""


class PrebuiltWithoutReports(Exception):
    """Prebuilt wheels handed in without the sha256 their jobs reported."""


@dataclass(frozen=True)
class Handed:
    """What a call hands a plan's graph besides the source: wheel folders made earlier in the run and
    their jobs' reports, the nodes to run (a platform's graph), and the image its other nodes run in."""

    prebuilt: dagger.Directory | None = None
    reports: dagger.File | None = None
    only: Collection[str] | None = None
    tooling: tuple[str, str] | None = None  # (platform, image) of the nodes that are not wheel nodes


def known_platform(platform: str, images: Collection[str]) -> None:
    """Refuse, before any container, a platform no Linux wheel job runs on."""
    if platform not in images:
        raise WheelSelectionError(f"no Linux wheel job runs on platform {platform}: choose one of {', '.join(images)}")


def platform_wheel_nodes(plan: ReleasePlan, platform: str, identifiers: Sequence[str] | None) -> list[Node]:
    """The plan's wheel nodes of ``platform`` (of ``identifiers`` only, where given); refused when the plan
    builds none, or not one of ``identifiers``, there."""
    wheels = plan.of_kind("wheel")
    chosen = [n for n in wheels if n.platform == platform]
    if not chosen:
        platforms = sorted({str(n.platform) for n in wheels})
        raise WheelSelectionError(
            f"{plan.source.unit} builds no Linux wheel for platform {platform}: choose one of "
            f"{', '.join(platforms) or 'none (a pure unit has no wheel jobs)'}"
        )
    if identifiers:
        unknown = sorted(set(identifiers) - {str(n.identifier) for n in chosen})
        if unknown:
            raise WheelSelectionError(
                f"{', '.join(unknown)}: not an identifier {plan.source.unit} builds on {platform}; it builds "
                + ", ".join(str(n.identifier) for n in chosen)
            )
        chosen = [n for n in chosen if n.identifier in identifiers]
    return chosen


def merged(
    made: dict[str, dagger.Directory], node_ids: Sequence[str], handed: dagger.Directory | None = None
) -> dagger.Directory:
    """One folder holding what each of ``node_ids`` made (its wheels), or the folder handed in."""
    if not node_ids and handed is not None:
        return handed
    folder = dag.directory()
    for node_id in node_ids:
        folder = folder.with_directory(".", made[node_id])
    return folder


def handed_wheels(prebuilt: Sequence[dagger.Directory] | None, reports: dagger.File | None) -> Handed:
    """The wheel folders made earlier in the run, merged, and their reports; both or neither."""
    if not prebuilt:
        if reports is not None:
            raise PrebuiltWithoutReports("--wheel-reports needs --prebuilt: the folders the reports describe")
        return Handed()
    if reports is None:
        raise PrebuiltWithoutReports(
            "--prebuilt needs --wheel-reports: the wheel jobs' outputs as JSON (each file's sha256 and commit), "
            "so that no wheel changed after its job made it is released"
        )
    folder = dag.directory()
    for part in prebuilt:
        folder = folder.with_directory(".", part)
    return Handed(prebuilt=folder, reports=reports)


def fan_out_flags(prebuilt: bool, pull_request_base: str | None) -> list[str]:
    """``cuda-ci plan``'s flags of a fanned-out run."""
    return [
        *(["--prebuilt"] if prebuilt else []),
        *([f"--pull-request-base={pull_request_base}"] if pull_request_base else []),
    ]

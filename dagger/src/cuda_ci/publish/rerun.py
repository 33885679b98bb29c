"""What a re-run of publish finds already done: a release's assets and an index's files compared
with the release folder, and what each target did in one run.

Re-running any target on a finished release is a verified no-op: everything present and equal is
``nothing to do``; partly present, the rest is uploaded; anything different is refused with both
hashes (a draft's differing asset is replaced, a published release's never).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cuda_ci.infra.github import Asset
from cuda_ci.publish.releases import complete


def same_asset(asset: Asset, path: Path, sha256: str) -> bool:
    """Fully uploaded with these bytes (a failed upload may leave a ``starter`` asset: not the same)."""
    return complete(asset, path.stat().st_size, sha256)


@dataclass(frozen=True)
class AssetComparison:
    """This folder's assets against a release's: the same, missing there, or different there."""

    same: list[Path]
    missing: list[Path]
    different: list[tuple[Path, str, Asset]]  # (file, its sha256, the release's asset)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.different


def compare_assets(files: Sequence[tuple[Path, str]], existing: dict[str, Asset]) -> AssetComparison:
    """Each asset the release must have, compared by name, size and digest with what it holds."""
    same, missing, different = [], [], []
    for path, sha256 in files:
        asset = existing.get(path.name)
        if asset is None:
            missing.append(path)
        elif same_asset(asset, path, sha256):
            same.append(path)
        else:
            different.append((path, sha256, asset))
    return AssetComparison(same, missing, different)


def published_release_problems(comparison: AssetComparison, tag: str) -> list[str]:
    """Why a published release is not this folder's release (empty when every asset matches)."""
    return [f"{path.name} is missing from the published release of {tag}" for path in comparison.missing] + [
        f"{path.name} differs on the published release of {tag}: it holds {asset['digest'] or 'no digest'} "
        f"({asset['size']} bytes), this release folder's has sha256:{sha256} ({path.stat().st_size} bytes)"
        for path, sha256, asset in comparison.different
    ]


def target_outcomes(entries: Sequence[dict[str, str]]) -> dict[str, str]:
    """What each target did, from one run's ``publish-log.json`` entries: the line the CLI prints."""
    outcomes: dict[str, str] = {}
    for target in dict.fromkeys(e["target"] for e in entries):
        actions = [e["action"] for e in entries if e["target"] == target]
        uploaded = actions.count("uploaded")
        if uploaded:
            outcomes[target] = f"uploaded {uploaded} file(s)"
        elif "published" in actions:
            outcomes[target] = "published"
        elif "nothing-to-do" in actions:
            outcomes[target] = "nothing to do"
        else:
            outcomes[target] = "done"
        if "verified-install" in actions:
            outcomes[target] += ", installed back"
    return outcomes

"""Whether a release folder may be published, beyond its hashes: docs built, and the folder a release's.

The docs stage records its result in the manifest (``docs``: built or failed); publish refuses a
folder whose docs were not built or failed, naming the stage to re-run. A snapshot's or a
rehearsal's files never reach a real index or GitHub: publish takes such a folder only with
``--dry-run`` (the embedded indexes and the stand-in release).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cuda_ci.components import get_unit
from cuda_ci.errors import CudaCiError
from cuda_ci.manifest import DocsResult, Manifest, ReleaseFolder

DETAIL_LIMIT = 300


def folder_kind(manifest: Manifest) -> str | None:
    """``snapshot`` or ``rehearsal`` for folders that are never published for real; None for a release."""
    if manifest["snapshot"]:
        return "snapshot"
    if manifest.get("rehearsal", False):
        return "rehearsal"
    return None


def publish_refusals(folder: ReleaseFolder, manifest: Manifest, *, dry_run: bool) -> list[str]:
    """Every reason not to publish this folder (empty when it may be published)."""
    problems: list[str] = []
    kind = folder_kind(manifest)
    if kind is not None and not dry_run:
        what = f"{manifest['component']} {manifest['version']}"
        problems.append(
            f"{folder.path} is a {kind} ({what}"
            + (f" as {manifest['tag']} at {manifest['commit'][:12]}" if kind == "rehearsal" else "")
            + f"): a {kind}'s files never go to a real index or GitHub; "
            "publish it with --dry-run (embedded indexes), or release the tag itself"
        )
    return problems + docs_problems(folder, manifest)


def docs_problems(folder: ReleaseFolder, manifest: Manifest) -> list[str]:
    """The docs are part of what is published: built by the docs stage, for every component."""
    rerun = f"cuda-ci docs --release-dir {folder.path}"
    docs = manifest.get("docs")
    if docs is None:
        return [f"the docs of {folder.path} were not built: run the docs stage (`{rerun}`), then publish again"]
    if docs["status"] != "built":
        return [
            f"the docs stage failed for {folder.path} ({docs['detail']}): re-run it (`{rerun}`); "
            "a docs error in the sources needs a new commit and tag"
        ]
    unit = get_unit(manifest["component"])
    missing = [
        f"docs/{c.distribution}/index.html"
        for c in unit.components
        if not (folder.docs / c.distribution / "index.html").is_file()
    ]
    if missing:
        return [f"{', '.join(missing)} missing from {folder.path}, although the docs were built: re-run `{rerun}`"]
    return []


def built_docs(folder: ReleaseFolder) -> DocsResult:
    """``built``, naming the folders the docs stage wrote."""
    written = sorted(f"docs/{p.name}" for p in folder.docs.iterdir() if p.is_dir()) if folder.docs.is_dir() else []
    return DocsResult(status="built", detail=", ".join(written))


def failed_docs(error: CudaCiError) -> DocsResult:
    """``failed``, with the first line of each problem (cut to a readable length)."""
    lines = [(p.splitlines() or [""])[0] for p in error.problems]
    detail = "; ".join(lines)
    return DocsResult(status="failed", detail=detail[:DETAIL_LIMIT] + ("..." if len(detail) > DETAIL_LIMIT else ""))


@contextmanager
def docs_outcome(folder: ReleaseFolder, outcome: list[DocsResult]) -> Iterator[None]:
    """Append what the docs build in the body did (built, or failed with the error) to ``outcome``."""
    try:
        yield
    except CudaCiError as error:
        outcome.append(failed_docs(error))
        raise
    outcome.append(built_docs(folder))


def record_docs(folder: ReleaseFolder, result: DocsResult) -> None:
    """The docs result in the manifest, once validate has frozen it (nothing is recorded before)."""
    manifest = folder.load()
    if "validation" not in manifest:
        return
    manifest["docs"] = result
    folder.save(manifest)

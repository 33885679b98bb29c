"""Whether a release folder may be published, beyond its hashes: docs built, and the folder a release's.

The docs stage records its result in the manifest (``docs``: built or failed); publish refuses a
folder whose docs were not built or failed, naming the stage to re-run. A snapshot's or a
rehearsal's files never reach a real index or GitHub: publish takes such a folder only with
``--dry-run`` (the embedded indexes and the stand-in release).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.manifest import DocsResult, Manifest, ReleaseFolder, write_json_atomic

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
    if docs is None and (folder.path / DOCS_OUTCOME).is_file():  # docs ran beside validate, then the run stopped
        docs = read_docs_outcome(folder)
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


DOCS_OUTCOME = "docs-outcome.json"


def write_docs_outcome(folder: ReleaseFolder, result: DocsResult) -> None:
    """What docs did beside validate, until :func:`record_docs` can take it into the validated manifest."""
    write_json_atomic(folder.path / DOCS_OUTCOME, dict(result))


def read_docs_outcome(folder: ReleaseFolder) -> DocsResult:
    """The outcome docs left in the folder (a plain, small file), checked before use."""
    rerun = f"cuda-ci docs --release-dir {folder.path} --beside-validate"
    path = folder.path / DOCS_OUTCOME
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 64 * 1024:
        raise CudaCiError(f"{path} is missing (or not a plain file): docs did not run; run `{rerun}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CudaCiError(f"{path} cannot be read as JSON ({error}): run `{rerun}` again") from None
    shaped = isinstance(data, dict) and data.get("status") in ("built", "failed")
    if not shaped or not isinstance(data.get("detail"), str):
        raise CudaCiError(f"{path} is not what docs writes (status built|failed, detail): run `{rerun}` again")
    return DocsResult(status=data["status"], detail=data["detail"])

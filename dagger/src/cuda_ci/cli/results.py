"""What a command found or made, once, as data: the ``--json`` document (``schemas/<command>.schema.json``),
the text people read, and the source of the job summary and the step outputs on GitHub Actions.

A document is ``{"schema": 1, "command", "status": "succeeded" | "failed", "errors": [...], ...}``:
the command's own fields beside the envelope; a failed run has the envelope, the stage times and
whatever the command had found (``verify``'s checks, the CI jobs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from packaging.utils import canonicalize_name

from cuda_ci.infra.errors import location_of
from cuda_ci.infra.manifest import FileEntry, Manifest, ReleaseFolder
from cuda_ci.infra.secrets import redact, sanitize_url
from cuda_ci.infra.settings import Settings
from cuda_ci.publish.rerun import target_outcomes

SCHEMA_VERSION = 1
Document = dict[str, Any]


class ErrorEntry(TypedDict):
    message: str
    file: NotRequired[str]
    line: NotRequired[int]


@dataclass
class Result:
    """A command's result: its document's fields, the lines printed without ``--json``, the closing
    table of artifacts, and the problems that fail it after it was reported (``verify``, the CI jobs)."""

    data: Document = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    artifacts: Sequence[FileEntry] = ()
    problems: tuple[str, ...] = ()
    exit_code: int = 1  # where there are problems: 1 a failed check, 2 a usage error

    @property
    def exit_status(self) -> int:
        return self.exit_code if self.problems else 0


def error_entries(problems: Sequence[str]) -> list[ErrorEntry]:
    """Each problem's message (secrets removed) and the file and line it points at, where it does."""
    entries = []
    for problem in problems:
        entry = ErrorEntry(message=redact(problem))
        location = location_of(problem)
        if location is not None:
            entry["file"] = location.file
            if location.line is not None:
                entry["line"] = location.line
        entries.append(entry)
    return entries


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def document(command: str, data: Document, problems: Sequence[str], stages: Mapping[str, float]) -> Document:
    """The ``--json`` document: the envelope, the stage times, the command's fields; no secret in any of
    them (the job summary is made from it)."""
    doc: Document = _redacted(data)
    return {
        "schema": SCHEMA_VERSION,
        "command": command,
        "status": "failed" if problems else "succeeded",
        "errors": error_entries(problems),
        "stages": dict(stages),
        **doc,
    }


def distributions(manifest: Manifest) -> dict[str, str]:
    """Each distribution of the release and its version (one version per release unit)."""
    names = dict.fromkeys(f["distribution"] for f in manifest["files"] if f["distribution"])
    return {name: manifest["version"] for name in names if name}


def folder_facts(folder: Path) -> Document:
    """What a release folder holds, from its manifest: the source, the CI gate and every file."""
    manifest = ReleaseFolder(folder).load()
    return {
        "release_dir": str(folder),
        "component": manifest["component"],
        "tag": manifest["tag"],
        "version": manifest["version"],
        "commit": manifest["commit"],
        "snapshot": manifest["snapshot"],
        "rehearsal": manifest.get("rehearsal", False),
        "ci_gate": dict(manifest["ci_gate"]),
        "distributions": distributions(manifest),
        "files": [file_row(f) for f in manifest["files"]],
    }


def file_row(entry: FileEntry) -> Document:
    """A file of the release: name, path in the folder, kind, distribution, size, sha256."""
    return {
        "name": entry["name"],
        "path": entry["path"],
        "kind": entry["kind"],
        "distribution": entry["distribution"],
        "size": entry["size"],
        "sha256": entry["sha256"],
    }


def step_outputs(
    *, component: str, tag: str | None, versions: Mapping[str, str], release_dir: Path | None = None
) -> dict[str, str]:
    """The step outputs of a command that makes or reads a release (``release``, ``build``, ``publish``,
    ``plan``): ``release-dir``, ``component``, ``tag``, ``version`` and ``version-<distribution>`` for each
    distribution, and ``distributions`` (a JSON object of them, for ``fromJSON``)."""
    outputs = {"component": component, "tag": tag or ""}
    if release_dir is not None:
        outputs["release-dir"] = str(release_dir)
    if versions:
        outputs["version"] = next(iter(versions.values()))
    outputs.update({f"version-{name}": version for name, version in versions.items()})
    outputs["distributions"] = json.dumps(dict(versions), sort_keys=True)
    return outputs


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def plan_outputs(data: Document) -> dict[str, str]:
    """``plan``'s step outputs: the release's (no folder yet), ``commit``, ``matrix`` (the wheel jobs,
    for ``fromJSON``) and ``plan`` (the whole document, for ``check-wheels --plan``)."""
    source = data["source"]
    outputs = step_outputs(component=source["unit"], tag=source["tag"], versions=source["versions"])
    return {**outputs, "commit": source["commit"], "matrix": _compact(data["matrix"]), "plan": _compact(data)}


def outputs_of(data: Document) -> dict[str, str]:
    """A document's step outputs: a release folder's, a plan's, a wheel job's report (``wheels-<group>``)."""
    if "matrix" in data and "source" in data:
        return plan_outputs(data)
    if "report" in data and "output" in data:
        return {data["output"]: _compact(data["report"])}
    if "release_dir" not in data or "component" not in data:
        return {}
    return step_outputs(
        component=data["component"],
        tag=data.get("tag"),
        versions=data.get("distributions", {}),
        release_dir=Path(data["release_dir"]),
    )


# --- what publish did, with links ------------------------------------------------------------------


def _index_links(index: str, manifest: Manifest, settings: Settings) -> list[dict[str, str]]:
    simple = settings.indexes[index].simple_url  # type: ignore[index]
    links = []
    for name in distributions(manifest):
        project = canonicalize_name(name)
        if simple.rstrip("/") in ("https://pypi.org/simple", "https://test.pypi.org/simple"):
            url = f"{simple.rstrip('/').removesuffix('/simple')}/project/{project}/{manifest['version']}/"
        else:
            url = f"{simple.rstrip('/')}/{project}/"
        links.append({"label": f"{name} {manifest['version']}", "url": sanitize_url(url)})
    return links


def target_links(target: str, folder: Path, settings: Settings, dry_run: bool) -> list[dict[str, str]]:
    """Where a person sees what ``target`` published: the release page, each distribution's project
    page; in a dry-run the stand-in release's and embedded index's folders (their servers are gone)."""
    manifest = ReleaseFolder(folder).load()
    if target in ("github", "finalize"):
        if dry_run:
            return [{"label": "stand-in release", "url": (folder / "github-release").as_uri()}]
        tag = manifest["tag"] or ""
        repository = settings.github_repository or "OWNER/REPO"
        return [{"label": f"release {tag}", "url": f"{settings.github_server_url}/{repository}/releases/tag/{tag}"}]
    if dry_run:
        return [{"label": f"embedded {target} index", "url": (folder / "index" / target).as_uri()}]
    return _index_links(target, manifest, settings)


def publish_targets(
    entries: Sequence[dict[str, str]], folder: Path, settings: Settings, dry_run: bool
) -> list[Document]:
    """Per target of one publish run (its ``publish-log.json`` entries): what it did, each file it
    uploaded or found already there, and the links."""
    outcomes = target_outcomes(entries)
    return [
        {
            "target": target,
            "outcome": outcome,
            "uploaded": [e["file"] for e in entries if e["target"] == target and e["action"] == "uploaded"],
            "already_there": [e["file"] for e in entries if e["target"] == target and e["action"] == "skipped"],
            "links": target_links(target, folder, settings, dry_run),
        }
        for target, outcome in outcomes.items()
    ]

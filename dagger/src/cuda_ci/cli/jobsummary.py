"""The job summary (``GITHUB_STEP_SUMMARY``) of a command: its ``--json`` document as Markdown.

What a release manager looks for on the run's page: whether it succeeded and, if not, every problem
with the file it points at; the release (tag, commit, the CI gate with its run); the artifacts with
their sizes and sha256; the stage times; per publish target what was uploaded or found already there,
with links; the checks and jobs the command ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cuda_ci.cli.results import Document


def cell(value: object, limit: int = 300) -> str:
    """A table cell: one line, pipes escaped, cut at ``limit`` characters (the log has the rest)."""
    text = " ".join(str(value).split())
    return (text if len(text) <= limit else text[: limit - 1] + "…").replace("|", "\\|")


def code(value: object) -> str:
    return f"`{cell(value).replace('`', '')}`"


def link(label: str, url: str) -> str:
    return f"[{cell(label).replace('[', '(').replace(']', ')')}]({url.replace(' ', '%20').replace(')', '%29')})"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` per column: ``l`` or ``r`` (default ``l``)."""
    rule = ["---:" if a == "r" else "---" for a in align.ljust(len(header), "l")]
    lines = [f"| {' | '.join(header)} |", f"| {' | '.join(rule)} |"]
    return [*lines, *(f"| {' | '.join(row)} |" for row in rows), ""]


def _title(doc: Document) -> list[str]:
    what = " ".join(str(doc[k]) for k in ("component", "version") if doc.get(k))
    mode = [m for m, on in (("snapshot", doc.get("snapshot")), ("dry-run", doc.get("dry_run"))) if on]
    status = "succeeded" if doc["status"] == "succeeded" else "**failed**"
    suffix = f" ({', '.join(mode)})" if mode else ""
    return [f"## cuda-ci {doc['command']}{': ' + what if what else ''}{suffix}: {status}", ""]


def _errors(doc: Document) -> list[str]:
    lines = []
    for error in doc["errors"]:
        line = f", line {error['line']}" if "line" in error else ""
        where = f" ({code(error['file'])}{line})" if "file" in error else ""
        lines.append(f"- :x: {cell(error['message'], limit=2000)}{where}")
    return [*lines, ""] if lines else []


def _gate(gate: dict[str, Any]) -> str:
    return f"{gate['status']}: {link('ci.yml run', gate['run_url'])}" if gate.get("run_url") else gate["status"]


def _facts(doc: Document) -> list[str]:
    rows = [[name, render(doc[key])] for key, name, render in _FACTS if doc.get(key) is not None]
    return table(["", ""], rows) if rows else []


_FACTS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("tag", "tag", code),
    ("commit", "commit", code),
    ("ci_gate", "CI gate", _gate),
    ("release_dir", "release folder", code),
]


def _artifacts(doc: Document) -> list[str]:
    rows = [[code(f["path"]), f"{f['size']:,}", code(f["sha256"])] for f in doc.get("files", [])]
    return ["### Artifacts", "", *table(["file", "size (bytes)", "sha256"], rows, "lrl")] if rows else []


def _stages(doc: Document) -> list[str]:
    rows = [[cell(stage), f"{seconds:.1f}"] for stage, seconds in doc.get("stages", {}).items()]
    return ["### Stage times", "", *table(["stage", "seconds"], rows, "lr")] if rows else []


def _targets(doc: Document) -> list[str]:
    rows = [
        [
            cell(t["target"]),
            cell(t["outcome"]),
            ", ".join(code(f) for f in t["uploaded"]) or "—",
            ", ".join(code(f) for f in t["already_there"]) or "—",
            ", ".join(link(x["label"], x["url"]) for x in t["links"]),
        ]
        for t in doc.get("targets", [])
    ]
    header = ["target", "outcome", "uploaded", "already there", "links"]
    return ["### Published", "", *table(header, rows)] if rows else []


def _checks(doc: Document) -> list[str]:
    rows = [[c["status"], c["check"], c.get("file") or "", c["detail"]] for c in doc.get("checks", [])]
    rows += [[r["status"], "reproducible", r["name"], r["detail"]] for r in doc.get("results", [])]
    rows += [["passed", "verify", "", p] for p in doc.get("passed", [])]
    rows += [["failed", "verify", "", p] for p in doc.get("problems", [])]
    jobs = doc.get("jobs", [])
    rows += [["passed" if j["ok"] else "failed", j["name"], j.get("file", ""), j["detail"]] for j in jobs]
    rows = [[cell(value) for value in row] for row in rows]
    return ["### Checks", "", *table(["status", "check", "file", "detail"], rows)] if rows else []


def markdown(doc: Document) -> str:
    """The summary of one command's document."""
    parts = [_title, _errors, _facts, _artifacts, _stages, _targets, _checks]
    return "\n".join(line for part in parts for line in part(doc)) + "\n"

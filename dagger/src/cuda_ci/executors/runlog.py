"""What each plan node did, and ``run-log.json``: the same files whichever executor ran the nodes.

A command run as a plan node (``--node ID``) writes ``logs/<ID>.json`` in its release folder (times,
steps, notes, errors), then composes ``run-log.json`` from every node log there. The host executor
runs the nodes in one process and the Dagger module in one container each, and both end with the
same ``run-log.json``: whichever node ran last composed it from all of them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import write_json_atomic
from cuda_ci.infra.secrets import redact

LOGS_DIR = "logs"
RUN_LOG = "run-log.json"
RUN_LOG_SCHEMA = 2
NODE_LOG_LIMIT = 1 << 20  # a node log is small; anything larger is not one of ours
_COMPOSING = threading.Lock()  # nodes beside each other in one process compose one at a time


def node_log_name(node_id: str) -> str:
    """``publish:github`` → ``publish-github.json`` (a plain file name for every node id)."""
    return node_id.replace(":", "-").replace("/", "-") + ".json"


def node_record(node_id: str, reporter: Reporter, status: str, errors: Sequence[str]) -> dict[str, Any]:
    return {
        "node": node_id,
        "status": status,
        "errors": [redact(e) for e in errors],
        "stages": reporter.stage_seconds(),
        "steps": [vars(s) for s in reporter.steps],
        "notes": list(reporter.notes),
    }


def write_node_log(folder: Path, record: Mapping[str, Any]) -> None:
    """``logs/<node>.json``, then ``run-log.json`` composed anew; nothing where the folder is not there."""
    if not folder.is_dir() or folder.is_symlink():
        return
    logs = folder / LOGS_DIR
    if logs.is_symlink():
        return
    logs.mkdir(exist_ok=True)
    write_json_atomic(logs / node_log_name(str(record["node"])), dict(record))
    compose_run_log(folder)


def read_node_logs(folder: Path) -> list[dict[str, Any]]:
    """Every node log in the folder, oldest first; links, oversized and unreadable files are skipped."""
    logs = folder / LOGS_DIR
    if not logs.is_dir() or logs.is_symlink():
        return []
    records = []
    for path in sorted(logs.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > NODE_LOG_LIMIT:
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("node"), str):
            records.append(record)
    return records


def run_log_of(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``run-log.json`` of these node logs: every node's status and time, all their errors and notes,
    per-stage seconds."""
    stages: dict[str, float] = {}
    for record in records:
        for stage, seconds in dict(record.get("stages", {})).items():
            stages[stage] = round(stages.get(stage, 0.0) + float(seconds), 3)
    failed = any(r.get("status") != "succeeded" for r in records)
    return {
        "schema": RUN_LOG_SCHEMA,
        "status": "failed" if failed else "succeeded",
        "errors": [str(e) for r in records for e in r.get("errors", [])],
        "stages": stages,
        "nodes": [{"node": r["node"], "status": r.get("status"), "stages": r.get("stages", {})} for r in records],
        "steps": [s for r in records for s in r.get("steps", [])],
        "notes": [n for r in records for n in r.get("notes", [])],
    }


def compose_run_log(folder: Path) -> dict[str, Any]:
    """``run-log.json`` composed anew from every node log in the folder; what it now says."""
    with _COMPOSING:
        data = run_log_of(read_node_logs(folder))
        write_json_atomic(folder / RUN_LOG, data)
        return data


def error_lines(stderr: str, tail: int = 20) -> list[str]:
    """The problems a ``cuda-ci`` command printed (``error:`` lines, their continuation lines indented):
    a failed node's errors where it left no log of its own; else its last ``tail`` lines."""
    problems: list[list[str]] = []
    for line in stderr.splitlines():
        if line.startswith("error: "):
            problems.append([line.removeprefix("error: ")])
        elif problems and line.startswith("  "):
            problems[-1].append(line[2:])
    found = ["\n".join(lines) for lines in problems]
    return found or ["\n".join(stderr.strip().splitlines()[-tail:]) or "it printed nothing"]


def failed_node_record(node_id: str, exit_code: int, stderr: str) -> dict[str, Any]:
    """The log of a node that failed before it could write its own (no release folder yet, preflight)."""
    errors = [redact(e) for e in error_lines(stderr)]
    return {"node": node_id, "status": "failed", "errors": [f"{node_id} (exit code {exit_code}): {errors[0]}",
            *errors[1:]], "stages": {}, "steps": [], "notes": []}  # fmt: skip

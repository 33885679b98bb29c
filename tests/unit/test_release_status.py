"""``cuda-ci status``'s report: its JSON holds to the published schema, its text is one line per place."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from cuda_ci.infra.manifest import MANIFEST_NAME, SUMS_NAME
from cuda_ci.plan.tags import parse_tag
from cuda_ci.publish.status import ReleaseStatus, report_json, status_lines
from cuda_ci.publish.status_places import FileCheck, Place, expected_assets
from tests.helpers import REPO_ROOT, result_document

SCHEMA = REPO_ROOT / "dagger" / "src" / "cuda_ci" / "schemas" / "status.schema.json"
WHEEL = "cuda_core-1.3.1-cp315-cp315-win_arm64.whl"


def _status() -> ReleaseStatus:
    tag = parse_tag("cuda-core-v1.3.1")
    places = [
        Place("tag", "complete", "annotated, 0123456789ab, reachable from main"),
        Place("github", "incomplete", "draft", next_command="cuda-ci publish --release-dir D --target all"),
        Place("testpypi", "complete", "2 of 2 files"),
        Place(
            "pypi",
            "blocked",
            "1 of 2 files",
            blocked="pypi: ... cut cuda-core-v1.3.1.post1",
            files=(FileCheck(WHEEL, "missing", "a" * 64),),
        ),
    ]
    return ReleaseStatus(tag, "github-release", places)


def _check(report: dict[str, Any]) -> None:
    """The report, in its --json envelope, against schemas/status.schema.json."""
    document = {"schema": 1, "command": "status", "status": "succeeded", "errors": [], "stages": {}, **report}
    result_document(json.dumps(document), "status")


def test_the_json_report_holds_to_its_schema() -> None:
    report = report_json([_status()])
    _check(report)
    assert report["complete"] is False and report["releases"][0]["complete"] is False
    assert report["releases"][0]["places"][3]["files"] == [
        {"name": WHEEL, "state": "missing", "sha256": "a" * 64, "found": None}
    ]
    broken: dict[str, Any] = json.loads(json.dumps(report))
    broken["releases"][0]["places"][0]["state"] = "done"
    with pytest.raises(AssertionError, match="done"):
        _check(broken)


def test_the_text_report_is_one_line_per_place_and_says_what_finishes_it() -> None:
    lines = status_lines(_status())
    assert lines[0] == f"cuda-core-v1.3.1: cuda-core 1.3.1 (the GitHub release's {MANIFEST_NAME})"
    assert [line.split()[0] for line in lines[1:]] == ["tag", "github", "next:", "testpypi", "pypi", "blocked:"]
    assert lines[3].split(maxsplit=1) == ["next:", "cuda-ci publish --release-dir D --target all"]


def test_the_expected_assets_are_the_manifests_files_and_sha256sums() -> None:
    manifest: Any = {
        "files": [{"name": "b.whl", "size": 3, "sha256": "b" * 64}, {"name": "a.tar.gz", "size": 2, "sha256": "c" * 64}]
    }
    sums = f"{'c' * 64}  a.tar.gz\n{'b' * 64}  b.whl\n".encode()
    assert expected_assets(manifest, None) == [
        ("b.whl", 3, "b" * 64),
        ("a.tar.gz", 2, "c" * 64),
        (SUMS_NAME, len(sums), hashlib.sha256(sums).hexdigest()),
    ]
    assert expected_assets(manifest, (10, "d" * 64))[-1] == (MANIFEST_NAME, 10, "d" * 64)

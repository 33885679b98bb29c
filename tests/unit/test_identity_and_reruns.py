"""Snapshot identity, the manifest schema's rules for snapshots and rehearsals, and re-run comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from cuda_ci.build.identity import next_release, pretend_environ, snapshot_version
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.github import Asset
from cuda_ci.infra.manifest import check_schema
from cuda_ci.plan.selection import Selection
from cuda_ci.preflight.checks import PreflightRequest
from cuda_ci.publish.rerun import compare_assets, published_release_problems, target_outcomes

COMMIT = "3b908b6f84ccb511d3b6e9e0cde234de1feab458"


@pytest.mark.parametrize(
    ("scm", "snapshot"),
    [
        ("1.0.0", "1.0.1.dev0+g3b908b6"),  # at a tagged commit: never the tag's own version
        ("13.0.0rc1", "13.0.0rc2.dev0+g3b908b6"),
        ("1.0.0.post1", "1.0.0.post2.dev0+g3b908b6"),
        ("0.3.0b2.post1", "0.3.0b2.post2.dev0+g3b908b6"),
        ("13.0.1.dev1+gabcdef1", "13.0.1.dev1+gabcdef1"),  # after the tag: setuptools-scm's own
        ("0.1.dev1", "0.1.dev1+g3b908b6"),  # a dev version without the commit gets it
    ],
)
def test_a_snapshot_version_is_a_dev_version_with_the_commit(scm: str, snapshot: str) -> None:
    assert snapshot_version(scm, COMMIT) == snapshot


@given(
    release=st.tuples(*(st.integers(0, 40),) * 3),
    pre=st.sampled_from(["", "a1", "b3", "rc2"]),
    post=st.sampled_from(["", ".post1", ".post7"]),
)
def test_no_snapshot_version_is_ever_a_release_version(release: tuple[int, int, int], pre: str, post: str) -> None:
    tag_version = Version(".".join(map(str, release)) + pre + post)
    snapshot = Version(snapshot_version(str(tag_version), COMMIT))
    assert snapshot.is_devrelease and snapshot.local == "g3b908b6"
    assert snapshot > tag_version and Version(next_release(tag_version)) > tag_version


def test_the_pretend_version_reaches_every_distribution_of_the_unit() -> None:
    assert pretend_environ(get_unit("cuda-bindings"), "13.1.0") == {
        "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_CUDA_BINDINGS": "13.1.0",
        "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_CUDA_PYTHON": "13.1.0",
    }


def _manifest(**changes: object) -> dict[str, object]:
    manifest: dict[str, object] = {
        "schema": 1,
        "component": "cuda-pathfinder",
        "tag": None,
        "snapshot": True,
        "rehearsal": False,
        "version": "1.0.1.dev0+g3b908b6",
        "version_source": "pretend",
        "commit": COMMIT,
        "ci_gate": {"status": "snapshot", "run_url": None},
        "built_by": "host",
        "tools": {},
        "build_identifiers": [],
        "files": [
            {
                "name": "a.whl",
                "path": "dist/a.whl",
                "kind": "wheel",
                "distribution": "cuda-pathfinder",
                "size": 1,
                "sha256": "0" * 64,
            }
        ],
    }
    return manifest | changes


def test_the_schema_holds_snapshots_to_dev_versions_and_rehearsals_to_pretend_versions() -> None:
    check_schema(_manifest())
    with pytest.raises(CudaCiError, match="version"):
        check_schema(_manifest(version="1.0.0"))
    rehearsal = _manifest(
        tag="cuda-pathfinder-v1.1.0",
        snapshot=False,
        rehearsal=True,
        version="1.1.0",
        ci_gate={"status": "verified", "run_url": "https://example.invalid/run"},
    )
    check_schema(rehearsal)
    with pytest.raises(CudaCiError, match="version_source"):
        check_schema(rehearsal | {"version_source": "scm"})
    check_schema(rehearsal | {"docs": {"status": "built", "detail": "docs/cuda-pathfinder"}})
    with pytest.raises(CudaCiError, match="docs"):
        check_schema(rehearsal | {"docs": {"status": "skipped", "detail": ""}})


def test_rehearse_and_ref_are_refused_where_they_make_no_sense() -> None:
    with pytest.raises(UsageError, match="--rehearse needs --dry-run"):
        PreflightRequest(tag="v13.1.0", component=None, snapshot=False, dry_run=False, rehearse=True)
    # The combination of flags is the selection's to check, once (nowhere else repeats it).
    with pytest.raises(UsageError, match="--rehearse and --snapshot exclude each other"):
        Selection(component="cuda-core", snapshot=True, rehearse=True).request(dry_run=True)
    with pytest.raises(UsageError, match="--ref needs --rehearse"):
        Selection(tag="v13.1.0", ref="main").request(dry_run=True)


def _asset(name: str, data: bytes, digest: str | None = None) -> Asset:
    import hashlib

    digest = digest or f"sha256:{hashlib.sha256(data).hexdigest()}"
    return Asset(id=1, name=name, size=len(data), digest=digest, state="uploaded")


def test_assets_compare_as_same_missing_or_different(tmp_path: Path) -> None:
    import hashlib

    files = []
    for name in ("a.whl", "b.tar.gz", "c.json"):
        (tmp_path / name).write_bytes(name.encode())
        files.append((tmp_path / name, hashlib.sha256(name.encode()).hexdigest()))
    held = {"a.whl": _asset("a.whl", b"a.whl"), "b.tar.gz": _asset("b.tar.gz", b"other bytes")}
    comparison = compare_assets(files, held)
    assert [p.name for p in comparison.same] == ["a.whl"]
    assert [p.name for p in comparison.missing] == ["c.json"]
    assert [p.name for p, _, _ in comparison.different] == ["b.tar.gz"] and not comparison.complete
    problems = published_release_problems(comparison, "cuda-pathfinder-v1.0.0")
    assert problems[0] == "c.json is missing from the published release of cuda-pathfinder-v1.0.0"
    assert held["b.tar.gz"]["digest"] in problems[1] and files[1][1] in problems[1]
    assert compare_assets(files[:1], held).complete


def test_each_target_s_outcome_is_named() -> None:
    entries = [
        {"target": "github", "file": "", "action": "nothing-to-do", "detail": ""},
        {"target": "testpypi", "file": "x", "action": "skipped", "detail": ""},
        {"target": "testpypi", "file": "", "action": "nothing-to-do", "detail": ""},
        {"target": "testpypi", "file": "", "action": "verified-install", "detail": ""},
        {"target": "pypi", "file": "x", "action": "uploaded", "detail": ""},
        {"target": "finalize", "file": "", "action": "published", "detail": ""},
    ]
    assert target_outcomes(entries) == {
        "github": "nothing to do",
        "testpypi": "nothing to do, installed back",
        "pypi": "uploaded 1 file(s)",
        "finalize": "published",
    }

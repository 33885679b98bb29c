"""PyPI's upload window: since July 2026 (warehouse #19727) PyPI and TestPyPI refuse new files for a
release older than 14 days (``400 Uploading new files to releases older than 14 days is not allowed``),
even a no-op re-upload of a file they hold (warehouse #20251).

A resume of publish that would need new files on such a release is refused here, before anything is
uploaded, naming the release's age, the missing files and the way forward (a ``.postN`` release).
The age is read from PyPI's JSON API (``GET /pypi/<project>/<version>/json``: each file's
``upload_time_iso_8601`` and ``digests.sha256``); the release is as old as its first file. The
window is ``CUDA_CI_UPLOAD_WINDOW_DAYS`` (PyPI's 14 by default; 0 applies none). The embedded
pypiserver indexes of a dry-run have no window, and an index that answers no PyPI JSON API cannot
tell a release's age: there the window is not applied, and the run says so.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import Version

from cuda_ci.infra.components import ReleaseUnit, get_unit
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.httpclient import HttpClient, HttpUnavailable
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import Manifest
from cuda_ci.plan.tags import ReleaseTag, tag_name
from cuda_ci.publish.uploads import IndexTarget

WINDOW_VARIABLE = "CUDA_CI_UPLOAD_WINDOW_DAYS"


@dataclass(frozen=True)
class IndexRelease:
    """What an index's PyPI JSON API says of one release: its files (name → sha256) and first upload."""

    project: str
    version: str
    files: Mapping[str, str | None]
    first_upload: datetime | None  # None: no file of it there (or no time given)
    answered: bool = True  # False: the index answers no PyPI JSON API (its age is unknown)

    def age_days(self, now: datetime) -> float | None:
        return None if self.first_upload is None else (now - self.first_upload).total_seconds() / 86400


def json_api_base(simple_url: str) -> str | None:
    """Where an index's PyPI JSON API lives: ``https://pypi.org/simple/`` → ``https://pypi.org``;
    None for a simple URL of another shape (no JSON API known there)."""
    parts = urllib.parse.urlsplit(simple_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/simple") and path != "simple":
        return None
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path.removesuffix("simple").rstrip("/"), "", ""))


def read_release(
    http: HttpClient, simple_url: str, project: str, version: str, *, auth: tuple[str, str] | None = None
) -> IndexRelease:
    """``GET {base}/pypi/<project>/<version>/json`` as PyPI documents it; a 404 is a release with no file."""
    base = json_api_base(simple_url)
    if base is None:
        return IndexRelease(project, version, {}, None, answered=False)
    url = f"{base}/pypi/{canonicalize_name(project)}/{urllib.parse.quote(version)}/json"
    headers = {"Accept": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    response = http.request("GET", url, headers=headers, allow=frozenset({404}), ok=frozenset({200}))
    if response.status == 404:
        return IndexRelease(project, version, {}, None)
    try:
        urls = response.json()["urls"]
        files = {str(u["filename"]): u.get("digests", {}).get("sha256") for u in urls}
        times = [_parse_time(str(u["upload_time_iso_8601"])) for u in urls if u.get("upload_time_iso_8601")]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CudaCiError(f"{url} is not PyPI's JSON API answer ({type(error).__name__}: {error})") from None
    return IndexRelease(project, version, files, min(times, default=None))


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def next_post_tag(unit: ReleaseUnit, version: str) -> str:
    """The ``.postN`` tag that releases ``version``'s files again under a new version."""
    parsed = Version(version)
    post = (parsed.post or 0) + 1
    base = version.rsplit(".post", 1)[0] if parsed.post is not None else version
    return tag_name(unit, f"{base}.post{post}")


def window_closed(release: IndexRelease, window_days: int, now: datetime) -> bool:
    """Whether the index refuses new files for ``release`` (a window of 0 is never closed)."""
    age = release.age_days(now)
    return window_days > 0 and age is not None and age > window_days


def closed_window_problem(
    index: str, release: IndexRelease, missing: Sequence[str], unit: ReleaseUnit, window_days: int, now: datetime
) -> str:
    """The refusal: which release, how old, which files it lacks, and the way forward."""
    assert release.first_upload is not None
    age = release.age_days(now) or 0.0
    first = release.first_upload.isoformat(timespec="seconds").replace("+00:00", "Z")
    return (
        f"{index}: {release.project} {release.version} was first uploaded {age:.0f} days ago ({first}), and "
        f"{index} refuses new files on a release older than {window_days} days (PyPI's rule since July 2026, "
        f"warehouse #19727; {WINDOW_VARIABLE}), even a re-upload of a file it holds; it lacks "
        f"{len(missing)} file(s) of this release: {', '.join(missing)}. Nothing can add them now: cut "
        f"{next_post_tag(unit, release.version)} (a .postN release) from the same commit and release that"
    )


def window_detail(release: IndexRelease, window_days: int, now: datetime) -> str:
    """One line on a release's window, for preflight and status."""
    if not release.answered:
        return "its age is unknown (the index answers no PyPI JSON API): the upload window is not applied"
    if window_days == 0:
        return f"the upload window is not applied ({WINDOW_VARIABLE}=0)"
    age = release.age_days(now)
    if age is None:
        return f"no file of {release.version} there yet: the {window_days}-day window opens at the first upload"
    left = window_days - age
    if left >= 0:
        return f"first upload {age:.0f} days ago: new files accepted for {left:.1f} more day(s)"
    return f"first upload {age:.0f} days ago: past the {window_days}-day window, no new file is accepted"


def check_upload_windows(
    targets: Sequence[IndexTarget], manifest: Manifest, window_days: int, reporter: Reporter, now: datetime
) -> None:
    """Refuse, before anything is uploaded anywhere, a publish that would need new files on a release
    past the window of one of ``targets``; every such index and distribution named at once."""
    unit = get_unit(manifest["component"])
    http = HttpClient(on_retry=reporter.info)
    problems: list[str] = []
    for target in targets:
        for distribution in unit.distributions:
            release = read_release(http, target.simple_url, distribution, manifest["version"], auth=target.simple_auth)
            if not release.answered:
                reporter.note(f"upload window of {target.name}: {window_detail(release, window_days, now)}")
                continue
            missing = [n for n in dist_files(manifest, distribution) if n not in release.files]
            if missing and window_closed(release, window_days, now):
                problems.append(closed_window_problem(target.name, release, missing, unit, window_days, now))
    if problems:
        raise CudaCiError(*problems, "publish refused before any upload: nothing was uploaded")


def dist_files(manifest: Manifest, distribution: str) -> list[str]:
    """The names of the sdist and wheels of ``distribution`` in the manifest (what an index takes)."""
    name = canonicalize_name(distribution)
    return [
        f["name"]
        for f in manifest["files"]
        if f["kind"] in ("sdist", "wheel") and canonicalize_name(f["distribution"] or "") == name
    ]


def preflight_window(
    index: str,
    simple_url: str,
    auth: tuple[str, str] | None,
    release_tag: ReleaseTag,
    window_days: int,
    http: HttpClient,
    now: datetime,
) -> tuple[Literal["passed", "failed", "not-verified"], str]:
    """Preflight's ``upload-window`` finding for one index: a release (a re-run, or a ``.postN`` run
    again) whose files the index has held longer than the window can take no new file, so a release
    run of it cannot finish there. An index out of reach leaves it not verified: publish reads the
    window again before any upload."""
    version = str(release_tag.version)
    details = []
    for distribution in release_tag.unit.distributions:
        try:
            release = read_release(http, simple_url, distribution, version, auth=auth)
        except HttpUnavailable as error:
            detail = f"{index} ({simple_url}) is out of reach ({error.problems[0]}): publish checks it before uploading"
            return "not-verified", detail
        except CudaCiError as error:
            return "failed", f"{index} ({simple_url}): the age of {distribution} {version} cannot be read: {error}"
        if window_closed(release, window_days, now):
            assert release.first_upload is not None
            return "failed", (
                f"{index} already holds {len(release.files)} file(s) of {distribution} {version}, "
                f"{window_detail(release, window_days, now)} (PyPI's rule since July 2026; {WINDOW_VARIABLE}): "
                f"a release run of {release_tag.name} cannot add files there. If every file is there, finish "
                f"with `cuda-ci publish --release-dir <its release folder>` (see `cuda-ci status --tag "
                f"{release_tag.name}`); otherwise cut {next_post_tag(release_tag.unit, version)}"
            )
        details.append(f"{distribution} {version}: {window_detail(release, window_days, now)}")
    return "passed", f"{index}: " + "; ".join(details)

"""A package index as publish uses it: uploads with twine, then the release installed back from it.

Both are retried with the one bounded helper (:mod:`cuda_ci.infra.retry`), and only where a failure can
heal: twine's output tells the HTTP status (5xx and 429 heal, a refusal such as 403 does not) or a
dropped connection; an install heals while the index does not serve the files yet, never when it
refuses the credentials.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cuda_ci.infra.components import ReleaseUnit, dependency_closure
from cuda_ci.infra.envs import Env, install_release, install_third_party
from cuda_ci.infra.errors import CommandError, CudaCiError
from cuda_ci.infra.httpclient import HttpClient
from cuda_ci.infra.index import files_on_index
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import FileEntry, Manifest, ReleaseFolder
from cuda_ci.infra.process import PYTHON, clean_environ, run
from cuda_ci.infra.retry import Retry, Transient, heals
from cuda_ci.infra.safepaths import listed_file
from cuda_ci.infra.secrets import write_netrc
from cuda_ci.publish.provenance import find_attestations

UPLOAD_ATTEMPTS = 4
UPLOAD_BACKOFF = 2.0  # seconds, times the attempt number, at most 10
_TWINE_STATUS = re.compile(r"HTTPError: (\d{3}) .*")
_TWINE_RETRY = re.compile(r"Retry \d+ of \d+")  # twine's own retry of a 5xx (not "Retry with --verbose")
_TWINE_DROPPED = re.compile(
    r"requests\.exceptions\.(ConnectionError|ConnectTimeout|ReadTimeout|Timeout|ChunkedEncodingError)\b.*"
    r"|timed out after .*"
)
# An index refusing the credentials, as uv ("403 Forbidden", "(401 Unauthorized)") and pip ("HTTP error 403") say it.
_INSTALL_REFUSED = re.compile(r"\b40[13] (Unauthorized|Forbidden)\b|HTTP error 40[13]\b")
_NOT_SERVED_YET = re.compile(
    r"not found in the package registry|there is no version of|No matching distribution found"
    r"|Could not find a version that satisfies"
)
_OUT_OF_REACH = re.compile(r"server error \(5\d\d|HTTP error 5\d\d|error sending request|[Cc]onnection|timed out")


@dataclass(frozen=True, kw_only=True)
class IndexTarget:
    """An index to upload to: URLs, and the environment twine authenticates with (never printed)."""

    name: str
    upload_url: str
    simple_url: str
    twine_env: dict[str, str] = field(repr=False)
    simple_auth: tuple[str, str] | None = field(default=None, repr=False)  # HTTP Basic, for this index only


def twine_failure(output: str) -> str | None:
    """Why a failed twine run can heal (an HTTP status that heals, a dropped connection, a timeout),
    quoting twine; None for anything else, a refusal (401, 403, 400, 409...) above all."""
    status = _TWINE_STATUS.search(output)
    if status is not None:
        return status.group(0).strip() if heals(int(status.group(1))) else None
    dropped = _TWINE_DROPPED.search(output)
    return dropped.group(0).strip()[:300] if dropped is not None else None


def install_failure(output: str) -> str | None:
    """Why a failed install from an index can heal (it does not serve the files yet, or is out of
    reach); None when the index refused the credentials or the failure is of another kind."""
    if _INSTALL_REFUSED.search(output):
        return None
    if _NOT_SERVED_YET.search(output):
        return "the index does not serve it yet"
    if _OUT_OF_REACH.search(output):
        return "the index is out of reach"
    return None


def _refused_line(output: str) -> str:
    """The line of twine's output that says what went wrong: the HTTP status, else its last error."""
    status = _TWINE_STATUS.search(output)
    if status is not None:
        return status.group(0).strip()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return next((line for line in reversed(lines) if "ERROR" in line or "Error" in line), lines[-1] if lines else "")


def upload(
    target: IndexTarget, folder: ReleaseFolder, entries: Sequence[FileEntry], http: HttpClient, reporter: Reporter
) -> list[str]:
    """One twine run (twine uploads in the order given, and retries a 5xx itself, reported here); a run
    that fails in a way that can heal is run again, bounded, with only the files the index lacks.
    Returns the names that were not uploaded by this run, as the index held them already."""
    pending = list(entries)
    found_there: list[str] = []
    names = ", ".join(e["name"] for e in entries)

    def attempt(_: int) -> None:
        nonlocal pending
        try:
            output = _twine(target, folder, pending, reporter)
        except CommandError as error:
            output = error.problems[0]
            _report_twine_retries(output, target, reporter)
            # A file the index now holds with this sha256 is done, whoever put it there: a response
            # lost after the index stored it, or another run of the same release (the index then
            # refuses the name with a 400 or 409, which is no failure of the credentials).
            reason = twine_failure(output)
            held = _held(http, target, pending)
            already = [e["name"] for e in pending if held.get(e["name"]) == e["sha256"]]
            if already and reason is None:  # refused because the name is taken: by the same bytes
                reporter.info(f"{target.name}: {', '.join(already)} already there with the same sha256")
                found_there.extend(already)
            pending = [e for e in pending if e["name"] not in already]
            if not pending:
                return
            if reason is None:
                raise CudaCiError(
                    f"upload of {names} to {target.name} ({target.upload_url}) was refused: "
                    f"{_refused_line(output)}; not retried (a refusal does not heal): check the token "
                    "and its permission to upload these projects"
                ) from None
            raise Transient(reason) from None
        _report_twine_retries(output, target, reporter)

    retry = Retry(attempts=UPLOAD_ATTEMPTS, backoff=UPLOAD_BACKOFF, max_backoff=10.0, report=reporter.info)
    retry.run(
        f"upload of {names} to {target.name}",
        attempt,
        give_up=lambda failure, why: CudaCiError(
            f"upload of {names} to {target.name} ({target.upload_url}) {why}: {failure.reason}"
        ),
    )
    reporter.info(f"uploaded {names} to {target.name}")
    return found_there


def _held(http: HttpClient, target: IndexTarget, entries: Sequence[FileEntry]) -> dict[str, str | None]:
    held: dict[str, str | None] = {}
    for distribution in sorted({e["distribution"] or "" for e in entries}):
        held.update(files_on_index(http, target.simple_url, distribution, auth=target.simple_auth))
    return held


def _twine(target: IndexTarget, folder: ReleaseFolder, entries: Sequence[FileEntry], reporter: Reporter) -> str:
    names = ", ".join(e["name"] for e in entries)
    env = {**target.twine_env, "NO_COLOR": "1", "TERM": "dumb"}
    with tempfile.TemporaryDirectory(prefix="cuda-ci-upload-") as tmp:
        files, attested = _staged(folder, entries, Path(tmp))
        argv = [PYTHON, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar", "--repository-url"]
        argv += [target.upload_url, *(["--attestations"] if attested else []), *map(str, files)]
        what = f"twine upload of {names} to {target.name}"
        return run(argv, what=what, reporter=reporter, env=env, timeout=900).stdout


def _staged(folder: ReleaseFolder, entries: Sequence[FileEntry], tmp: Path) -> tuple[list[Path], bool]:
    """The files to hand twine: with attestations, copied beside them (twine pairs them by name)."""
    paths = [listed_file(folder.path, e["path"]) for e in entries]
    pairs = find_attestations(folder.path, folder.load()).pairs
    attestations = [pairs[p.name] for p in paths if p.name in pairs]
    if not attestations:
        return paths, False
    staged = [Path(shutil.copy2(p, tmp / p.name)) for p in [*paths, *attestations]]
    return staged, True


def _report_twine_retries(output: str, target: IndexTarget, reporter: Reporter) -> None:
    for line in output.splitlines():
        if "Received" in line or _TWINE_RETRY.search(line):
            reporter.info(f"{target.name}: {line.strip()}")


def install_back(
    target: IndexTarget,
    manifest: Manifest,
    unit: ReleaseUnit,
    reporter: Reporter,
    *,
    pre: bool,
    delay: float,
    attempts: int = 6,
    requirements: Sequence[str] | None = None,
    third_party: Sequence[str] = (),
) -> None:
    """Install the release from the index alone (``--isolated``: no other index, no pip configuration);
    its third-party requirements first, from the configured index (none of them may pull a component).
    Tried again, ``delay`` seconds apart, while the index does not serve the files yet."""
    wanted = list(requirements or [f"{d}=={manifest['version']}" for d in unit.distributions])
    what = f"install of {' '.join(wanted)} from {target.name}"

    def attempt(_: int) -> None:
        with tempfile.TemporaryDirectory(prefix="cuda-ci-installback-") as tmp:
            try:
                _install_once(
                    target, manifest, unit, reporter, Path(tmp), pre=pre, requirements=wanted, third_party=third_party
                )
            except CommandError as error:
                reason = install_failure(error.problems[0])
                if reason is None:
                    raise CudaCiError(
                        f"{' '.join(wanted)} could not be installed back from {target.name} ({target.simple_url}); "
                        "not retried (waiting does not heal this failure)",
                        *error.problems,
                    ) from None
                raise Transient(reason, detail=error.problems) from None

    retry = Retry(attempts=attempts, backoff=delay, max_backoff=delay, report=reporter.info)
    retry.run(
        what,
        attempt,
        give_up=lambda failure, why: CudaCiError(
            f"{' '.join(wanted)} could not be installed back from {target.name} ({target.simple_url}): "
            f"{why} ({failure.reason})",
            *failure.detail,
        ),
    )
    reporter.info(f"installed {' '.join(wanted)} back from {target.name}")


def _install_once(
    target: IndexTarget,
    manifest: Manifest,
    unit: ReleaseUnit,
    reporter: Reporter,
    tmp: Path,
    *,
    pre: bool,
    requirements: Sequence[str],
    third_party: Sequence[str],
) -> None:
    """One install into a fresh environment, then the installed versions checked."""
    env = Env.create(tmp / "env", reporter)
    what = f"install of {' '.join(requirements)} from {target.name}"
    install_third_party(env, third_party, what=what, reporter=reporter)
    install_release(
        env,
        source_args=["--no-cache-dir", "--index-url", target.simple_url, *(["--pre"] if pre else [])],
        requirements=requirements,
        siblings=[c.distribution for c in dependency_closure(unit)],
        snapshot=manifest["snapshot"],
        what=what,
        reporter=reporter,
        installer_env=_installer_env(target, tmp),
    )
    check = "from importlib.metadata import version\n" + "".join(
        f"assert version({d!r}) == {manifest['version']!r}\n" for d in unit.distributions
    )
    env.run_python(check, what=f"version check after install from {target.name}", reporter=reporter, cwd=tmp)


def _installer_env(target: IndexTarget, tmp: Path) -> dict[str, str] | None:
    """With credentials in the simple URL, the installer alone gets them (a private netrc file)."""
    if target.simple_auth is None:
        return None
    return clean_environ(NETRC=str(write_netrc(tmp, target.simple_url, target.simple_auth)))

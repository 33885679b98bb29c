"""The release folder and its manifest: the lineage of every file a release publishes."""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.safepaths import FolderProblem, folder_file, listed_file, unlisted_entries

SCHEMA = 1
MANIFEST_NAME = "release-manifest.json"
SUMS_NAME = "SHA256SUMS"
FileKind = Literal["sdist", "wheel", "source-archive", "sbom"]
GateStatus = Literal["verified", "not-verified", "snapshot"]
BuiltBy = Literal["host", "dagger"]
VersionSource = Literal["scm", "pretend"]
DocsStatus = Literal["built", "failed"]


class BuiltFrom(TypedDict):
    """The sdist (name and sha256) a wheel was built from, in the same build."""

    sdist: str
    sha256: str


class FileEntry(TypedDict):
    name: str
    path: str
    kind: FileKind
    distribution: str | None
    size: int
    sha256: str
    built_from: NotRequired[BuiltFrom]


class CiGate(TypedDict):
    status: GateStatus
    run_url: str | None


class ValidationEntry(TypedDict):
    check: str
    file: str | None
    status: Literal["passed", "skipped"]
    detail: str


class DocsResult(TypedDict):
    """What the docs stage did: ``built`` (``docs/<distribution>/`` for every component) or ``failed``."""

    status: DocsStatus
    detail: str


class Manifest(TypedDict):
    schema: int
    component: str
    tag: str | None
    snapshot: bool
    rehearsal: NotRequired[bool]
    version: str
    version_source: VersionSource
    commit: str
    ci_gate: CiGate
    built_by: BuiltBy
    tools: dict[str, str]
    build_identifiers: list[str]
    files: list[FileEntry]
    validation: NotRequired[list[ValidationEntry]]
    docs: NotRequired[DocsResult]


SCHEMA_FILE = Path(__file__).parents[1] / "schemas" / "release-manifest.schema.json"


@functools.cache
def _schema_validator() -> Callable[[Any], Any]:
    import fastjsonschema  # compiles the schema once; jsonschema's import alone costs seconds

    validator: Callable[[Any], Any] = fastjsonschema.compile(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    return validator


def check_schema(manifest: Mapping[str, Any]) -> None:
    """The published JSON Schema holds for every manifest written; a mismatch is a bug, never written."""
    import fastjsonschema

    try:
        _schema_validator()(manifest)
    except fastjsonschema.JsonSchemaValueException as error:
        where = "/".join(str(p) for p in error.path[1:]) or "(root)"
        raise CudaCiError(f"release manifest: {where}: {error.message}") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(
    folder: Path,
    path: Path,
    kind: FileKind,
    distribution: str | None,
    sha256: str | None = None,
    built_from: BuiltFrom | None = None,
) -> FileEntry:
    entry = FileEntry(
        name=path.name,
        path=path.relative_to(folder).as_posix(),
        kind=kind,
        distribution=distribution,
        size=path.stat().st_size,
        sha256=sha256 or sha256_of(path),
    )
    if built_from is not None:
        entry["built_from"] = built_from
    return entry


def sums_text(manifest: Manifest) -> str:
    """SHA256SUMS: bare names, so ``sha256sum -c`` passes beside the files as downloaded from GitHub."""
    return "".join(f"{f['sha256']}  {f['name']}\n" for f in sorted(manifest["files"], key=lambda f: f["name"]))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename it into place."""
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` under ``path``, complete or not at all: a full disk leaves no partial file, and the
    error names ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_file(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(path)) from None


def _new_file(path: Path) -> tuple[int, Path]:
    """A new, unique file beside ``path``, opened for writing. Its mode is 0666 less the umask, as
    any file a tool writes (``tempfile.mkstemp`` makes 0600: a published file readable by its owner alone)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unique temporary name", str(path))


def place(source: Path, target: Path) -> None:
    """Move a built file into the release folder, complete or not at all (also across filesystems)."""
    try:
        os.replace(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    partial = target.with_name(f".{target.name}.partial")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(target)) from None
    source.unlink()


# cuda-ci (its version from its git tags) and every tool of its own that builds, resolves or checks the
# files: all of them from this environment, the lock's versions (dagger/uv.lock).
OWN_TOOLS = (
    "cuda-ci",
    "cibuildwheel",
    "uv",
    "build",
    "twine",
    "auditwheel",
    "check-wheel-contents",
    "packaging",
    "setuptools-scm",
)


def tool_versions() -> dict[str, str]:
    tools = {"python": sys.version.split()[0]}
    for name in OWN_TOOLS:
        try:
            tools[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tools


@dataclass(frozen=True)
class ReleaseFolder:
    """``dist/``, ``assets/``, ``docs/``, the manifest, ``SHA256SUMS`` and the logs."""

    path: Path

    @property
    def dist(self) -> Path:
        return self.path / "dist"

    @property
    def assets(self) -> Path:
        return self.path / "assets"

    @property
    def docs(self) -> Path:
        return self.path / "docs"

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    @property
    def sums_path(self) -> Path:
        return self.path / SUMS_NAME

    @classmethod
    def existing(cls, path: Path) -> ReleaseFolder:
        """A folder that ``build`` made; a usage error naming what is missing otherwise."""
        if not path.is_dir():
            raise UsageError(f"--release-dir {str(path)!r} does not exist or is not a directory")
        folder = cls(path)
        if not folder.manifest_path.is_file():
            raise UsageError(
                f"--release-dir {str(path)!r} is not a release folder: {MANIFEST_NAME} is missing "
                "(make one with `cuda-ci build` or `cuda-ci release --no-publish`)"
            )
        return folder

    @classmethod
    def fresh(cls, path: Path) -> ReleaseFolder:
        """Where a build may write a new release folder: a new or empty folder. Checked before
        anything is written, so that nothing of the user's (or of an earlier run's record) is lost."""
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {str(path)!r} is a file, not a directory: choose a folder")
        folder = cls(path)
        if folder.manifest_path.exists():
            raise UsageError(f"--out {str(path)!r} already holds a release folder: remove it or choose another --out")
        held = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
        if held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise UsageError(
                f"--out {str(path)!r} is not empty (it holds {shown}): a release folder is written only into "
                "a new or empty folder; choose another --out, or empty this one"
            )
        return folder

    def load(self) -> Manifest:
        folder_file(self.path, MANIFEST_NAME)  # a plain file, never a link to one elsewhere
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CudaCiError(f"{self.manifest_path} cannot be read as JSON: {error}") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise CudaCiError(f"{self.manifest_path} is not a schema {SCHEMA} release manifest")
        try:  # paths, names and hashes have their published shape before any is used
            check_schema(data)
        except CudaCiError as error:
            raise CudaCiError(f"{self.manifest_path}: {error.problems[0]}; rebuild the release folder") from None
        manifest: Manifest = data  # type: ignore[assignment]
        return manifest

    def save(self, manifest: Manifest) -> None:
        check_schema(manifest)
        write_json_atomic(self.manifest_path, manifest)
        self.write_sums(manifest)

    def write_sums(self, manifest: Manifest) -> None:
        write_atomic(self.sums_path, sums_text(manifest).encode("utf-8"))

    def verify_hashes(self, manifest: Manifest) -> list[str]:
        """Problems between the manifest and the files on disk (empty when they agree).

        Only listed plain files inside the folder are hashed (:func:`cuda_ci.infra.safepaths.listed_file`);
        anything else in ``dist/`` or ``assets/`` is a problem, as is any listed path that is not one.
        """
        problems = unlisted_entries(self.path, {f["path"] for f in manifest["files"]})
        for entry in manifest["files"]:
            try:
                path = listed_file(self.path, entry["path"])
            except FolderProblem as error:
                problems.append(error.problems[0])
                continue
            actual = sha256_of(path)
            if actual != entry["sha256"] or path.stat().st_size != entry["size"]:
                problems.append(
                    f"{entry['path']} changed since it was built: sha256 {actual}, "
                    f"manifest says {entry['sha256']}; rebuild, never edit, a release folder"
                )
        return problems

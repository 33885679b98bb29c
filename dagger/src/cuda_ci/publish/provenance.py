"""PEP 740 attestations over the dist files: made in GitHub Actions, paired and checked anywhere.

Attestations live in ``attestations/`` as ``<dist file>.publish.attestation``. They sign the files
the manifest and ``SHA256SUMS`` hash, so they stay outside both. Signing needs the Actions OIDC
token (the release workflow's ``sign`` job); elsewhere it is skipped with a note. The checks here
are the local ones: pairing, and each statement's subject naming the file with its sha256. The
Sigstore signature itself is verified with ``pypi-attestations verify`` where the trust root can
be reached.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import SUMS_NAME, Manifest, ReleaseFolder
from cuda_ci.infra.process import PYTHON, clean_environ, run
from cuda_ci.infra.safepaths import FolderProblem, folder_file, listed_file

SUFFIX = ".publish.attestation"
ATTESTATIONS_DIR = "attestations"


def attestation_name(dist_name: str) -> str:
    return f"{dist_name}{SUFFIX}"


@dataclass(frozen=True)
class Pairing:
    pairs: dict[str, Path]  # dist file name → its attestation, a plain file inside the folder
    strays: list[str]  # attestations of no dist file in the manifest (names)
    problems: list[str]  # attestations that are links or not plain files, and a linked attestations/


def find_attestations(root: Path, manifest: Manifest, *, flat: bool = False) -> Pairing:
    """The attestations in ``root/attestations/`` (beside the other files in a ``flat`` folder of
    downloaded assets), each paired with its dist file, through the one plain-file check."""
    dists = {f["name"] for f in manifest["files"] if f["kind"] in ("sdist", "wheel")}
    pairs: dict[str, Path] = {}
    strays: list[str] = []
    problems: list[str] = []
    folder = root if flat else root / ATTESTATIONS_DIR
    if not flat and folder.is_symlink():
        return Pairing({}, [], [f"{ATTESTATIONS_DIR}/ is a symbolic link: attestations must be plain files inside it"])
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    for name in names:
        if flat and not name.endswith(SUFFIX):
            continue
        dist = name.removesuffix(SUFFIX)
        if not name.endswith(SUFFIX) or dist not in dists:
            strays.append(name)
            continue
        try:
            pairs[dist] = folder_file(root, name if flat else f"{ATTESTATIONS_DIR}/{name}")
        except FolderProblem as error:
            problems.append(error.problems[0])
    return Pairing(pairs, strays, problems)


def unlisted_upload_problems(folder: ReleaseFolder, manifest: Manifest) -> list[str]:
    """What publish would upload beside the manifest's files, refused unless plain and paired:
    ``SHA256SUMS`` and the attestations."""
    attestations = find_attestations(folder.path, manifest)
    problems = list(attestations.problems)
    problems += [
        f"{ATTESTATIONS_DIR}/{name} attests no file of this release: remove it (the sign job makes one per dist file)"
        for name in attestations.strays
    ]
    try:
        folder_file(folder.path, SUMS_NAME)
    except FolderProblem as error:
        problems.append(error.problems[0])
    return problems


def attestation_problems(path: Path, dist_name: str, sha256: str) -> list[str]:
    """What is wrong with one attestation of ``dist_name`` (empty when its subject is the file)."""
    from pydantic import ValidationError
    from pypi_attestations import Attestation

    try:
        attestation = Attestation.model_validate_json(path.read_text(encoding="utf-8"))
        statement = json.loads(attestation.envelope.statement)
    except (ValidationError, ValueError) as error:
        return [f"{path.name} is not a PEP 740 attestation: {str(error).splitlines()[0]}"]
    subjects = {s.get("name"): s.get("digest", {}).get("sha256") for s in statement.get("subject", [])}
    if dist_name not in subjects:
        return [f"{path.name} attests {', '.join(map(str, subjects)) or 'nothing'}, not {dist_name}"]
    if subjects[dist_name] != sha256:
        return [f"{path.name} attests sha256 {subjects[dist_name]}, but {dist_name} has sha256 {sha256}"]
    return []


def sign_release(folder: ReleaseFolder, environ: Mapping[str, str], reporter: Reporter) -> list[Path]:
    """Sign every dist file into ``attestations/`` with the Actions identity; skip with a note elsewhere."""
    if not environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        reporter.note(
            "sign: skipped, no GitHub Actions OIDC token here; attestations are made by the release workflow's sign job"
        )
        return []
    manifest = folder.load()
    dists = [listed_file(folder.path, f["path"]) for f in manifest["files"] if f["kind"] in ("sdist", "wheel")]
    oidc = {k: environ[k] for k in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN") if k in environ}
    argv = [PYTHON, "-m", "pypi_attestations", "sign", *map(str, dists)]
    run(argv, what="pypi-attestations sign", reporter=reporter, env=clean_environ(**oidc))
    target = folder.path / ATTESTATIONS_DIR
    target.mkdir(exist_ok=True)
    made = []
    for dist in dists:
        made_here = dist.with_name(attestation_name(dist.name))
        shutil.move(str(made_here), target / made_here.name)  # dist/ holds exactly the manifest's files
        made.append(target / made_here.name)
    return made

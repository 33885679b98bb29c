"""Publish: GitHub draft with assets → TestPyPI → PyPI → un-draft. Each target resumable on its own.

Nothing is uploaded until every file's hash is re-checked against the manifest and every file the
index already holds is known to match; a re-run uploads only what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import Version

from cuda_ci.infra.components import ReleaseUnit, get_unit
from cuda_ci.infra.declared import install_extras
from cuda_ci.infra.errors import CudaCiError, UsageError
from cuda_ci.infra.git import Git
from cuda_ci.infra.github import Release
from cuda_ci.infra.httpclient import HttpClient
from cuda_ci.infra.index import files_on_index
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import FileEntry, Manifest, ReleaseFolder, sha256_of, sums_text
from cuda_ci.infra.process import PYTHON, clean_environ, run
from cuda_ci.infra.runtime_requirements import plan_runtime
from cuda_ci.infra.safepaths import listed_file
from cuda_ci.publish.provenance import find_attestations, unlisted_upload_problems
from cuda_ci.publish.publish_log import PublishLog
from cuda_ci.publish.refusals import folder_kind
from cuda_ci.publish.releases import ReleaseHost, make_latest
from cuda_ci.publish.rerun import compare_assets, published_release_problems, same_asset
from cuda_ci.publish.served import served_problems
from cuda_ci.publish.uploads import IndexTarget, install_back, upload
from cuda_ci.validate.distfiles import identify

Target = Literal["github", "testpypi", "pypi", "finalize"]
TARGETS: tuple[Target, ...] = ("github", "testpypi", "pypi", "finalize")


def check_release_folder(folder: ReleaseFolder, manifest: Manifest, repo: Path | None) -> None:
    """Refuse, before any upload, a folder that is not exactly what validate froze."""
    problems = [*folder.verify_hashes(manifest), *unlisted_upload_problems(folder, manifest)]
    if "validation" not in manifest:
        problems.append(
            f"{folder.manifest_path} has no validation: run `cuda-ci validate --release-dir {folder.path}` first"
        )
    if not folder.sums_path.is_file() or folder.sums_path.read_text(encoding="utf-8") != sums_text(manifest):
        problems.append(f"{folder.sums_path} does not match {folder.manifest_path}: rebuild the release folder")
    if repo is not None and manifest["tag"]:
        _check_tag_unmoved(repo, manifest, problems)
    if problems:
        raise CudaCiError(*problems, "publish refused: nothing was uploaded")


def _check_tag_unmoved(repo: Path, manifest: Manifest, problems: list[str]) -> None:
    try:
        git = Git.open(repo)
    except UsageError:
        return
    tag = manifest["tag"]
    current = git.commit_of(f"refs/tags/{tag}")
    if current is not None and current != manifest["commit"]:
        problems.append(
            f"tag {tag} now points to {current[:12]}, but this release was built from {manifest['commit'][:12]}: "
            "a tag must never move; build the release again from the tag as it is"
        )


def asset_files(folder: ReleaseFolder, manifest: Manifest) -> list[tuple[Path, str]]:
    """Every GitHub asset with the sha256 it must have: the manifest's files, SHA256SUMS, the manifest,
    and the attestations where the sign job made them."""
    files = [(listed_file(folder.path, f["path"]), f["sha256"]) for f in manifest["files"]]
    attestations = sorted(find_attestations(folder.path, manifest).pairs.values())
    return [
        *files,
        (folder.sums_path, sha256_of(folder.sums_path)),
        (folder.manifest_path, sha256_of(folder.manifest_path)),
        *((path, sha256_of(path)) for path in attestations),
    ]


def _verify_published(
    host: ReleaseHost, release: Release, folder: ReleaseFolder, manifest: Manifest, log: PublishLog, target: str
) -> None:
    """A published release is success when it holds every asset as this folder has it; else refused."""
    tag = release["tag_name"]
    comparison = compare_assets(asset_files(folder, manifest), {a["name"]: a for a in host.assets(release)})
    problems = published_release_problems(comparison, tag)
    if problems:
        raise CudaCiError(
            *problems,
            f"the release {tag} on {host.describe()} is already published ({release['html_url']}) with other assets: "
            "assets of a published release are never replaced; nothing was uploaded (cut a .postN tag)",
        )
    if target == "github":  # each asset found already there, as an index's files are
        for path in comparison.same:
            log.add(target, path.name, "skipped", "on the published release with the same digest")
    log.add(target, None, "nothing-to-do", f"published with all {len(comparison.same)} assets the same")


def publish_github(
    host: ReleaseHost, folder: ReleaseFolder, manifest: Manifest, log: PublishLog, reporter: Reporter
) -> Release:
    """Create or reuse the draft, then upload every asset not already there with the same digest.

    A published release holding every asset with the same digest is a finished publish: nothing to do.
    """
    tag = _release_tag(manifest)
    release = host.find(tag, adopt=log.drafts())
    if release is not None and not release["draft"]:
        _verify_published(host, release, folder, manifest, log, "github")
        reporter.info(f"github: nothing to do, {tag} is published with every asset the same")
        return release
    if release is None:
        prerelease = Version(manifest["version"]).is_prerelease
        kind = folder_kind(manifest)  # a snapshot's or rehearsal's stand-in release says so
        name = f"{manifest['component']} {manifest['version']}" + (f" ({kind})" if kind else "")
        release = host.create_draft(
            tag, name, _release_body(manifest), prerelease, manifest["commit"], record=log.record_draft
        )
    existing = {a["name"]: a for a in host.assets(release)}
    if compare_assets(asset_files(folder, manifest), existing).complete:
        log.add("github", None, "nothing-to-do", "the draft holds every asset with the same digest")
    for path, sha256 in asset_files(folder, manifest):
        _recheck(path, sha256)
        asset = existing.get(path.name)
        if asset is not None and same_asset(asset, path, sha256):
            log.add("github", path.name, "skipped", "already uploaded with the same digest")
            continue
        if asset is not None:
            host.delete(asset)
            log.add("github", path.name, "deleted", f"draft asset differed ({asset['digest']})")
        host.upload(release, path)
        reporter.info(f"uploaded {path.name} to {host.describe()}")
        log.add("github", path.name, "uploaded", sha256)
    return release


def _release_tag(manifest: Manifest) -> str:
    if manifest["tag"]:
        return manifest["tag"]
    return f"snapshot-{manifest['component']}-{manifest['commit'][:7]}"


def _release_body(manifest: Manifest) -> str:
    gate = manifest["ci_gate"]
    return (
        f"{manifest['component']} {manifest['version']} from {manifest['commit']}.\n\n"
        f"CI gate: {gate['status']} {gate['run_url'] or ''}\n\nVerify with SHA256SUMS and release-manifest.json."
    )


def _recheck(path: Path, sha256: str) -> None:
    actual = sha256_of(path)
    if actual != sha256:
        raise CudaCiError(
            f"{path.name} changed after validation: sha256 {actual}, manifest says {sha256}; upload refused"
        )


def finalize(host: ReleaseHost, folder: ReleaseFolder, manifest: Manifest, log: PublishLog, reporter: Reporter) -> None:
    """Un-draft, once every asset is there with its digest."""
    tag = _release_tag(manifest)
    release = host.find(tag, adopt=log.drafts())
    if release is None:
        raise CudaCiError(
            f"no draft release of {tag} on {host.describe()}: run `cuda-ci publish --target github` first"
        )
    if not release["draft"]:
        _verify_published(host, release, folder, manifest, log, "finalize")
        reporter.info(f"finalize: nothing to do, {tag} is already published with every asset the same")
        return
    comparison = compare_assets(asset_files(folder, manifest), {a["name"]: a for a in host.assets(release)})
    missing = [p.name for p in comparison.missing] + [p.name for p, _, _ in comparison.different]
    if missing:
        raise CudaCiError(
            f"the draft of {tag} lacks or differs in {', '.join(missing)}: run `cuda-ci publish --target github` again"
        )
    latest = make_latest(get_unit(manifest["component"]), Version(manifest["version"]), host.published_tags())
    host.publish(release, latest)
    log.add("finalize", None, "published", f"{release['html_url']} (latest: {'yes' if latest else 'no'})")


def _dists_in_upload_order(folder: ReleaseFolder, manifest: Manifest, unit: ReleaseUnit) -> list[FileEntry]:
    """The unit's components in registry order (bindings before the metapackage); sdist first."""
    order = {canonicalize_name(c.distribution): i for i, c in enumerate(unit.components)}
    dists = [f for f in manifest["files"] if f["kind"] in ("sdist", "wheel")]
    return sorted(
        dists, key=lambda f: (order[canonicalize_name(f["distribution"] or "")], f["kind"] != "sdist", f["name"])
    )


def plan_index_uploads(entries: Sequence[FileEntry], held: dict[str, str | None], index: str) -> list[FileEntry]:
    """The files still to upload; refuses (before any upload) a file the index holds with another hash."""
    conflicts = [
        f"{e['name']} is already on {index} with sha256 {held[e['name']]}, "
        f"but this release's file has sha256 {e['sha256']}: "
        "a file name can never be reused on an index; release a .postN"
        for e in entries
        if e["name"] in held and held[e["name"]] != e["sha256"]
    ]
    if conflicts:
        raise CudaCiError(*conflicts, f"upload to {index} refused: nothing was uploaded")
    return [e for e in entries if e["name"] not in held]


IndexPhase = Literal["upload", "install-back"]
BOTH_PHASES: tuple[IndexPhase, ...] = ("upload", "install-back")


def publish_index(
    target: IndexTarget,
    folder: ReleaseFolder,
    manifest: Manifest,
    log: PublishLog,
    reporter: Reporter,
    *,
    pre: bool,
    install_delay: float,
    phases: Sequence[IndexPhase] = BOTH_PHASES,
    siblings: Sequence[Path] = (),
) -> None:
    """Upload what the index lacks, check that it serves every file as built, then install the
    release back from it in a fresh environment (``phases``: the upload or the install-back alone,
    for a job that holds the upload's credentials and one that runs the installed code).

    ``siblings``: the dry-run's checked sibling wheels; a real publish takes siblings from the index."""
    unit = get_unit(manifest["component"])
    http = HttpClient(on_retry=reporter.info)
    entries = _dists_in_upload_order(folder, manifest, unit)
    if "upload" in phases:
        _upload_missing(target, folder, entries, log, reporter, http)
    problems = served_problems(http, target.name, target.simple_url, entries, target.simple_auth)
    if problems:
        name = target.name
        raise CudaCiError(*problems, f"publish --target {name} is not done: {name} does not serve the release as built")
    log.add(target.name, None, "verified-served", f"all {len(entries)} files served with the manifest's sha256")
    reporter.info(f"{target.name} serves all {len(entries)} files with the manifest's sha256")
    if "install-back" not in phases:
        return
    requirements, third_party = _install_back_plan(folder, manifest, unit, siblings)
    install_back(
        target,
        manifest,
        unit,
        reporter,
        pre=pre,
        delay=install_delay,
        requirements=requirements,
        third_party=third_party,
    )
    log.add(target.name, None, "verified-install", f"{', '.join(unit.distributions)} {manifest['version']}")


def _upload_missing(
    target: IndexTarget,
    folder: ReleaseFolder,
    entries: Sequence[FileEntry],
    log: PublishLog,
    reporter: Reporter,
    http: HttpClient,
) -> None:
    held: dict[str, str | None] = {}
    for distribution in sorted({e["distribution"] or "" for e in entries}):
        held.update(files_on_index(http, target.simple_url, distribution, auth=target.simple_auth))
    todo = plan_index_uploads(entries, held, target.name)
    for entry in entries:
        if entry not in todo:
            log.add(target.name, entry["name"], "skipped", "already on the index with the same sha256")
    if not todo:
        log.add(target.name, None, "nothing-to-do", f"all {len(entries)} files already there with the same sha256")
        reporter.info(f"{target.name}: nothing to upload, every file is there with the same sha256")
    for entry in todo:
        _recheck(listed_file(folder.path, entry["path"]), entry["sha256"])
    # One twine run; twine uploads in the order given (bindings before the metapackage).
    found_there = upload(target, folder, todo, http, reporter) if todo else []
    for entry in todo:
        if entry["name"] in found_there:
            log.add(target.name, entry["name"], "skipped", "put there meanwhile with the same sha256 (another run)")
        else:
            log.add(target.name, entry["name"], "uploaded", entry["sha256"])


def seed_index(target: IndexTarget, wheels: Sequence[Path], reporter: Reporter) -> None:
    """Put sibling wheels (built from the same commit) on an embedded index, once."""
    http = HttpClient(on_retry=reporter.info)
    for wheel in wheels:
        name = str(identify(wheel).name)
        if wheel.name in files_on_index(http, target.simple_url, name):
            continue
        argv = [PYTHON, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar"]
        run(
            [*argv, "--repository-url", target.upload_url, str(wheel)],
            what=f"seeding {target.name} with {wheel.name}",
            reporter=reporter,
            env=target.twine_env,
        )


def _install_back_plan(
    folder: ReleaseFolder, manifest: Manifest, unit: ReleaseUnit, siblings: Sequence[Path]
) -> tuple[list[str], list[str]]:
    """The release's distributions with their declared install extras, and the third-party
    requirements those (and ``siblings``, a dry-run's checked same-commit wheels) declare. Nothing
    else in the folder is read: the manifest's wheels are checked, and a real publish takes the
    siblings, with what they require, from the index it publishes to."""
    extras = install_extras(folder.dist, unit)
    requirements = [
        f"{d}[{','.join(extras[d])}]=={manifest['version']}" if extras.get(d) else f"{d}=={manifest['version']}"
        for d in unit.distributions
    ]
    own = [listed_file(folder.path, f["path"]) for f in manifest["files"] if f["kind"] == "wheel"]
    wheels = [*own, *siblings]
    plan = plan_runtime(requirements, wheels, what="install back", refuse_missing=False)
    return requirements, list(plan.third_party)


def twine_environment(
    token: str | None,
    in_github_actions: bool,
    index: str,
    token_variable: str,
    username: str = "__token__",
    *,
    oidc: Mapping[str, str],
) -> dict[str, str]:
    """twine's environment: the token (or the upload URL's password) as TWINE_PASSWORD, or trusted
    publishing inside Actions (``oidc``: the Actions OIDC variables, from the settings)."""
    if token:
        return clean_environ(TWINE_USERNAME=username, TWINE_PASSWORD=token, TWINE_NON_INTERACTIVE="1")
    if in_github_actions:
        # twine itself exchanges the Actions OIDC token for a short-lived upload token.
        return clean_environ(TWINE_NON_INTERACTIVE="1", **oidc)
    raise CudaCiError(
        f"{token_variable} is not set and this is not GitHub Actions (trusted publishing): cannot upload to {index}"
    )

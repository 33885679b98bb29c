"""validate's install check: this run's wheels into a fresh environment, from this run only, imported."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from cuda_ci.build.identifiers import installable_here, interpreter_of, wheel_identifiers
from cuda_ci.infra.components import ReleaseUnit
from cuda_ci.infra.declared import install_extras
from cuda_ci.infra.envs import Env, install_from_run
from cuda_ci.infra.errors import CommandError, CudaCiError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import Manifest, ReleaseFolder
from cuda_ci.infra.process import PYTHON
from cuda_ci.validate.distfiles import DistFile, identify
from cuda_ci.validate.findings import Findings


def _installable(dists: list[DistFile], python: str) -> list[DistFile]:
    """The wheels ``python`` can install: by this machine's tags, or by the identifiers of another
    interpreter's ``cpXY`` (``cpXYt``: a free-threaded interpreter installs only free-threaded wheels)."""
    if python == PYTHON:
        return [d for d in dists if d.kind == "wheel" and installable_here(d.path.name)]
    tag, _ = interpreter_of(python)
    return [
        d
        for d in dists
        if d.kind == "wheel" and any(i.startswith((f"{tag}-", "py3-")) for i in wheel_identifiers(d.path.name))
    ]


def _check_install_sources(installs: list[dict[str, Any]], allowed: set[Path], findings: Findings) -> None:
    """pip's ``--report``: every installed distribution came from this run's files or the siblings."""
    for item in installs:
        url = str(item.get("download_info", {}).get("url", ""))
        name = item.get("metadata", {}).get("name", "?")
        source = Path(url2pathname(urlsplit(url).path)) if url.startswith("file:") else None
        if source not in allowed:
            findings.failed(
                "install",
                f"{name} was installed from {url}: only this run's dist/ and siblings of the same commit may be",
            )


def install_checks(
    dists: list[DistFile],
    unit: ReleaseUnit,
    manifest: Manifest,
    folder: ReleaseFolder,
    siblings: list[Path],
    reporter: Reporter,
    findings: Findings,
    python: str = PYTHON,
    extras: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """Install the unit's wheels into one fresh environment of ``python``, from this run only, and import
    them, each with the extras its declarations ask for (``extras``; by default from the folder's sdists)."""
    installable = _installable(dists, python)
    for dist in dists:
        if dist.kind == "wheel" and dist not in installable:
            findings.skipped(
                "install", dist.path.name, "its tags are not supported by this machine (checked statically only)"
            )
    if not installable:
        return
    with tempfile.TemporaryDirectory(prefix="cuda-ci-smoke-") as tmp:
        env = Env.create(Path(tmp) / "env", reporter, python)
        try:
            installs, note = install_from_run(
                env,
                dist=folder.dist,
                version=manifest["version"],
                unit=unit,
                siblings=siblings,
                snapshot=manifest["snapshot"],
                what="smoke install",
                reporter=reporter,
                report=True,
                pre=manifest["snapshot"] or any(identify(s).version.is_prerelease for s in siblings),
                extras=install_extras(folder.dist, unit) if extras is None else extras,
                python=python,
            )
        except CudaCiError as error:
            findings.failed(
                "install", f"{unit.name} {manifest['version']} from this run and same-commit siblings: {error}"
            )
            return
        if note:
            findings.skipped("install-dependencies", None, note)
        _check_install_sources(installs, {folder.dist / d.path.name for d in dists} | set(siblings), findings)
        findings.passed(
            "install",
            None,
            "installed: " + ", ".join(f"{i['metadata']['name']} {i['metadata']['version']}" for i in installs),
        )
        import_checks(env, unit, Path(tmp), reporter, findings)


def import_checks(env: Env, unit: ReleaseUnit, cwd: Path, reporter: Reporter, findings: Findings) -> None:
    """Each component's import names, then its smoke code, in ``env``."""
    for component in unit.components:
        code = "".join(f"import {name}\n" for name in component.import_names) + component.smoke
        try:
            output = env.run_python(code, what=f"import check of {component.distribution}", reporter=reporter, cwd=cwd)
        except CommandError as error:
            findings.failed("import", f"{component.distribution}: {error}")
            continue
        findings.passed(
            "import",
            None,
            f"{component.distribution}: {', '.join(component.import_names)} {output.strip()}".strip(),
        )

"""validate's sdist check: each sdist builds a wheel of the same version (the build's own proof where it holds)."""

from __future__ import annotations

import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path

from packaging.utils import canonicalize_name

from cuda_ci.build.backend_env import build_tool_env
from cuda_ci.build.frontend import ComponentBuild, build_argv, build_environ, overlay_env
from cuda_ci.build.sdists import extract_sdist
from cuda_ci.infra.components import get_unit
from cuda_ci.infra.errors import CommandError, CudaCiError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import Manifest
from cuda_ci.infra.process import run
from cuda_ci.validate.distfiles import DistFile, identify
from cuda_ci.validate.findings import Findings


def sdist_checks(
    dists: list[DistFile], manifest: Manifest, reporter: Reporter, findings: Findings, siblings: list[Path]
) -> None:
    """Each sdist builds a wheel of the same version.

    Where the build stage built a wheel from this very sdist (``built_from`` names its sha256; the
    static checks verified every hash and version), that build is the proof; otherwise (wheels from cibuildwheel or
    another job) the wheel is built here from the sdist.
    """
    entries = {f["name"]: f for f in manifest["files"]}
    for dist in [d for d in dists if d.kind == "sdist"]:
        sdist_sha256 = entries[dist.path.name]["sha256"]
        proof = [
            f
            for f in manifest["files"]
            if f["kind"] == "wheel" and f.get("built_from") == {"sdist": dist.path.name, "sha256": sdist_sha256}
        ]
        if proof:
            findings.passed(
                "sdist-builds-wheel",
                dist.path.name,
                f"the build stage built {proof[0]['name']} from this sdist (sha256 {sdist_sha256[:12]})",
            )
            continue
        _build_wheel_from_sdist(dist, manifest, reporter, findings, siblings)


def _build_wheel_from_sdist(
    dist: DistFile, manifest: Manifest, reporter: Reporter, findings: Findings, siblings: list[Path]
) -> None:
    component = next(
        c for c in get_unit(manifest["component"]).components if canonicalize_name(c.distribution) == dist.name
    )
    with tempfile.TemporaryDirectory(prefix="cuda-ci-sdist-") as tmp:
        try:
            source = extract_sdist(dist.path, Path(tmp) / "source")
        except (CudaCiError, tarfile.TarError) as error:
            findings.failed("sdist-builds-wheel", f"{dist.path.name} cannot be unpacked: {error}")
            return
        out = Path(tmp) / "wheel"
        build = ComponentBuild(component=component, sdist=False, wheel=True, repair=False)
        kept = None
        if component.build_requires:  # compiled against this commit's siblings, never an index's
            build = replace(build, build_siblings=tuple(siblings))
            try:
                tools = build_tool_env(source, build.python, reporter, component.build_requires)
                kept = overlay_env(build, tools, Path(tmp) / "build-env", reporter)
            except CudaCiError as error:
                findings.failed("sdist-builds-wheel", f"{dist.path.name}: {error}")
                return
        argv = build_argv(build, source, out, Path(tmp) / "r.json", kept, check_dependencies=kept is None)
        try:
            # named like the build stage's steps, so that builds per artifact count this second build
            with reporter.step(f"build {component.distribution} wheel from {dist.path.name}"):
                run(
                    argv,
                    what=f"wheel build from {dist.path.name}",
                    reporter=reporter,
                    env=build_environ(0),
                    cwd=Path(tmp),
                )
        except CommandError as error:
            findings.failed("sdist-builds-wheel", str(error))
            return
        built = [identify(w) for w in out.glob("*.whl")]
        if [str(w.version) for w in built] != [manifest["version"]]:
            findings.failed("sdist-builds-wheel", f"{dist.path.name} built {[w.path.name for w in built]}")
        else:
            findings.passed("sdist-builds-wheel", dist.path.name, f"built {built[0].path.name} from it here")

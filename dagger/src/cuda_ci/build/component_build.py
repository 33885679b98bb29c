"""How one component's files are built: the sdist, the wheels from it (one build per declared variant,
merged), auditwheel repair; or cibuildwheel, natively or in manylinux containers.

The wheel is built from the published sdist's bytes (not from the worktree), so the build itself proves
the sdist builds a wheel and validate need not build it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cuda_ci.build.backend_env import build_requirements
from cuda_ci.build.frontend import ComponentBuild, build_argv, build_environ, overlay_env, pypa_build
from cuda_ci.build.identifiers import kind_problem, native_archs
from cuda_ci.build.identity import PRETEND_PREFIX
from cuda_ci.build.sdists import extract_sdist, normalize_sdist
from cuda_ci.build.variants import Variants, merge_variant_folders
from cuda_ci.infra.declared import Declared
from cuda_ci.infra.envs import Env
from cuda_ci.infra.errors import CudaCiError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.manifest import BuiltFrom, sha256_of
from cuda_ci.infra.process import PYTHON, run

CONTAINER_SIBLINGS = "/cuda-ci-siblings"
CONTAINER_BUILD_SIBLINGS = "/cuda-ci-build-siblings"
BUILD_REQUIREMENTS = "build-requirements.txt"


@dataclass(frozen=True)
class BuiltFile:
    sha256: str
    built_from: BuiltFrom | None = None


def declared_variants(package_dir: Path) -> Variants | None:
    source = f"{package_dir.name}/pyproject.toml"
    return Declared.parse((package_dir / "pyproject.toml").read_text(encoding="utf-8"), source).variants


def build_component(
    build: ComponentBuild, tree: Path, staging: Path, env: dict[str, str], reporter: Reporter, kept: Env | None
) -> dict[Path, BuiltFile]:
    """Build ``build``'s files into ``staging``: the sdist first, repacked, then the wheels from it."""
    package_dir = tree / build.component.dir
    variants = declared_variants(package_dir)
    if build.cibuildwheel_platform:
        built = _cibuildwheel(build, tree, staging, env, reporter, kept, variants)
    else:
        built = {}
        sdist: Path | None = None
        if build.sdist:
            sdist = _sdist(build, package_dir, staging, env, reporter, tree, kept)
            built[sdist] = BuiltFile(sha256_of(sdist))
        if build.wheel:
            built.update(_wheels(build, tree, sdist, staging, env, reporter, kept, variants))
        if build.repair:
            built = _repaired(built, staging, env, reporter)
    problems = [p for p in (kind_problem(build.component, path.name) for path in built) if p]
    if problems:
        raise CudaCiError(*problems)
    return built


def _sdist(
    build: ComponentBuild, package_dir: Path, outdir: Path, env: dict[str, str], reporter: Reporter, tree: Path,
    kept: Env | None,
) -> Path:  # fmt: skip
    [(sdist, _)] = pypa_build(
        replace(build, sdist=True, wheel=False, cibuildwheel_platform=None), package_dir, outdir, env, reporter,
        cwd=tree, kept=kept,
    )  # fmt: skip
    # setuptools' sdist ignores SOURCE_DATE_EPOCH: repack it deterministically, hash that.
    normalize_sdist(sdist, int(env["SOURCE_DATE_EPOCH"]))
    return sdist


def _wheels(
    build: ComponentBuild,
    tree: Path,
    sdist: Path | None,
    staging: Path,
    env: dict[str, str],
    reporter: Reporter,
    kept: Env | None,
    variants: Variants | None,
) -> dict[Path, BuiltFile]:
    """The wheel from ``sdist`` (or the worktree), once per declared variant, merged into one."""
    package_dir = tree / build.component.dir
    wheel_build = replace(build, sdist=False)
    runner = overlay_env(build, kept, staging.parent / f"{build.component.dir}-build-env", reporter)
    if sdist is None and variants is None:
        made = pypa_build(wheel_build, package_dir, staging, env, reporter, cwd=package_dir, kept=runner)
        return {wheel: BuiltFile(sha256) for wheel, sha256 in made}
    built_from = BuiltFrom(sdist=sdist.name, sha256=sha256_of(sdist)) if sdist else None
    # Variants build from one sdist too (never twice in one folder: setuptools reuses build/).
    source = sdist or _sdist(build, package_dir, staging / "sdist", env, reporter, tree, kept)
    # A pretended version (snapshot at a tag, rehearsal) holds for the wheel too: setuptools-scm
    # may re-derive the version from the sdist's recorded SCM data and not from PKG-INFO.
    pretended = {k: v for k, v in env.items() if k.startswith(PRETEND_PREFIX)}

    def one(value: str | None, out: Path) -> None:
        suffix = f"-{value}" if value is not None else ""
        unpacked = staging.parent / f"{build.component.dir}-sdist{suffix}"
        folder = extract_sdist(source, unpacked)
        wheel_env = {**build_environ(int(env["SOURCE_DATE_EPOCH"]), unpacked), **pretended}
        if variants and value is not None:
            wheel_env.update(variants.environ(value))
        what = f" for {variants.variable}={value}" if variants else ""
        with reporter.step(f"wheel of {build.component.distribution}{what}"):
            pypa_build(wheel_build, folder, out, wheel_env, reporter, cwd=folder, kept=runner)

    return {w: BuiltFile(sha256_of(w), built_from) for w in _per_variant(variants, staging, one)}


def _per_variant(variants: Variants | None, staging: Path, build_one: Callable[[str | None, Path], None]) -> list[Path]:
    """``build_one(value, folder)`` once per declared value, then the wheels of each identifier merged
    into ``staging``; without variants, once into ``staging``."""
    if variants is None:
        build_one(None, staging)
        return sorted(staging.glob("*.whl"))
    outputs = [staging / f"variant-{value}" for value in variants.values]
    for value, out in zip(variants.values, outputs, strict=True):
        build_one(value, out)
    return merge_variant_folders(outputs, staging)


def _repaired(
    built: dict[Path, BuiltFile], staging: Path, env: dict[str, str], reporter: Reporter
) -> dict[Path, BuiltFile]:
    """Every wheel through ``auditwheel repair``; the repaired file is the one published (re-hashed)."""
    result = {p: f for p, f in built.items() if not p.name.endswith(".whl")}
    for index, wheel in enumerate(sorted(p for p in built if p.name.endswith(".whl"))):
        repaired_dir = staging / f"repaired-{index}"
        run(
            [PYTHON, "-m", "auditwheel", "repair", "--wheel-dir", str(repaired_dir), str(wheel)],
            what=f"auditwheel repair of {wheel.name}",
            reporter=reporter,
            env=env,
        )
        for repaired in repaired_dir.glob("*.whl"):
            result[repaired] = BuiltFile(sha256_of(repaired), built[wheel].built_from)
    return result


def _cibuildwheel(
    build: ComponentBuild,
    tree: Path,
    staging: Path,
    env: dict[str, str],
    reporter: Reporter,
    kept: Env | None,
    variants: Variants | None,
) -> dict[Path, BuiltFile]:
    """cibuildwheel's selection, once per declared variant (merged). In a container the worktree's
    ``.git`` (a file naming a path on this machine) means nothing, and variants must never share a
    ``build/`` folder: cibuildwheel then builds from an sdist of this commit (PKG-INFO holds the version)."""
    package_dir = tree / build.component.dir
    source = package_dir
    if build.container_engine or variants:
        source = _sdist(build, package_dir, staging / "sdist", env, reporter, tree, kept)

    def one(value: str | None, out: Path) -> None:
        run_env = {**env, **cibuildwheel_environ(build)}
        if variants and value is not None:
            run_env.update(variants.environ(value))
            run_env["CIBW_ENVIRONMENT_PASS_LINUX"] = " ".join(
                filter(None, [run_env.get("CIBW_ENVIRONMENT_PASS_LINUX", ""), variants.variable])
            )
        run(
            build_argv(build, source, out, staging / "report.json"),
            what=f"build of {build.component.distribution}" + (f" ({variants.variable}={value})" if variants else ""),
            reporter=reporter,
            cwd=tree,
            env=run_env,
            live=True,
        )  # cibuildwheel writes no report

    return {w: BuiltFile(sha256_of(w)) for w in _per_variant(variants, staging, one)}


def write_build_requirements(package_dir: Path, folder: Path) -> Path:
    """The declared build requirements (not PyPA build: cibuildwheel brings its own) as a requirements
    file beside the sibling sdists, for cibuildwheel's before-build step."""
    lines = [r for r in build_requirements(package_dir) if not r.startswith("build==")]
    target = folder / BUILD_REQUIREMENTS
    target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return target


def cibuildwheel_environ(build: ComponentBuild) -> dict[str, str]:
    """cibuildwheel's settings for this build: its container engine; an import test that takes the
    siblings from this commit's wheels (the public PyPI holds other builds of those names); for a
    component compiling against siblings, a build without isolation whose environment holds the
    build requirements and this commit's siblings, built for each identifier from their sdists."""
    environ: dict[str, str] = native_archs(build.cibuildwheel_platform or "")
    siblings = build.test_siblings
    folder = str(siblings[0].parent) if siblings else ""
    sdists = build.build_siblings
    sdist_folder = str(sdists[0].parent) if sdists else ""
    if build.container_engine:
        mounts = [f"--volume={folder}:{CONTAINER_SIBLINGS}:ro"] if siblings else []
        mounts += [f"--volume={sdist_folder}:{CONTAINER_BUILD_SIBLINGS}:ro"] if sdists else []
        environ["CIBW_CONTAINER_ENGINE"] = build.container_engine + (
            f"; create_args: {' '.join(mounts)}" if mounts else ""
        )
        # The host build environment's LDFLAGS strips what is linked (hygiene.STRIP_LDFLAGS): the
        # containers' builds strip too.
        environ["CIBW_ENVIRONMENT_PASS_LINUX"] = "LDFLAGS"
        folder, sdist_folder = CONTAINER_SIBLINGS, CONTAINER_BUILD_SIBLINGS
    if siblings:
        wheels = " ".join(f"{folder}/{wheel.name}" for wheel in siblings)
        environ["CIBW_BEFORE_TEST"] = f"python -m pip install --no-index --no-deps {wheels}"
    if sdists:
        built = " ".join(f"{sdist_folder}/{sdist.name}" for sdist in sdists)
        # a requirements file: requirement strings may hold quotes and < >, which sh and cmd read differently
        environ["CIBW_BEFORE_BUILD"] = (
            f"python -m pip install -r {sdist_folder}/{BUILD_REQUIREMENTS} && python -m pip install --no-deps {built}"
        )
        environ["CIBW_BUILD_FRONTEND"] = "build; args: --no-isolation --skip-dependency-check"
    return environ

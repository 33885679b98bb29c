"""Fresh virtual environments for smoke installs, docs and install-back checks.

Environments are created without pip (fast) and driven by this interpreter's pip through
``--python``; installs of our own distributions are ``--isolated`` so that no pip configuration
or ``PIP_*`` variable can pull another build of these names from another index.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cuda_ci.infra.components import ReleaseUnit
from cuda_ci.infra.errors import CommandError
from cuda_ci.infra.log import Reporter
from cuda_ci.infra.process import PYTHON, run
from cuda_ci.infra.runtime_requirements import plan_runtime, refuse_components
from cuda_ci.validate.distfiles import identify


@dataclass(frozen=True)
class Env:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")

    @classmethod
    def create(cls, root: Path, reporter: Reporter, python: str = PYTHON) -> Env:
        """A fresh environment of ``python`` (default: this interpreter), without pip."""
        run(
            [python, "-m", "venv", "--without-pip", str(root)], what="creating a virtual environment", reporter=reporter
        )
        return cls(root)

    def pip_install(
        self,
        args: Sequence[str],
        *,
        what: str,
        reporter: Reporter,
        isolated: bool = True,
        report: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Install into this environment; with ``report``, return pip's ``--report`` install list.

        Without a report, uv installs (much faster, same isolation: it reads no pip configuration).
        ``env``: the installer's environment (default: this one without credentials).
        """
        uv = uv_binary()
        if uv and not report:
            argv = [uv, "pip", "install", "--quiet", "--no-config", "--python", str(self.python)]
            run([*argv, *_uv_args(args)], what=what, reporter=reporter, env=env)
            return []
        argv = [PYTHON, "-m", "pip", "--python", str(self.python), "install", "--disable-pip-version-check", "--quiet"]
        if isolated:
            argv.append("--isolated")
        with tempfile.TemporaryDirectory(prefix="cuda-ci-pip-") as tmp:
            report_path = Path(tmp) / "report.json"
            if report:
                argv += ["--report", str(report_path)]
            run([*argv, *args], what=what, reporter=reporter, env=env)
            if not report:
                return []
            data: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
        installs: list[dict[str, Any]] = data.get("install", [])
        return installs

    def run_python(self, code: str, *, what: str, reporter: Reporter, cwd: Path | None = None) -> str:
        return run([str(self.python), "-c", code], what=what, reporter=reporter, cwd=cwd).stdout

    def site_packages(self, reporter: Reporter) -> Path:
        code = "import sysconfig; print(sysconfig.get_path('purelib'))"
        return Path(self.run_python(code, what="locating site-packages", reporter=reporter).strip())

    def script(self, name: str) -> Path:
        """A console script installed here."""
        return self.root / (f"Scripts/{name}.exe" if sys.platform == "win32" else f"bin/{name}")

    def installed_names(self) -> list[str]:
        """The distributions installed here (their ``.dist-info`` folders), without running anything."""
        patterns = ("Lib/site-packages/*.dist-info", "lib/python*/site-packages/*.dist-info")
        return [p.name.split("-")[0] for pattern in patterns for p in self.root.glob(pattern)]

    def extend_with(self, tools: Env, reporter: Reporter) -> None:
        """Make ``tools``' packages importable here too, after this environment's own (a ``.pth`` line)."""
        line = f"{tools.site_packages(reporter)}\n"
        (self.site_packages(reporter) / "cuda-ci-tools.pth").write_text(line, encoding="utf-8")


_UV_EQUIVALENTS = {"--pre": ["--prerelease", "allow"], "--no-cache-dir": ["--no-cache"]}


def _uv_args(args: Sequence[str]) -> list[str]:
    """pip's spelling of the few options we use, in uv's."""
    return [token for arg in args for token in _UV_EQUIVALENTS.get(arg, [arg])]


def uv_binary() -> str | None:
    """uv from this environment (the ``uv`` package) or PATH, if there is one."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv")
    try:
        return str(find_uv_bin())
    except FileNotFoundError:
        return shutil.which("uv")


def local_install_args(find_links: Sequence[Path], requirements: Sequence[str], *, pre: bool) -> list[str]:
    """Install only from local folders: ``--no-index`` plus one ``--find-links`` each."""
    args = ["--no-index"]
    for folder in find_links:
        args += ["--find-links", str(folder)]
    if pre:
        args.append("--pre")
    return [*args, *requirements]


def install_release(
    env: Env,
    *,
    source_args: Sequence[str],
    requirements: Sequence[str],
    siblings: Sequence[str],
    snapshot: bool,
    what: str,
    reporter: Reporter,
    report: bool = False,
    installer_env: Mapping[str, str] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Install a release with its dependencies resolved; returns pip's report and a note if lenient.

    A snapshot's siblings are dev builds of the same commit; where a clone has no release tags their
    versions cannot satisfy the declared ranges, so a snapshot falls back to ``--no-deps`` with every
    sibling named, and says so. A release never does.
    """
    try:
        installed = env.pip_install(
            [*source_args, *requirements], what=what, reporter=reporter, report=report, env=installer_env
        )
        return installed, None
    except CommandError as error:
        if not snapshot or not siblings:
            raise
        reason = next(
            (line for line in error.problems[0].splitlines() if "ERROR" in line or "\N{MULTIPLICATION SIGN}" in line),
            error.problems[0].splitlines()[0],
        )
    installs = env.pip_install(
        [*source_args, "--no-deps", *requirements, *siblings],
        what=f"{what} (--no-deps)",
        reporter=reporter,
        report=report,
        env=installer_env,
    )
    note = f"snapshot: dependency ranges not met by same-commit siblings ({reason.strip()}); installed with --no-deps"
    reporter.warn(note)
    return installs, note


def install_from_run(
    env: Env,
    *,
    dist: Path,
    version: str,
    unit: ReleaseUnit,
    siblings: Sequence[Path],
    snapshot: bool,
    what: str,
    reporter: Reporter,
    report: bool = False,
    pre: bool = True,
    extras: Mapping[str, Sequence[str]] | None = None,
    requirements: Sequence[str] = (),
    python: str = PYTHON,
    extra_dists: Sequence[Path] = (),
) -> tuple[list[dict[str, Any]], str | None]:
    """Install a unit's distributions (with ``extras`` per distribution) and ``requirements``:
    this run's files (``dist``, and ``extra_dists``: another interpreter's wheels of the same run)
    and same-commit siblings only from those folders, the third-party requirements they declare
    first, from the configured index (see :mod:`cuda_ci.infra.runtime_requirements`)."""
    links = [dist, *extra_dists, *sorted({s.parent for s in siblings})]
    wanted = extras or {}
    roots = [f"{_with_extras(c.distribution, wanted.get(c.distribution, ()))}=={version}" for c in unit.components]
    wheels = [w for folder in (dist, *extra_dists) for w in sorted(folder.glob("*.whl"))]
    plan = plan_runtime([*roots, *requirements], [*wheels, *siblings], python=python, what=what)
    install_third_party(env, plan.third_party, what=what, reporter=reporter)
    return install_release(
        env,
        source_args=local_install_args(links, [], pre=pre),
        requirements=plan.local,
        siblings=[str(identify(s).name) for s in siblings],
        snapshot=snapshot,
        what=what,
        reporter=reporter,
        report=report,
    )


def _with_extras(distribution: str, extras: Sequence[str]) -> str:
    return f"{distribution}[{','.join(extras)}]" if extras else distribution


def install_third_party(env: Env, requirements: Sequence[str], *, what: str, reporter: Reporter) -> None:
    """Third-party requirements from the configured index; none may pull in a component."""
    if not requirements:
        return
    env.pip_install(requirements, what=f"{what}: third-party requirements", reporter=reporter, isolated=False)
    refuse_components(env.installed_names(), requirements, what)

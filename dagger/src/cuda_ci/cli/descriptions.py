"""What each ``cuda-ci`` command does, at length: its ``--help`` description and its section of the
generated reference, ``docs/cli.md`` (:mod:`cuda_ci.cli.reference`)."""

from __future__ import annotations

DESCRIPTIONS: dict[str, str] = {
    "component-version": (
        "The version a distribution builds as at HEAD: setuptools-scm over the component's own tags only. "
        "`version` is the old name, still accepted with a warning."
    ),
    "preflight": (
        "Every check a release needs before anything is built, all findings at once: the tag (canonical, of "
        "this unit, existing), its commit reachable from main, a green ci.yml run on main for it (the CI gate), "
        "the release notes, no published GitHub release of the tag, the siblings the unit requires on the "
        "index it goes to. In a dry-run, GitHub checks that cannot be made are recorded as not verified."
    ),
    "build": (
        "The unit's sdists and wheels, once, from the tag's commit in a clean worktree (never the working "
        "tree): the sdist first, then each wheel from that very sdist (recorded as built_from); platform "
        "wheels repaired by auditwheel; the git-archive source tarball, an SBOM per wheel, the manifest. "
        "--wheels-only builds this platform's wheels with cibuildwheel's selection: natively on Windows and "
        "macOS, on Linux in manylinux containers where a container engine answers (CUDA_CI_CONTAINER_ENGINE), "
        "else this interpreter's wheel."
    ),
    "validate": (
        "twine check --strict; names and METADATA versions (parsed with packaging); exactly the expected "
        "files; RECORD; wheel hygiene (no debug sections, no C/Cython sources, the size budget); "
        "check-wheel-contents; auditwheel show; install and import in a fresh environment (own files from "
        "this run, siblings from the same commit); each sdist builds a wheel. Then the manifest is frozen."
    ),
    "smoke": (
        "The install-and-import check alone, with another interpreter (--build-python) and the folder's "
        "siblings, which build made for its own interpreter. A plan runs this check for each platform wheel "
        "in the wheel node that built it, with siblings built for that wheel's interpreter."
    ),
    "docs": (
        "Sphinx -W from the release's sdists, with its wheels installed and the components' docs groups, "
        "SPHINX_<DIST>_VER set, into DIR/docs/<distribution>/; the result (built or failed) is recorded in "
        "the manifest."
    ),
    "publish": (
        "Re-checks every hash, then, in order: the GitHub draft and its assets, TestPyPI (and an install "
        "back from it), PyPI (and an install back), un-draft. Each target resumes what is missing and is a "
        "verified no-op on a finished release; a folder whose docs were not built is refused, and a "
        "snapshot's or rehearsal's without --dry-run."
    ),
    "release": (
        "preflight, build (once), validate, docs and publish in one run, the release folder handed from "
        "stage to stage; --no-publish stops after docs."
    ),
    "verify": (
        "What a downstream packager runs: SHA256SUMS, the manifest (schema, files, hashes), the version "
        "against the tag, attestations where present; of a release folder, or of the published release's "
        "assets downloaded from GitHub. Exit 1 on any mismatch."
    ),
    "verify-reproducible": (
        "Rebuilds the manifest's commit (SOURCE_DATE_EPOCH = the commit's time) and compares every file's "
        "sha256, naming the wheel members that differ and the build-environment packages whose version changed."
    ),
    "sign": (
        "PEP 740 attestations of dist/ into attestations/, with the GitHub Actions OIDC identity; skipped "
        "with a note elsewhere."
    ),
    "check-wheels": (
        "Wheels made by other jobs of the same workflow run, before they join a release. In a wheel job "
        "(--group): its group's wheels are exactly the plan's identifiers of that group, at the plan's "
        "version, built from the commit this checkout names for the release; their sha256 become the step "
        "output wheels-<GROUP>. In the job that assembles the release (--reports, the wheel jobs' outputs "
        "as JSON): every wheel must be planned (distribution, identifier, version), reported by a wheel job "
        "with that very sha256 from the plan's commit, and every planned identifier there; anything else "
        "is refused."
    ),
    "report": (
        "A run's folder reported on this machine as `cuda-ci release` reports its own: every node's status "
        "and time, the errors of a failed run, the files and what each publish target did; on GitHub Actions "
        "the annotations, job summary and step outputs that the containers of `dagger call release` cannot "
        "write. For a folder exported by `dagger call release --keep-failed` or `dagger call wheels "
        "--keep-failed` (which return the folder of a failed run instead of failing): exit 1 when the run "
        "failed, listing every error."
    ),
    "lint": "ruff, strict mypy, and each workflow's schema check and zizmor (the CI lint job).",
    "test": (
        "One CI job on this machine: build HEAD, validate, docs, then each component's own tests from its "
        "folder (its pytest configuration) against the built wheels, with its test group and each --group. "
        "With --build-python of another Python (the Dagger test job's --python), that Python's platform "
        "wheels are then built, repaired and import-tested as a wheel node does, with siblings built for "
        "it, and the tests run with it against them."
    ),
    "ci": "lint and every unit's test job (or one unit's); every failing job is reported.",
}

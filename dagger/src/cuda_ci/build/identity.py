"""What a build calls itself: a release's version, a snapshot's dev version, a rehearsal's pretend version.

A snapshot's version is always a dev version with the commit in its local part, so its files can
never carry a release's names, also when the commit carries a release tag. A rehearsal builds a
commit as if a tag pointed at it: setuptools-scm's pretend version for each of the unit's
distributions. Both reach the build backend only through setuptools-scm's own variables.
"""

from __future__ import annotations

from packaging.utils import canonicalize_name
from packaging.version import Version

from cuda_ci.infra.components import ReleaseUnit

PRETEND_PREFIX = "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_"


def next_release(version: Version) -> str:
    """setuptools-scm's guess of the next release: the last number of the public version, plus one."""
    if version.post is not None:
        return f"{version.base_version}{_pre(version)}.post{version.post + 1}"
    if version.pre is not None:
        letter, number = version.pre
        return f"{version.base_version}{letter}{number + 1}"
    *head, last = version.release
    return ".".join(str(n) for n in [*head, last + 1])


def _pre(version: Version) -> str:
    return f"{version.pre[0]}{version.pre[1]}" if version.pre else ""


def snapshot_version(scm_version: str, commit: str) -> str:
    """A dev version no release can ever have: setuptools-scm's when it is one, with the commit.

    At a tagged commit setuptools-scm gives the tag's own version; a snapshot there becomes the next
    release's ``.dev0`` with ``+g<commit>``. A dev version without a local part gets the commit added.
    """
    version = Version(scm_version)
    if version.is_devrelease and version.local:
        return scm_version
    local = f"g{commit[:7]}"
    if version.is_devrelease:
        return f"{version}+{local}"
    return f"{next_release(Version(version.public))}.dev0+{local}"


def pretend_environ(unit: ReleaseUnit, version: str) -> dict[str, str]:
    """setuptools-scm's pretend version for every distribution of the unit (and nothing else)."""
    return {
        PRETEND_PREFIX + str(canonicalize_name(c.distribution)).replace("-", "_").upper(): version
        for c in unit.components
    }

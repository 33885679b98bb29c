"""Write dagger/locked/*.txt: cuda-ci's own tools as requirement files exported from dagger/uv.lock.

dagger/uv.lock is the truth for cuda-ci's tools (`uv lock` in dagger/ changes it: a reviewed change).
Where `uv sync` of the lock cannot run, pip installs these exports instead, every file checked
against the lock's sha256 (`pip install --require-hashes`): the Dagger containers (cuda-ci-dev.txt,
lint's tools included), the workflows (cuda-ci.txt) and the first step of .ci/setup (uv.txt, uv
alone). cuda-ci itself is left out (it is installed from its source, `--no-deps`). The lock takes
dagger-io from dagger/sdk, the engine's SDK; the exports take the same release from PyPI, pinned
to the hashes PyPI publishes for it (below; the sdist's is the one .ci/dagger_sdk.py checks).

Run `.venv/bin/python .ci/locked.py` after `uv lock`; a test fails while a file differs from the lock.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dagger_sdk  # .ci/dagger_sdk.py: the engine's version, its sdist's sha256

ROOT = Path(__file__).resolve().parent.parent
DAGGER = ROOT / "dagger"
LOCKED = DAGGER / "locked"
# `uv export` arguments per file: the runtime dependencies, plus the dev group, or uv alone.
EXPORTS = {
    "cuda-ci.txt": ["--no-dev"],
    "cuda-ci-dev.txt": ["--group", "dev"],
    "uv.txt": ["--only-group", "bootstrap"],
}
COMMON = ["export", "--frozen", "--format", "requirements-txt", "--no-emit-project", "--no-emit-package", "dagger-io"]
# dagger_io-<version>-py3-none-any.whl as PyPI lists it (https://pypi.org/simple/dagger-io/).
WHEEL_SHA256 = {"0.21.11": "91df626199b5028832253c523977ab6f97046dbd29926d7b462b38c3621b627e"}


def dagger_io_requirement() -> str:
    """dagger-io at dagger.json's engine version, with the sha256 of its wheel and sdist on PyPI."""
    version = dagger_sdk.engine_version()
    hashes = sorted([WHEEL_SHA256[version], dagger_sdk.SDIST_SHA256[version]])
    lines = [f"dagger-io=={version}", *(f"    --hash=sha256:{digest}" for digest in hashes)]
    return " \\\n".join(lines) + "\n    # via cuda-ci (dagger/sdk's release, from PyPI)\n"


def export(name: str, uv: str) -> str:
    """The file's text as the lock gives it now."""
    argv = [uv, *COMMON, *EXPORTS[name]]
    text = subprocess.run(argv, cwd=DAGGER, capture_output=True, text=True, check=True).stdout
    return text if name == "uv.txt" else text + dagger_io_requirement()


def main(argv: list[str]) -> int:
    uv = str(Path(sys.executable).parent / "uv")
    LOCKED.mkdir(exist_ok=True)
    stale = []
    for name in EXPORTS:
        text = export(name, uv)
        if "--check" in argv:
            if (LOCKED / name).read_text() != text:
                stale.append(name)
        else:
            (LOCKED / name).write_text(text)
    for name in stale:
        print(f"dagger/locked/{name} differs from dagger/uv.lock: run .venv/bin/python .ci/locked.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

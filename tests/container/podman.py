"""podman as the container lane runs it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Podman:
    """podman with the lane's containers.conf."""

    conf: Path

    def __call__(
        self, *args: str, check: bool = True, stdin: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        argv = ["podman", *args]
        environ = {**os.environ, "CONTAINERS_CONF": str(self.conf), **(env or {})}
        result = subprocess.run(argv, input=stdin, capture_output=True, env=environ, timeout=1800)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:8])} ... failed ({result.returncode}): {result.stderr.decode()[-2000:]}"
            )
        return result

    def image_exists(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0

"""cuda-ci: build, validate and release the CUDA Python monorepo.

The stage modules are plain Python and never import ``dagger``; the Dagger object lives in
``cuda_ci.main`` and the host CLI in ``cuda_ci.cli.app``, both thin layers over the same stages.
"""

from __future__ import annotations

__all__: list[str] = []

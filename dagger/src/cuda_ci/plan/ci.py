"""The CI jobs as a plan's nodes: lint and one test job per unit, each a ``cuda-ci`` command line.

``cuda-ci ci`` on the host and the Dagger module's ``ci`` and ``test`` run exactly these command
lines (the job's name is also the command that reproduces it); the GPU job then runs the plan's test
steps (:func:`cuda_ci.plan.release.installed_test_steps`) on what the test job built.
"""

from __future__ import annotations

from collections.abc import Sequence

from cuda_ci.plan.release import Node


def ci_nodes(units: Sequence[str], python: str | None = None, groups: Sequence[str] = ()) -> tuple[Node, ...]:
    """``lint``, then ``test:<unit>`` for each unit (``python``: the interpreter that builds and tests,
    a hand-off of the Dagger module; ``groups``: the extra dependency groups asked for)."""
    asked = tuple(arg for group in groups for arg in ("--group", group))
    build_python = (f"--build-python={python}",) if python else ()
    nodes = [Node(id="lint", kind="lint", argv=("lint", "--repo", "{repo}"))]
    for unit in units:
        argv = ("test", "--component", unit, *asked, *build_python, "--repo", "{repo}", "--out", "{out}")
        nodes.append(Node(id=f"test:{unit}", kind="test", argv=argv, outputs=("{out}",)))
    return tuple(nodes)


def job_name(node: Node) -> str:
    """How a CI job is named in reports: the command that reproduces it (``test --component cuda-core``)."""
    return "lint" if node.kind == "lint" else f"test --component {node.id.partition(':')[2]}"

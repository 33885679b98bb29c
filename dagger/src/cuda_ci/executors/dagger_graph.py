"""The Dagger executor's containers for a plan's nodes: the image and mounts a node's command line
reads, and for the nodes that talk to GitHub or an index their key, credentials and services.
Imported by ``main.py`` only (the CLI never imports dagger)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dagger
from cuda_ci.executors.dagger_nodes import folder_for, with_invocation
from cuda_ci.executors.dagger_parts import NODE_PATHS, PACKAGES_DIR, PYPISERVER_ARGS, TOOLING_IMAGE, CacheTrust
from cuda_ci.executors.dagger_wheels import Handed, merged
from cuda_ci.plan.release import Node, ReleasePlan


@dataclass(frozen=True)
class NodeContainers:
    """Containers for plan nodes, made from ``tooling`` (the module's cuda-ci image maker)."""

    tooling: Callable[..., dagger.Container]

    def node_container(
        self,
        node: Node,
        made: dict[str, dagger.Directory],
        extra_dist: dagger.Directory | None,
        wheels: list[str] | None = None,
        plan: ReleasePlan | None = None,
        trust: CacheTrust = "release",
        handed: Handed | None = None,
    ) -> dagger.Container:
        """The node's image with what its command line reads mounted where its placeholders point."""
        handed = handed or Handed()
        if node.kind == "wheel":
            assert node.image is not None and node.platform is not None and node.python is not None
            # No install here: the build runs PyPA build from the kept environment of the lock's version.
            container = self.tooling(platform=node.platform, image=node.image, trust=trust)
        else:  # a graph of one platform runs its other nodes in that platform's image: nothing emulated
            platform, image = handed.tooling or ("linux/amd64", TOOLING_IMAGE)
            container = self.tooling(platform=platform, image=image, trust=trust)
        line = " ".join(node.argv)
        if "{preflight}" in line and node.kind != "preflight":  # preflight writes it; the others read it
            container = container.with_directory("/preflight", made["preflight"])
        if "{prebuilt}" in line:
            container = container.with_directory("/prebuilt", merged(made, wheels or [], handed.prebuilt))
        if "{reports}" in line and handed.reports is not None:
            container = container.with_file(NODE_PATHS["reports"], handed.reports)
        if "{extra}" in line and extra_dist is not None:
            container = container.with_directory("/extra", extra_dist)
        if "{release}" in line and node.kind != "build":
            container = container.with_directory("/release", folder_for(node, made, plan))
        return container

    def with_world(
        self,
        container: dagger.Container,
        node: Node,
        dry_run: bool,
        tokens: dict[str, dagger.Secret | None],
        github_repository: str,
        invocation: str,
    ) -> dagger.Container:
        """A node that reads or writes GitHub or an index: this call's key, the credentials it needs
        (only as secrets), and for a dry-run's upload its embedded index as a service."""
        container = with_invocation(container, invocation)
        target = node.id.partition(":")[2]
        if node.kind == "publish" and dry_run:
            if target in ("testpypi", "pypi"):
                container = container.with_service_binding(target, self.index_service(target, invocation))
            return container
        container = self.with_github(container, tokens.get("GITHUB_TOKEN"), github_repository)
        if node.kind == "publish" and target in ("testpypi", "pypi"):
            variable = f"CUDA_CI_{target.upper()}_TOKEN"
            secret = tokens.get(variable)
            container = container.with_secret_variable(variable, secret) if secret is not None else container
        return container

    def index_service(self, name: str, invocation: str) -> dagger.Service:
        """pypiserver (from cuda-ci's own dependencies) as a Dagger service: the embedded index.

        It starts empty in every call (the invocation is part of its key) and refuses to start
        without its package folder, so the folder is made first.
        """
        return (
            self.tooling()
            .with_exec(["mkdir", "-p", PACKAGES_DIR])
            .with_env_variable("CUDA_CI_INDEX_NAME", name)  # two services, not one deduplicated
            .with_env_variable("CUDA_CI_INVOCATION", invocation)
            .with_exposed_port(8080)
            .as_service(args=PYPISERVER_ARGS)
        )

    @staticmethod
    def with_github(
        container: dagger.Container, github_token: dagger.Secret | None, github_repository: str
    ) -> dagger.Container:
        container = container.with_env_variable("GITHUB_REPOSITORY", github_repository)
        return container.with_secret_variable("GITHUB_TOKEN", github_token) if github_token else container

"""A CycloneDX SBOM per wheel (name, version, hashes, declared dependencies), written to ``assets/``.

Deterministic on purpose (serial number from the wheel's digest, timestamp from the commit) so a
rebuild of the same commit produces the same SBOM bytes.
"""

from __future__ import annotations

import uuid
import zipfile
from datetime import UTC, datetime
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename

from cuda_ci.infra.errors import CudaCiError

SUFFIX = ".cdx.json"


def sbom_name(wheel_name: str) -> str:
    return f"{wheel_name}{SUFFIX}"


def wheel_sbom(wheel: Path, sha256: str, epoch: int) -> str:
    """The SBOM of one wheel as CycloneDX 1.6 JSON."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    name, version, _, _ = parse_wheel_filename(wheel.name)
    ref = f"pkg:pypi/{name}@{version}"
    main = Component(
        name=str(name),
        version=str(version),
        type=ComponentType.LIBRARY,
        purl=PackageURL(type="pypi", name=str(name), version=str(version), qualifiers={"file_name": wheel.name}),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha256)],
        bom_ref=ref,
    )
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"{ref}#{sha256}"))
    bom.metadata.timestamp = datetime.fromtimestamp(epoch, UTC)
    bom.metadata.component = main
    dependencies = []
    for requirement in _requires(wheel):
        dependency = Component(
            name=requirement.name,
            type=ComponentType.LIBRARY,
            purl=PackageURL(type="pypi", name=requirement.name.lower()),
            bom_ref=f"requirement:{requirement}",
            properties=[Property(name="cuda-ci:requirement", value=str(requirement))],
        )
        bom.components.add(dependency)
        dependencies.append(dependency)
    bom.register_dependency(main, dependencies)
    # Valid by construction; `cuda-ci verify` and the tests check each SBOM against the schema (the
    # strict validator costs seconds to load, too much for every build).
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def check_sbom(text: str, what: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise CudaCiError(f"the SBOM of {what} is not valid CycloneDX 1.6: {error}")


def _requires(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(archive.read(name).decode("utf-8"))
    return [Requirement(line) for line in headers.get_all("Requires-Dist") or []]

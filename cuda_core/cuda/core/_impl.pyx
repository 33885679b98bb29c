# cython: language_level=3, freethreading_compatible=True
"""cuda-core's compiled part, built once per CUDA major (CUDA_CORE_BUILD_MAJOR) against cuda-bindings'
``cydriver.pxd``; see ``cuda/core/_variant.py`` for which build an installation loads."""

from cuda.bindings cimport cydriver

cdef extern from *:
    int CUDA_CORE_BUILD_MAJOR  # a macro the build defines (build_hooks.py)

BUILD_MAJOR = CUDA_CORE_BUILD_MAJOR
COMPUTE_CAPABILITY_ATTRIBUTES = (
    cydriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
    cydriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
)


def driver_version_tuple(int version):
    """``(major, minor)`` of a driver version number (``1000 * major + 10 * minor``)."""
    return (version // 1000, (version % 1000) // 10)

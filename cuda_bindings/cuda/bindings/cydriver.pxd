# C-level declarations of the driver types and constants, for Cython code that compiles against
# cuda-bindings (``from cuda.bindings cimport cydriver``), as upstream's cydriver.pxd is for cuda-core.
# Shipped in the wheel: a build of cuda-core needs cuda-bindings installed to find this file.

cdef extern from *:
    """
    typedef int CUresult;
    typedef int CUdevice;
    enum {
        CUDA_SUCCESS = 0,
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
    };
    """
    ctypedef int CUresult
    ctypedef int CUdevice
    cdef enum:
        CUDA_SUCCESS
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

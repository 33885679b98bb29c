/*
 * A small CPython C extension over the CUDA driver API.
 *
 * It needs no CUDA toolkit to build: the driver library is opened at run time
 * (dlopen on POSIX, LoadLibraryW on Windows) from the path the Python layer
 * found with cuda.pathfinder, and each entry point is resolved by name.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#ifdef _WIN32
#include <windows.h>
#define CUDAAPI __stdcall
typedef HMODULE lib_handle;
#else
#include <dlfcn.h>
#define CUDAAPI
typedef void *lib_handle;
#endif

typedef int CUresult;
typedef int CUdevice;

typedef CUresult(CUDAAPI *cuInit_t)(unsigned int);
typedef CUresult(CUDAAPI *cuDriverGetVersion_t)(int *);
typedef CUresult(CUDAAPI *cuDeviceGetCount_t)(int *);
typedef CUresult(CUDAAPI *cuDeviceGet_t)(CUdevice *, int);
typedef CUresult(CUDAAPI *cuDeviceGetName_t)(char *, int, CUdevice);
typedef CUresult(CUDAAPI *cuDeviceTotalMem_t)(size_t *, CUdevice);
typedef CUresult(CUDAAPI *cuDeviceGetAttribute_t)(int *, int, CUdevice);
typedef CUresult(CUDAAPI *cuGetErrorName_t)(CUresult, const char **);

static lib_handle driver_handle = NULL;
static cuInit_t p_cuInit = NULL;
static cuDriverGetVersion_t p_cuDriverGetVersion = NULL;
static cuDeviceGetCount_t p_cuDeviceGetCount = NULL;
static cuDeviceGet_t p_cuDeviceGet = NULL;
static cuDeviceGetName_t p_cuDeviceGetName = NULL;
static cuDeviceTotalMem_t p_cuDeviceTotalMem = NULL;
static cuDeviceGetAttribute_t p_cuDeviceGetAttribute = NULL;
static cuGetErrorName_t p_cuGetErrorName = NULL;

static PyObject *CUDAError = NULL;
static PyObject *DriverLoadError = NULL;

static void *resolve(const char *name)
{
#ifdef _WIN32
    return (void *)GetProcAddress(driver_handle, name);
#else
    return dlsym(driver_handle, name);
#endif
}

/* Raise CUDAError(message) with .code and .name for a non-zero CUresult. */
static PyObject *raise_cuda_error(CUresult code, const char *call)
{
    const char *name = NULL;
    if (p_cuGetErrorName == NULL || p_cuGetErrorName(code, &name) != 0 || name == NULL) {
        name = "CUDA_ERROR_UNKNOWN_CODE";
    }
    PyObject *exc = PyObject_CallFunction(CUDAError, "s", "");
    if (exc == NULL) {
        return NULL;
    }
    PyObject *message = PyUnicode_FromFormat("%s failed: %s (%d)", call, name, code);
    PyObject *args = message ? PyTuple_Pack(1, message) : NULL;
    int failed = args == NULL
        || PyObject_SetAttrString(exc, "args", args) < 0
        || PyObject_SetAttrString(exc, "code", PyLong_FromLong(code)) < 0
        || PyObject_SetAttrString(exc, "name", PyUnicode_FromString(name)) < 0;
    Py_XDECREF(message);
    Py_XDECREF(args);
    if (!failed) {
        PyErr_SetObject(CUDAError, exc);
    }
    Py_DECREF(exc);
    return NULL;
}

#define CHECK_LOADED()                                                          \
    if (driver_handle == NULL) {                                                \
        PyErr_SetString(DriverLoadError, "the CUDA driver is not loaded yet");  \
        return NULL;                                                            \
    }

#define CALL(expr, name)                                                        \
    do {                                                                        \
        CUresult _rc;                                                           \
        Py_BEGIN_ALLOW_THREADS _rc = (expr);                                    \
        Py_END_ALLOW_THREADS if (_rc != 0) return raise_cuda_error(_rc, name);  \
    } while (0)

static PyObject *py_load(PyObject *self, PyObject *args)
{
    PyObject *path_obj;
    if (!PyArg_ParseTuple(args, "U", &path_obj)) {
        return NULL;
    }
    if (driver_handle != NULL) {
        Py_RETURN_NONE;
    }
#ifdef _WIN32
    wchar_t *wide = PyUnicode_AsWideCharString(path_obj, NULL);
    if (wide == NULL) {
        return NULL;
    }
    lib_handle handle = LoadLibraryW(wide);
    PyMem_Free(wide);
    if (handle == NULL) {
        return PyErr_Format(DriverLoadError, "LoadLibrary(%U) failed with error %lu", path_obj,
                            (unsigned long)GetLastError());
    }
#else
    const char *path = PyUnicode_AsUTF8(path_obj);
    if (path == NULL) {
        return NULL;
    }
    lib_handle handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *reason = dlerror();
        return PyErr_Format(DriverLoadError, "dlopen(%U) failed: %s", path_obj,
                            reason ? reason : "unknown reason");
    }
#endif
    driver_handle = handle;
    p_cuInit = (cuInit_t)resolve("cuInit");
    p_cuDriverGetVersion = (cuDriverGetVersion_t)resolve("cuDriverGetVersion");
    p_cuDeviceGetCount = (cuDeviceGetCount_t)resolve("cuDeviceGetCount");
    p_cuDeviceGet = (cuDeviceGet_t)resolve("cuDeviceGet");
    p_cuDeviceGetName = (cuDeviceGetName_t)resolve("cuDeviceGetName");
    p_cuDeviceTotalMem = (cuDeviceTotalMem_t)resolve("cuDeviceTotalMem_v2");
    p_cuDeviceGetAttribute = (cuDeviceGetAttribute_t)resolve("cuDeviceGetAttribute");
    p_cuGetErrorName = (cuGetErrorName_t)resolve("cuGetErrorName");
    if (!p_cuInit || !p_cuDriverGetVersion || !p_cuDeviceGetCount || !p_cuDeviceGet ||
        !p_cuDeviceGetName || !p_cuDeviceTotalMem || !p_cuDeviceGetAttribute) {
        driver_handle = NULL;
        return PyErr_Format(DriverLoadError,
                            "%U is not a CUDA driver: a driver API entry point is missing",
                            path_obj);
    }
    Py_RETURN_NONE;
}

static PyObject *py_is_loaded(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(driver_handle != NULL);
}

static PyObject *py_cuInit(PyObject *self, PyObject *args)
{
    unsigned int flags = 0;
    if (!PyArg_ParseTuple(args, "|I", &flags)) {
        return NULL;
    }
    CHECK_LOADED();
    CALL(p_cuInit(flags), "cuInit");
    Py_RETURN_NONE;
}

static PyObject *py_cuDriverGetVersion(PyObject *self, PyObject *unused)
{
    int version = 0;
    CHECK_LOADED();
    CALL(p_cuDriverGetVersion(&version), "cuDriverGetVersion");
    return PyLong_FromLong(version);
}

static PyObject *py_cuDeviceGetCount(PyObject *self, PyObject *unused)
{
    int count = 0;
    CHECK_LOADED();
    CALL(p_cuDeviceGetCount(&count), "cuDeviceGetCount");
    return PyLong_FromLong(count);
}

static PyObject *py_cuDeviceGet(PyObject *self, PyObject *args)
{
    int ordinal;
    CUdevice device = 0;
    if (!PyArg_ParseTuple(args, "i", &ordinal)) {
        return NULL;
    }
    CHECK_LOADED();
    CALL(p_cuDeviceGet(&device, ordinal), "cuDeviceGet");
    return PyLong_FromLong(device);
}

static PyObject *py_cuDeviceGetName(PyObject *self, PyObject *args)
{
    int device;
    char name[256] = {0};
    if (!PyArg_ParseTuple(args, "i", &device)) {
        return NULL;
    }
    CHECK_LOADED();
    CALL(p_cuDeviceGetName(name, (int)sizeof(name) - 1, device), "cuDeviceGetName");
    return PyUnicode_FromString(name);
}

static PyObject *py_cuDeviceTotalMem(PyObject *self, PyObject *args)
{
    int device;
    size_t bytes = 0;
    if (!PyArg_ParseTuple(args, "i", &device)) {
        return NULL;
    }
    CHECK_LOADED();
    CALL(p_cuDeviceTotalMem(&bytes, device), "cuDeviceTotalMem");
    return PyLong_FromSize_t(bytes);
}

static PyObject *py_cuDeviceGetAttribute(PyObject *self, PyObject *args)
{
    int attribute, device, value = 0;
    if (!PyArg_ParseTuple(args, "ii", &attribute, &device)) {
        return NULL;
    }
    CHECK_LOADED();
    CALL(p_cuDeviceGetAttribute(&value, attribute, device), "cuDeviceGetAttribute");
    return PyLong_FromLong(value);
}

static PyMethodDef methods[] = {
    {"_load", py_load, METH_VARARGS, "Open the driver library at the given path."},
    {"_is_loaded", py_is_loaded, METH_NOARGS, "Whether the driver library is open."},
    {"cuInit", py_cuInit, METH_VARARGS, "cuInit(flags=0)"},
    {"cuDriverGetVersion", py_cuDriverGetVersion, METH_NOARGS, "cuDriverGetVersion() -> int"},
    {"cuDeviceGetCount", py_cuDeviceGetCount, METH_NOARGS, "cuDeviceGetCount() -> int"},
    {"cuDeviceGet", py_cuDeviceGet, METH_VARARGS, "cuDeviceGet(ordinal) -> device"},
    {"cuDeviceGetName", py_cuDeviceGetName, METH_VARARGS, "cuDeviceGetName(device) -> str"},
    {"cuDeviceTotalMem", py_cuDeviceTotalMem, METH_VARARGS, "cuDeviceTotalMem(device) -> int"},
    {"cuDeviceGetAttribute", py_cuDeviceGetAttribute, METH_VARARGS,
     "cuDeviceGetAttribute(attribute, device) -> int"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "cuda.bindings._driver", "CUDA driver API entry points.", -1, methods,
};

PyMODINIT_FUNC PyInit__driver(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
#ifdef Py_GIL_DISABLED
    /* Free-threaded builds (3.14t): the entry points are resolved once, under driver.py's lock. */
    PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
#endif
    CUDAError = PyErr_NewExceptionWithDoc(
        "cuda.bindings._driver.CUDAError",
        "A driver call returned a non-zero CUresult; .code and .name carry it.",
        PyExc_RuntimeError, NULL);
    DriverLoadError = PyErr_NewExceptionWithDoc(
        "cuda.bindings._driver.DriverLoadError",
        "The CUDA driver library could not be opened.", PyExc_RuntimeError, NULL);
    if (CUDAError == NULL || DriverLoadError == NULL ||
        PyModule_AddObjectRef(m, "CUDAError", CUDAError) < 0 ||
        PyModule_AddObjectRef(m, "DriverLoadError", DriverLoadError) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

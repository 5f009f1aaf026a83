#include "sc_cl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sc_cl_load(sc_cl_api *api, char *err, size_t err_len)
{
    const char *candidates[] = {getenv("SPARSECL_OPENCL_LIB"), "libOpenCL.so.1", "libOpenCL.so", "libmali.so"};
    void *lib = NULL;
    const char *tried = "";
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates && !lib; ++i) {
        if (!candidates[i] || !*candidates[i])
            continue;
        tried = candidates[i];
        lib = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (i == 0 && !lib)
            break;  /* an explicit choice that fails is an error, not a reason to try others */
    }
    if (!lib) {
        snprintf(err, err_len, "cannot load the OpenCL library (%s)", tried);
        return -1;
    }
    void *symbol;
#define SC_CL_RESOLVE(ret, name, params)                                             \
    symbol = dlsym(lib, #name);                                                      \
    if (!symbol) {                                                                   \
        snprintf(err, err_len, "the OpenCL library %s lacks " #name, tried);         \
        dlclose(lib);                                                                \
        return -1;                                                                   \
    }                                                                                \
    memcpy(&api->name, &symbol, sizeof symbol);
    SC_CL_FUNCTIONS(SC_CL_RESOLVE)
#undef SC_CL_RESOLVE
    return 0;
}

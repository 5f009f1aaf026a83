/* libFuzzer harness for the bundle's .npy reader (runtime_c/sc_npy.c): any input must give either data
 * of the promised size or an error message, never a crash or an out-of-bounds access. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sc_npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[512];
    snprintf(path, sizeof path, "/tmp/sparsecl-fuzz-%d.npy", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    float *out = NULL;
    size_t n = 0;
    const size_t sample_sizes[] = {1, 64, 784};
    for (size_t i = 0; i < sizeof sample_sizes / sizeof *sample_sizes; ++i) {
        if (sc_npy_read(path, sample_sizes[i], &out, &n, err, sizeof err) == 0) {
            volatile float sink = 0.0f;
            for (size_t j = 0; j < n * sample_sizes[i]; ++j)   /* every promised value is readable */
                sink += out[j];
            (void)sink;
            free(out);
        } else if (out != NULL || strlen(err) == 0 || strchr(err, '\n')) {
            abort();                                           /* errors are one line, and leak nothing */
        }
    }
    unlink(path);
    return 0;
}

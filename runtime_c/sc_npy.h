/* Reading and writing .npy files (format versions 1.0 to 3.0), with every size checked. */
#ifndef SC_NPY_H
#define SC_NPY_H

#include <stddef.h>

/* Reads float32 or uint8 data whose trailing dimensions multiply to sample_size ((N, sample_size),
 * (N, 28, 28), ...; a 1-D array of sample_size values is one sample). On success *out holds
 * *n_samples * sample_size floats (free() it) and 0 is returned; on failure err holds one line. */
int sc_npy_read(const char *path, size_t sample_size, float **out, size_t *n_samples,
                char *err, size_t err_len);

/* Writes a (rows, cols) float32 array. */
int sc_npy_write(const char *path, const float *data, size_t rows, size_t cols, char *err, size_t err_len);

#endif

#include "sc_npy.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIMS 8
#define MAX_FILE_BYTES 0xFFFFFFFFu   /* 4 GiB; on 32-bit hosts size_t cannot exceed it anyway */

static int fail(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* The value of 'key' in the header dict: a pointer just past "'key':" and any spaces, or NULL. */
static const char *dict_value(const char *header, const char *key)
{
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s':", key);
    const char *p = strstr(header, quoted);
    if (!p)
        return NULL;
    p += strlen(quoted);
    while (*p == ' ')
        ++p;
    return p;
}

static int parse_shape(const char *p, size_t *dims, int *ndim)
{
    if (*p++ != '(')
        return -1;
    *ndim = 0;
    for (;;) {
        while (*p == ' ')
            ++p;
        if (*p == ')')
            return 0;
        if (*p < '0' || *p > '9' || *ndim == MAX_DIMS)
            return -1;
        size_t v = 0;
        while (*p >= '0' && *p <= '9') {
            if (v > (SIZE_MAX - 9) / 10)
                return -1;
            v = v * 10 + (size_t)(*p++ - '0');
        }
        dims[(*ndim)++] = v;
        while (*p == ' ')
            ++p;
        if (*p == ',')
            ++p;
        else if (*p != ')')
            return -1;
    }
}

int sc_npy_read(const char *path, size_t sample_size, float **out, size_t *n_samples,
                char *err, size_t err_len)
{
    *out = NULL;
    *n_samples = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, err_len, "cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t size = 0;
    int rc = -1;
    if (fseek(f, 0, SEEK_END) != 0 || ftell(f) < 0) {
        fail(err, err_len, "%s: cannot determine the file size", path);
        goto done;
    }
    size = (size_t)ftell(f);
#if SIZE_MAX > MAX_FILE_BYTES
    if (size > MAX_FILE_BYTES) {
        fail(err, err_len, "%s: file too large (%zu bytes)", path, size);
        goto done;
    }
#endif
    rewind(f);
    buf = malloc(size ? size : 1);
    if (!buf || fread(buf, 1, size, f) != size) {
        fail(err, err_len, "%s: cannot read the file", path);
        goto done;
    }
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        fail(err, err_len, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    const int major = buf[6];
    size_t header_len, offset;
    if (major == 1) {
        header_len = (size_t)buf[8] | (size_t)buf[9] << 8;
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) {
            fail(err, err_len, "%s: truncated .npy header", path);
            goto done;
        }
        header_len = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        offset = 12;
    } else {
        fail(err, err_len, "%s: unsupported .npy version %d", path, major);
        goto done;
    }
    if (header_len > size - offset || header_len > 65536) {
        fail(err, err_len, "%s: truncated .npy header", path);
        goto done;
    }
    char header[65537];
    memcpy(header, buf + offset, header_len);
    header[header_len] = '\0';
    offset += header_len;

    const char *descr = dict_value(header, "descr");
    size_t item;
    int is_u8;
    if (descr && (strncmp(descr, "'<f4'", 5) == 0)) {
        item = 4;
        is_u8 = 0;
    } else if (descr && (strncmp(descr, "'|u1'", 5) == 0 || strncmp(descr, "'<u1'", 5) == 0)) {
        item = 1;
        is_u8 = 1;
    } else {
        fail(err, err_len, "%s: input must be float32 or uint8 (little-endian)", path);
        goto done;
    }
    const char *fortran = dict_value(header, "fortran_order");
    if (!fortran || strncmp(fortran, "False", 5) != 0) {
        fail(err, err_len, "%s: Fortran-ordered arrays are not supported; save with C order", path);
        goto done;
    }
    size_t dims[MAX_DIMS];
    int ndim;
    const char *shape = dict_value(header, "shape");
    if (!shape || parse_shape(shape, dims, &ndim) != 0) {
        fail(err, err_len, "%s: cannot parse the array shape", path);
        goto done;
    }
    size_t n, trailing = 1;
    if (ndim == 0) {
        fail(err, err_len, "%s: a scalar is not an input; expected shape (N, %zu)", path, sample_size);
        goto done;
    } else if (ndim == 1) {
        n = 1;
        trailing = dims[0];
    } else {
        n = dims[0];
        for (int d = 1; d < ndim; ++d) {
            if (dims[d] != 0 && trailing > SIZE_MAX / dims[d]) {
                fail(err, err_len, "%s: array shape overflows", path);
                goto done;
            }
            trailing *= dims[d];
        }
    }
    if (trailing != sample_size) {
        fail(err, err_len, "%s: each sample has %zu values, the model takes %zu", path, trailing, sample_size);
        goto done;
    }
    if (n == 0) {
        fail(err, err_len, "%s: the array holds no samples", path);
        goto done;
    }
    if (n > (size - offset) / (sample_size * item) || n * sample_size * item != size - offset) {
        fail(err, err_len, "%s: data size does not match the shape (truncated or padded file)", path);
        goto done;
    }
    const size_t count = n * sample_size;
    float *data = malloc(count * sizeof(float));
    if (!data) {
        fail(err, err_len, "%s: out of memory for %zu values", path, count);
        goto done;
    }
    const unsigned char *src = buf + offset;
    for (size_t i = 0; i < count; ++i) {
        float v;
        if (is_u8) {
            v = (float)src[i];
        } else {
            memcpy(&v, src + 4 * i, 4);   /* the host is little-endian, like the file */
            if (!isfinite(v)) {
                free(data);
                fail(err, err_len, "%s: sample %zu contains NaN or infinity", path, i / sample_size);
                goto done;
            }
        }
        data[i] = v;
    }
    *out = data;
    *n_samples = n;
    rc = 0;
done:
    free(buf);
    fclose(f);
    return rc;
}

int sc_npy_write(const char *path, const float *data, size_t rows, size_t cols, char *err, size_t err_len)
{
    char header[128];
    int len = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }",
                       rows, cols);
    /* Pad with spaces so that magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64. */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail(err, err_len, "cannot write %s: %s", path, strerror(errno));
    const unsigned header_len = (unsigned)(len + pad + 1);
    const unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                        (unsigned char)(header_len & 0xff), (unsigned char)(header_len >> 8)};
    int ok = fwrite(preamble, 1, 10, f) == 10 && fwrite(header, 1, (size_t)len, f) == (size_t)len;
    for (int i = 0; i < pad && ok; ++i)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(data, sizeof(float), rows * cols, f) == rows * cols;
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        return fail(err, err_len, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

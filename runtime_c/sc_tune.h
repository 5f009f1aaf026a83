/* Kernel variants chosen on the board. A tunable bundle (sparsecl generate --tunable) stores every fully
 * connected layer in CSR form, with its unrolled code where that variant exists; the runtime makes each
 * layer the variant wanted before it runs, and `infer --autotune` keeps the fastest ones in a tune file
 * that later runs read. */
#ifndef SC_TUNE_H
#define SC_TUNE_H

#include <stddef.h>

#include "sc_model.h"

#define SC_VARIANTS 3   /* enum sc_variant */

extern const char *const sc_variant_names[SC_VARIANTS];

/* 1 when the layer is tunable and can run as variant v. */
int sc_tune_can(const sc_layer *layer, int variant);

/* A copy of a model with its tunable layers resolved to one variant each. */
typedef struct {
    sc_model model;
    sc_layer *layers;
    void **dense;       /* per layer, the dense weights built from CSR, or NULL */
} sc_tuned;

/* variants: per layer, the variant wanted, or -1 (and NULL: all) for the bundle's default. Returns 0, or -1
 * with err. Release with sc_tune_release, also after a failure. */
int sc_tune_resolve(const sc_model *m, const int *variants, sc_tuned *out, char *err, size_t err_len);
void sc_tune_release(sc_tuned *t);

/* The variants a tune file holds for this model and backend, into variants (n_layers entries, -1 where it
 * names none). Returns 1 when it held some, 0 when there is no file or nothing for this backend, and -1
 * with err when the file is unreadable, malformed or written for another model. */
int sc_tune_load(const char *path, const sc_model *m, const char *backend, int *variants, char *err,
                 size_t err_len);

/* Writes the variants chosen for this backend, keeping another backend's line of the same model; seconds
 * (n_layers x SC_VARIANTS, negative where not tried) go into a comment. Atomic: a reader sees the old file
 * or the new one. Returns 0, or -1 with err. */
int sc_tune_save(const char *path, const sc_model *m, const char *backend, int batch, const int *variants,
                 const double *seconds, char *err, size_t err_len);

#endif

/* The network on an OpenCL device, built from the model's kernel source. */
#ifndef SC_CLNET_H
#define SC_CLNET_H

#include <stddef.h>

#include "sc_model.h"

typedef struct sc_clnet sc_clnet;

/* Opens a device ($SPARSECL_DEVICE = "P:D" picks one; else the first GPU, else the first device),
 * builds the kernels and uploads the weights. NULL with a one-line reason in err on failure. */
sc_clnet *sc_clnet_create(const sc_model *model, int max_batch, char *err, size_t err_len);

/* Logits (n x classes) for n <= max_batch raw samples. Returns 0, or -1 with err. layer_seconds, when
 * not NULL, gets each layer's time added to it: layers then run one launch each, waited for in turn. */
int sc_clnet_forward(sc_clnet *net, const float *raw, float *logits, int n, double *layer_seconds, char *err,
                     size_t err_len);

const char *sc_clnet_device(const sc_clnet *net);
double sc_clnet_build_seconds(const sc_clnet *net);
int sc_clnet_cached(const sc_clnet *net);   /* 1 when the kernels came from the on-disk binary cache */
void sc_clnet_destroy(sc_clnet *net);

#endif

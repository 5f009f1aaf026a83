/* The description of a network that every bundle's generated model.c fills in. */
#ifndef SC_MODEL_H
#define SC_MODEL_H

#include <stdint.h>

enum sc_layer_kind {
    SC_LAYER_CSR = 1,    /* fully connected, weights in CSR form: y = W x + b */
    SC_LAYER_CONV = 2,   /* 2-D convolution, stride 1; filters in CSR form, column (ci * k + ky) * k + kx */
    SC_LAYER_MAXPOOL = 3 /* 2x2 max-pooling, stride 2 */
};

/* How a fully connected layer is computed (see codegen/plan.py); convolutions always use CSR. */
enum sc_variant {
    SC_VARIANT_CSR = 0,      /* CSR loop over rowptr, cols, vals */
    SC_VARIANT_DENSE = 1,    /* vals holds every weight, row-major; no indices */
    SC_VARIANT_UNROLLED = 2  /* generated code with the weights as literals; no arrays */
};

/* Features of an image are ordered (channel, row, column). */
typedef struct {
    const char *name;        /* sanitised identifier, also the OpenCL kernel prefix */
    int kind;                /* enum sc_layer_kind */
    int n_in, n_out;         /* features in and out */
    int relu;
    int rows, nnz;           /* weight rows (units or filters) and stored weights */
    int c_in, h, w;          /* convolution and pooling: input shape */
    int c_out, oh, ow;       /* and output shape */
    int k, pad;              /* convolution: kernel size and zero padding */
    int tile;                /* convolution: outputs of a row per work-item of the OpenCL forward kernel */
    const int32_t *rowptr;   /* rows + 1; NULL for pooling and the dense and unrolled variants */
    const void *cols;        /* nnz column indices (at least one entry is stored), col_bytes each; or NULL */
    const void *vals;        /* nnz values (likewise; rows * n_in for the dense variant; NULL unrolled):
                                float, or IEEE half when val_bytes is 2 */
    int col_bytes;           /* 1, 2 or 4: uint8_t, uint16_t or int32_t */
    int val_bytes;           /* 4 or 2 */
    const float *bias;       /* rows */
    int variant;             /* enum sc_variant */
    int tunable;             /* 1: rowptr, cols and vals hold CSR whatever the variant (and unrolled is set
                                where that variant exists); sc_tune_resolve makes the layer its variant */
    /* the unrolled variant's plain C forward pass: n samples, sample-major x (n_in each) and y (n_out) */
    void (*unrolled)(const float *x, float *y, int n);
} sc_layer;

typedef struct {
    const char *name;
    const char *target;      /* "c" or "opencl" */
    int input_size;          /* raw values per sample */
    int classes;
    int max_width;           /* widest activation, input included */
    float mean, scale;       /* preprocessing: x = (raw - mean) * scale */
    int n_layers;
    const sc_layer *layers;
    const char *kernel_source;   /* OpenCL C source, or NULL for the plain C target */
    int fused;                   /* the source also has `network`: every layer in one launch, used for
                                    batches below vector_width */
    int vector_width;            /* samples per work-item in the kernels (activations are feature-major) */
    int golden_count;            /* samples for --selftest */
    const float *golden_input;   /* golden_count x input_size raw values */
    const float *golden_logits;  /* golden_count x classes, from the trainer */
} sc_model;

extern const sc_model sc_the_model;

/* Column index e of a layer, stored in col_bytes. */
static inline int32_t sc_col_at(const sc_layer *l, int32_t e)
{
    switch (l->col_bytes) {
    case 1:
        return ((const uint8_t *)l->cols)[e];
    case 2:
        return ((const uint16_t *)l->cols)[e];
    default:
        return ((const int32_t *)l->cols)[e];
    }
}

#endif

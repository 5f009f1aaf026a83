/* The description of a network that every bundle's generated model.c fills in. */
#ifndef SC_MODEL_H
#define SC_MODEL_H

#include <stdint.h>

enum sc_layer_kind {
    SC_LAYER_CSR = 1 /* fully connected, weights in CSR form: y = x W^T + b */
};

typedef struct {
    const char *name;        /* sanitised identifier, also the OpenCL kernel prefix */
    int kind;                /* enum sc_layer_kind */
    int n_in, n_out;
    int relu;
    int nnz;
    const int32_t *rowptr;   /* n_out + 1 */
    const int32_t *cols;     /* nnz (at least one entry is stored) */
    const float *vals;       /* nnz (likewise) */
    const float *bias;       /* n_out */
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
    int vector_width;            /* samples per work-item in the kernels (activations are feature-major) */
    int golden_count;            /* samples for --selftest */
    const float *golden_input;   /* golden_count x input_size raw values */
    const float *golden_logits;  /* golden_count x classes, from the trainer */
} sc_model;

extern const sc_model sc_the_model;

#endif

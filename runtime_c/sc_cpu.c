#include "sc_cpu.h"

/* The same arithmetic, in the same order, as templates/kernels/csr.cl.j2's forward kernel. */
static void csr_forward(const sc_layer *l, const float *x, float *y, int n)
{
    for (int b = 0; b < n; ++b) {
        const float *xb = x + (long)b * l->n_in;
        float *yb = y + (long)b * l->n_out;
        for (int i = 0; i < l->n_out; ++i) {
            float acc = l->bias[i];
            for (int32_t k = l->rowptr[i]; k < l->rowptr[i + 1]; ++k)
                acc += l->vals[k] * xb[l->cols[k]];
            yb[i] = (l->relu && acc < 0.0f) ? 0.0f : acc;
        }
    }
}

void sc_cpu_forward(const sc_model *m, const float *raw, float *logits, int n,
                    float *scratch_a, float *scratch_b)
{
    const long count = (long)n * m->input_size;
    for (long i = 0; i < count; ++i)
        scratch_a[i] = (raw[i] - m->mean) * m->scale;
    float *in = scratch_a, *out = scratch_b;
    for (int l = 0; l < m->n_layers; ++l) {
        float *dest = (l == m->n_layers - 1) ? logits : out;
        csr_forward(&m->layers[l], in, dest, n);
        out = in;
        in = dest;
    }
}

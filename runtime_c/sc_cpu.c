#include "sc_cpu.h"

#include <math.h>

#include "sc_half.h"
#include "sc_time.h"

/* Values are stored as narrow as each layer allows (column indices too: sc_col_at). */
static inline float val_at(const sc_layer *l, int32_t e)
{
    return l->val_bytes == 2 ? sc_half_to_float(((const uint16_t *)l->vals)[e]) : ((const float *)l->vals)[e];
}

/* Each layer does the same arithmetic, in the same order, as its forward kernel in templates/kernels/. */

/* One loop per storage of the indices and values, chosen once per layer rather than per weight. */
#define CSR_FORWARD(NAME, COL_T, LOAD_VAL)                                                \
    static void NAME(const sc_layer *l, const float *x, float *y, int n)                \
    {                                                                                   \
        const COL_T *cols = (const COL_T *)l->cols;                                     \
        for (int b = 0; b < n; ++b) {                                                   \
            const float *xb = x + (long)b * l->n_in;                                    \
            float *yb = y + (long)b * l->n_out;                                         \
            for (int i = 0; i < l->n_out; ++i) {                                        \
                float acc = l->bias[i];                                                 \
                for (int32_t e = l->rowptr[i]; e < l->rowptr[i + 1]; ++e)               \
                    acc += LOAD_VAL(l, e) * xb[cols[e]];                                \
                yb[i] = (l->relu && acc < 0.0f) ? 0.0f : acc;                           \
            }                                                                           \
        }                                                                               \
    }
#define FLOAT_VAL(l, e) (((const float *)(l)->vals)[e])
#define HALF_VAL(l, e) sc_half_to_float(((const uint16_t *)(l)->vals)[e])
CSR_FORWARD(csr_u8_f32, uint8_t, FLOAT_VAL)
CSR_FORWARD(csr_u16_f32, uint16_t, FLOAT_VAL)
CSR_FORWARD(csr_i32_f32, int32_t, FLOAT_VAL)
CSR_FORWARD(csr_u8_f16, uint8_t, HALF_VAL)
CSR_FORWARD(csr_u16_f16, uint16_t, HALF_VAL)
CSR_FORWARD(csr_i32_f16, int32_t, HALF_VAL)

/* The dense variant: every weight stored, summed in column order (the zeros change no sum). */
static void dense_forward(const sc_layer *l, const float *x, float *y, int n)
{
    for (int b = 0; b < n; ++b) {
        const float *xb = x + (long)b * l->n_in;
        float *yb = y + (long)b * l->n_out;
        for (int i = 0; i < l->n_out; ++i) {
            float acc = l->bias[i];
            const int32_t row = i * l->n_in;
            for (int j = 0; j < l->n_in; ++j)
                acc += val_at(l, row + j) * xb[j];
            yb[i] = (l->relu && acc < 0.0f) ? 0.0f : acc;
        }
    }
}

static void csr_forward(const sc_layer *l, const float *x, float *y, int n)
{
    if (l->variant == SC_VARIANT_UNROLLED) {
        l->unrolled(x, y, n);
        return;
    }
    if (l->variant == SC_VARIANT_DENSE) {
        dense_forward(l, x, y, n);
        return;
    }
    const int half = l->val_bytes == 2;
    if (l->col_bytes == 1)
        (half ? csr_u8_f16 : csr_u8_f32)(l, x, y, n);
    else if (l->col_bytes == 2)
        (half ? csr_u16_f16 : csr_u16_f32)(l, x, y, n);
    else
        (half ? csr_i32_f16 : csr_i32_f32)(l, x, y, n);
}

/* Each tap (a nonzero of a filter) is decoded once and applied at every output position it reaches, over
 * contiguous rows. Every output still sums its bias and then the filter's taps in order, skipping those
 * that fall into the padding, exactly as the conv kernel does. */
static void conv_forward(const sc_layer *l, const float *x, float *y, int n)
{
    const int kk = l->k * l->k, plane = l->oh * l->ow;
    for (int b = 0; b < n; ++b) {
        const float *xb = x + (long)b * l->n_in;
        float *yb = y + (long)b * l->n_out;
        for (int co = 0; co < l->c_out; ++co) {
            float *out = yb + co * plane;
            for (int p = 0; p < plane; ++p)
                out[p] = l->bias[co];
            for (int32_t e = l->rowptr[co]; e < l->rowptr[co + 1]; ++e) {
                const int col = sc_col_at(l, e), ky = (col % kk) / l->k, kx = col % l->k;
                const float v = val_at(l, e);
                const float *xc = xb + (col / kk) * l->h * l->w;
                /* output positions whose input (oy + ky - pad, ox + kx - pad) lies inside the image */
                const int oy0 = ky < l->pad ? l->pad - ky : 0, ox0 = kx < l->pad ? l->pad - kx : 0;
                const int oy1 = l->h + l->pad - ky < l->oh ? l->h + l->pad - ky : l->oh;
                const int ox1 = l->w + l->pad - kx < l->ow ? l->w + l->pad - kx : l->ow;
                for (int oy = oy0; oy < oy1; ++oy) {
                    const float *xr = xc + (oy + ky - l->pad) * l->w + kx - l->pad;
                    float *orow = out + oy * l->ow;
                    for (int ox = ox0; ox < ox1; ++ox)
                        orow[ox] += v * xr[ox];
                }
            }
            if (l->relu)
                for (int p = 0; p < plane; ++p)
                    out[p] = out[p] < 0.0f ? 0.0f : out[p];
        }
    }
}

/* fmaxf's result (a NaN loses to a number) without its call into libm, which gcc keeps unless fast-math */
static inline float max2(float a, float b) { return a > b ? a : (b == b ? b : a); }

static void maxpool_forward(const sc_layer *l, const float *x, float *y, int n)
{
    for (int b = 0; b < n; ++b) {
        const float *xb = x + (long)b * l->n_in;
        float *yb = y + (long)b * l->n_out;
        for (int c = 0; c < l->c_out; ++c)
            for (int oy = 0; oy < l->oh; ++oy)
                for (int ox = 0; ox < l->ow; ++ox) {
                    const float *v = xb + c * l->h * l->w + 2 * oy * l->w + 2 * ox;
                    yb[(c * l->oh + oy) * l->ow + ox] = max2(max2(v[0], v[1]), max2(v[l->w], v[l->w + 1]));
                }
    }
}

void sc_cpu_forward(const sc_model *m, const float *raw, float *logits, int n,
                    float *scratch_a, float *scratch_b, double *layer_seconds)
{
    const long count = (long)n * m->input_size;
    for (long i = 0; i < count; ++i)
        scratch_a[i] = (raw[i] - m->mean) * m->scale;
    float *in = scratch_a, *out = scratch_b;
    for (int l = 0; l < m->n_layers; ++l) {
        const sc_layer *layer = &m->layers[l];
        float *dest = (l == m->n_layers - 1) ? logits : out;
        const double t0 = layer_seconds ? sc_now() : 0.0;
        if (layer->kind == SC_LAYER_CONV)
            conv_forward(layer, in, dest, n);
        else if (layer->kind == SC_LAYER_MAXPOOL)
            maxpool_forward(layer, in, dest, n);
        else
            csr_forward(layer, in, dest, n);
        if (layer_seconds)
            layer_seconds[l] += sc_now() - t0;
        out = in;
        in = dest;
    }
}

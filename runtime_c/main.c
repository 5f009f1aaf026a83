/* infer: run the bundled network.
 *
 *   infer INPUT.npy OUTPUT.npy   raw samples (float32 or uint8) in, float32 logits (N, classes) out
 *   infer --selftest             compare with the trainer's logits baked in at generation time
 *   infer --bench N [--batch B] [--layers]
 *                                time N forward passes (one JSON line; kernel build reported apart);
 *                                --layers adds N more, timing each layer on its own (autotuning)
 *   infer --info                 the model and the device used
 * Options: --cpu (plain C even where OpenCL is available).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_cpu.h"
#include "sc_model.h"
#include "sc_npy.h"
#include "sc_time.h"
#ifdef SC_WITH_OPENCL
#include "sc_clnet.h"
#endif

#define CHUNK 256   /* samples per forward pass */
#define ERR_LEN 512

typedef struct {
    const sc_model *model;
    int max_batch;
    float *scratch_a, *scratch_b;
#ifdef SC_WITH_OPENCL
    sc_clnet *cl;
#endif
} runner;

static int usage(void)
{
    fprintf(stderr, "usage: infer INPUT.npy OUTPUT.npy [--cpu]\n"
                    "       infer --selftest [--cpu]\n"
                    "       infer --bench N [--batch B] [--layers] [--cpu]\n"
                    "       infer --info [--cpu]\n");
    return 2;
}

static int runner_open(runner *r, int max_batch, int force_cpu)
{
    const sc_model *m = &sc_the_model;
    r->model = m;
    r->max_batch = max_batch;
    r->scratch_a = malloc((size_t)max_batch * (size_t)m->max_width * sizeof(float));
    r->scratch_b = malloc((size_t)max_batch * (size_t)m->max_width * sizeof(float));
    if (!r->scratch_a || !r->scratch_b) {
        fprintf(stderr, "infer: out of memory\n");
        return -1;
    }
#ifdef SC_WITH_OPENCL
    r->cl = NULL;
    if (!force_cpu) {
        char err[ERR_LEN];
        r->cl = sc_clnet_create(m, max_batch, err, sizeof err);
        if (!r->cl)
            fprintf(stderr, "infer: %s; using the plain C path\n", err);
    }
#else
    (void)force_cpu;
#endif
    return 0;
}

static const char *runner_backend(const runner *r)
{
#ifdef SC_WITH_OPENCL
    if (r->cl)
        return "opencl";
#endif
    (void)r;
    return "c";
}

/* layer_seconds: NULL, or per-layer times to add to (see sc_cpu_forward and sc_clnet_forward). */
static int runner_forward(runner *r, const float *raw, float *logits, int n, double *layer_seconds)
{
#ifdef SC_WITH_OPENCL
    if (r->cl) {
        char err[ERR_LEN];
        if (sc_clnet_forward(r->cl, raw, logits, n, layer_seconds, err, sizeof err) != 0) {
            fprintf(stderr, "infer: %s\n", err);
            return -1;
        }
        return 0;
    }
#endif
    sc_cpu_forward(r->model, raw, logits, n, r->scratch_a, r->scratch_b, layer_seconds);
    return 0;
}

static void runner_close(runner *r)
{
#ifdef SC_WITH_OPENCL
    sc_clnet_destroy(r->cl);
#endif
    free(r->scratch_a);
    free(r->scratch_b);
}

static int forward_all(runner *r, const float *raw, float *logits, size_t n)
{
    const sc_model *m = r->model;
    for (size_t start = 0; start < n; start += (size_t)r->max_batch) {
        const size_t count = n - start < (size_t)r->max_batch ? n - start : (size_t)r->max_batch;
        if (runner_forward(r, raw + start * (size_t)m->input_size, logits + start * (size_t)m->classes,
                           (int)count, NULL) != 0)
            return -1;
    }
    return 0;
}

static int run_file(runner *r, const char *in_path, const char *out_path)
{
    const sc_model *m = r->model;
    char err[ERR_LEN];
    float *raw;
    size_t n;
    if (sc_npy_read(in_path, (size_t)m->input_size, &raw, &n, err, sizeof err) != 0) {
        fprintf(stderr, "infer: %s\n", err);
        return 1;
    }
    float *logits = malloc(n * (size_t)m->classes * sizeof(float));
    int rc = 1;
    if (!logits)
        fprintf(stderr, "infer: out of memory for %zu samples\n", n);
    else if (forward_all(r, raw, logits, n) == 0) {
        if (sc_npy_write(out_path, logits, n, (size_t)m->classes, err, sizeof err) != 0)
            fprintf(stderr, "infer: %s\n", err);
        else
            rc = 0;
    }
    free(raw);
    free(logits);
    return rc;
}

static int selftest(runner *r)
{
    const sc_model *m = r->model;
    const int n = m->golden_count;
    float *logits = malloc((size_t)n * (size_t)m->classes * sizeof(float));
    if (!logits || forward_all(r, m->golden_input, logits, (size_t)n) != 0) {
        free(logits);
        return 1;
    }
    double worst = 0.0;
    int agree = 0, within = 1;
    for (int b = 0; b < n; ++b) {
        const float *got = logits + (size_t)b * (size_t)m->classes;
        const float *want = m->golden_logits + (size_t)b * (size_t)m->classes;
        int best = 0, best_ref = 0;
        for (int c = 0; c < m->classes; ++c) {
            const double diff = fabs((double)got[c] - (double)want[c]);
            if (!(diff <= worst))   /* also catches NaN */
                worst = diff;
            if (!(diff <= 1e-4 * (1.0 + fabs((double)want[c]))))
                within = 0;
            best = got[c] > got[best] ? c : best;
            best_ref = want[c] > want[best_ref] ? c : best_ref;
        }
        agree += best == best_ref;
    }
    const int ok = within && agree == n;
    printf("selftest %s: %d samples, top-1 agreement %d/%d, max |logit difference| %.3g (%s)\n",
           ok ? "passed" : "FAILED", n, agree, n, worst, runner_backend(r));
    free(logits);
    return ok ? 0 : 1;
}

static int compare_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench(runner *r, int runs, int batch, int per_layer, double build_seconds)
{
    const sc_model *m = r->model;
    float *raw = calloc((size_t)batch * (size_t)m->input_size, sizeof(float));
    float *logits = malloc((size_t)batch * (size_t)m->classes * sizeof(float));
    double *times = malloc((size_t)runs * sizeof(double));
    double *layer_times = calloc((size_t)runs * (size_t)m->n_layers, sizeof(double));
    int rc = 1;
    if (!raw || !logits || !times || !layer_times) {
        fprintf(stderr, "infer: out of memory\n");
        goto done;
    }
    for (int b = 0; b < batch; ++b)   /* real samples, repeated */
        memcpy(raw + (size_t)b * (size_t)m->input_size,
               m->golden_input + (size_t)(b % m->golden_count) * (size_t)m->input_size,
               (size_t)m->input_size * sizeof(float));
    if (runner_forward(r, raw, logits, batch, NULL) != 0)   /* warm-up: first launches are slower */
        goto done;
    for (int i = 0; i < runs; ++i) {
        const double t0 = sc_now();
        if (runner_forward(r, raw, logits, batch, NULL) != 0)
            goto done;
        times[i] = sc_now() - t0;
    }
    qsort(times, (size_t)runs, sizeof *times, compare_double);
    printf("{\"backend\": \"%s\", \"batch\": %d, \"runs\": %d, \"median_s\": %.9g, \"p90_s\": %.9g, "
           "\"min_s\": %.9g, \"build_s\": %.6g",
           runner_backend(r), batch, runs, times[runs / 2], times[(runs * 9) / 10 < runs ? (runs * 9) / 10 : runs - 1],
           times[0], build_seconds);
    if (per_layer) {
        /* layer_times is runs x n_layers; the median of each layer's column */
        for (int i = 0; i < runs; ++i)
            if (runner_forward(r, raw, logits, batch, layer_times + (size_t)i * (size_t)m->n_layers) != 0)
                goto done;
        printf(", \"layers\": [");
        for (int l = 0; l < m->n_layers; ++l) {
            for (int i = 0; i < runs; ++i)
                times[i] = layer_times[(size_t)i * (size_t)m->n_layers + (size_t)l];
            qsort(times, (size_t)runs, sizeof *times, compare_double);
            printf("%s{\"name\": \"%s\", \"median_s\": %.9g}", l ? ", " : "", m->layers[l].name, times[runs / 2]);
        }
        printf("]");
    }
    printf("}\n");
    rc = 0;
done:
    free(raw);
    free(logits);
    free(times);
    free(layer_times);
    return rc;
}

static int info(const runner *r)
{
    const sc_model *m = r->model;
    printf("model %s, target %s, input %d values, %d classes, %d layers\n", m->name, m->target, m->input_size,
           m->classes, m->n_layers);
    /* fp16 weights are widened as they are loaded (vload_half): the arithmetic is fp32 on every backend. */
    printf("arithmetic fp32\n");
    static const char *kinds[] = {"?", "csr", "conv", "maxpool"};
    for (int l = 0; l < m->n_layers; ++l) {
        const sc_layer *layer = &m->layers[l];
        printf("  %-12s %s %d -> %d, %d nonzeros%s", layer->name, kinds[layer->kind], layer->n_in, layer->n_out,
               layer->nnz, layer->relu ? ", relu" : "");
        static const char *variants[] = {"csr", "dense", "unrolled"};
        if (layer->kind == SC_LAYER_CSR)
            printf(", %s kernel", variants[layer->variant]);
        if (layer->kind != SC_LAYER_MAXPOOL)
            printf(", %d-byte indices, %s weights", layer->col_bytes, layer->val_bytes == 2 ? "fp16" : "fp32");
        printf("\n");
    }
#ifdef SC_WITH_OPENCL
    if (r->cl) {
        printf("backend opencl on %s (kernels %s in %.3f s)\n", sc_clnet_device(r->cl),
               sc_clnet_cached(r->cl) ? "loaded from the cache" : "compiled", sc_clnet_build_seconds(r->cl));
        return 0;
    }
#endif
    printf("backend c\n");
    return 0;
}

/* Upper bounds for --bench and --batch; the fuzzing harness builds with small ones so that every input
 * finishes quickly, while the parsing it checks stays the same. */
#ifndef SC_MAX_RUNS
#define SC_MAX_RUNS 1000000
#endif
#ifndef SC_MAX_BATCH
#define SC_MAX_BATCH 65536
#endif

static int parse_count(const char *text, int low, int high, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < low || v > high)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    int force_cpu = 0, do_selftest = 0, do_info = 0, runs = 0, batch = 1, per_layer = 0;
    const char *paths[2];
    int n_paths = 0;
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (strcmp(a, "--cpu") == 0)
            force_cpu = 1;
        else if (strcmp(a, "--selftest") == 0)
            do_selftest = 1;
        else if (strcmp(a, "--info") == 0)
            do_info = 1;
        else if (strcmp(a, "--layers") == 0)
            per_layer = 1;
        else if (strcmp(a, "--bench") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], 1, SC_MAX_RUNS, &runs) != 0)
                return usage();
        } else if (strcmp(a, "--batch") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], 1, SC_MAX_BATCH, &batch) != 0)
                return usage();
        } else if (a[0] == '-' && a[1] != '\0')
            return usage();
        else if (n_paths < 2)
            paths[n_paths++] = a;
        else
            return usage();
    }
    const int modes = do_selftest + do_info + (runs > 0) + (n_paths > 0);
    if (modes != 1 || (n_paths > 0 && n_paths != 2) || (per_layer && runs == 0))
        return usage();

    runner r = {0};
    const double t0 = sc_now();
    if (runner_open(&r, runs > 0 ? batch : CHUNK, force_cpu) != 0) {
        runner_close(&r);
        return 1;
    }
    const double setup_seconds = sc_now() - t0;
    int rc;
    if (do_selftest)
        rc = selftest(&r);
    else if (do_info)
        rc = info(&r);
    else if (runs > 0)
        rc = bench(&r, runs, batch, per_layer, setup_seconds);
    else
        rc = run_file(&r, paths[0], paths[1]);
    runner_close(&r);
    return rc;
}

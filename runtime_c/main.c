/* infer: run the bundled network.
 *
 *   infer INPUT.npy OUTPUT.npy   raw samples (float32 or uint8) in, float32 logits (N, classes) out
 *   infer --selftest             compare with the trainer's logits baked in at generation time
 *   infer --bench N [--batch B] [--layers]
 *                                time N forward passes (one JSON line; kernel build reported apart);
 *                                --layers adds N more, timing each layer on its own (autotuning)
 *   infer --autotune [--bench N] [--batch B]
 *                                a tunable bundle: time every kernel variant of each fully connected
 *                                layer (N runs, default 100) and keep the fastest in the tune file,
 *                                which later runs read ($SPARSECL_TUNE_FILE, else this program's path
 *                                with .tune added)
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
#include "sc_tune.h"
#ifdef SC_WITH_OPENCL
#include "sc_clnet.h"
#endif

#define CHUNK 256   /* samples per forward pass */
#define ERR_LEN 512

typedef struct {
    const sc_model *model;   /* the bundle's model with its layers resolved to their variants */
    sc_tuned tuned;
    const char *tune_path;   /* NULL: no tune file */
    int tuned_from_file;     /* the variants came from the tune file */
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
                    "       infer --autotune [--bench N] [--batch B] [--cpu]\n"
                    "       infer --info [--cpu]\n");
    return 2;
}

static int is_tunable(const sc_model *m)
{
    for (int l = 0; l < m->n_layers; ++l)
        if (m->layers[l].tunable)
            return 1;
    return 0;
}

/* The bundle's layers resolved for a backend: to `variants` when given, else to what the tune file holds
 * for that backend, else to the bundle's defaults. A tune file that does not fit only costs a warning. */
static int runner_resolve(runner *r, const char *backend, const int *variants)
{
    const sc_model *m = &sc_the_model;
    char err[ERR_LEN];
    int *from_file = NULL;
    r->tuned_from_file = 0;
    if (!variants && r->tune_path && is_tunable(m) && (from_file = malloc((size_t)m->n_layers * sizeof(int)))) {
        const int got = sc_tune_load(r->tune_path, m, backend, from_file, err, sizeof err);
        if (got < 0)
            fprintf(stderr, "infer: %s; using the default kernel variants\n", err);
        r->tuned_from_file = got > 0;
        variants = from_file;
    }
    const int rc = sc_tune_resolve(m, variants, &r->tuned, err, sizeof err);
    free(from_file);
    r->model = &r->tuned.model;
    if (rc != 0)
        fprintf(stderr, "infer: %s\n", err);
    return rc;
}

static int runner_open(runner *r, int max_batch, int force_cpu, const int *variants)
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
        if (runner_resolve(r, "opencl", variants) != 0)
            return -1;
        r->cl = sc_clnet_create(r->model, max_batch, err, sizeof err);
        if (r->cl)
            return 0;
        fprintf(stderr, "infer: %s; using the plain C path\n", err);
        sc_tune_release(&r->tuned);
    }
#else
    (void)force_cpu;
#endif
    return runner_resolve(r, "c", variants);
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
    sc_tune_release(&r->tuned);
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

/* batch real samples, the golden inputs repeated */
static float *bench_input(const sc_model *m, int batch)
{
    float *raw = malloc((size_t)batch * (size_t)m->input_size * sizeof(float));
    for (int b = 0; raw && b < batch; ++b)
        memcpy(raw + (size_t)b * (size_t)m->input_size,
               m->golden_input + (size_t)(b % m->golden_count) * (size_t)m->input_size,
               (size_t)m->input_size * sizeof(float));
    return raw;
}

/* Each layer's median over `runs` forward passes that time every layer on its own. times: runs entries. */
static int layer_medians(runner *r, const float *raw, float *logits, int runs, int batch, double *times,
                         double *medians)
{
    const sc_model *m = r->model;
    double *layer_times = calloc((size_t)runs * (size_t)m->n_layers, sizeof(double));
    int rc = -1;
    if (!layer_times) {
        fprintf(stderr, "infer: out of memory\n");
        return -1;
    }
    for (int i = 0; i < runs; ++i)     /* layer_times is runs x n_layers */
        if (runner_forward(r, raw, logits, batch, layer_times + (size_t)i * (size_t)m->n_layers) != 0)
            goto done;
    for (int l = 0; l < m->n_layers; ++l) {
        for (int i = 0; i < runs; ++i)
            times[i] = layer_times[(size_t)i * (size_t)m->n_layers + (size_t)l];
        qsort(times, (size_t)runs, sizeof *times, compare_double);
        medians[l] = times[runs / 2];
    }
    rc = 0;
done:
    free(layer_times);
    return rc;
}

static int bench(runner *r, int runs, int batch, int per_layer, double build_seconds)
{
    const sc_model *m = r->model;
    float *raw = bench_input(m, batch);
    float *logits = malloc((size_t)batch * (size_t)m->classes * sizeof(float));
    double *times = malloc((size_t)runs * sizeof(double));
    double *medians = malloc((size_t)m->n_layers * sizeof(double));
    int rc = 1;
    if (!raw || !logits || !times || !medians) {
        fprintf(stderr, "infer: out of memory\n");
        goto done;
    }
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
        if (layer_medians(r, raw, logits, runs, batch, times, medians) != 0)
            goto done;
        printf(", \"layers\": [");
        for (int l = 0; l < m->n_layers; ++l)
            printf("%s{\"name\": \"%s\", \"median_s\": %.9g}", l ? ", " : "", m->layers[l].name, medians[l]);
        printf("]");
    }
    printf("}\n");
    rc = 0;
done:
    free(raw);
    free(logits);
    free(times);
    free(medians);
    return rc;
}

/* Times every variant of each tunable layer (all layers in one variant per round, as one bundle would
 * run), keeps the fastest per layer in the tune file, and prints the timings as one JSON line. */
static int autotune(const char *path, int runs, int batch, int force_cpu)
{
    const sc_model *m = &sc_the_model;
    if (!is_tunable(m)) {
        fprintf(stderr, "infer: this bundle has one kernel variant per layer; generate it with --tunable to "
                        "tune on this device\n");
        return 1;
    }
    if (!path) {
        fprintf(stderr, "infer: no place for the tune file: set SPARSECL_TUNE_FILE\n");
        return 1;
    }
    const size_t n = (size_t)m->n_layers;
    double *seconds = malloc(n * SC_VARIANTS * sizeof(double)), *medians = malloc(n * sizeof(double));
    double *times = malloc((size_t)runs * sizeof(double));
    int *variants = malloc(n * sizeof(int)), *chosen = malloc(n * sizeof(int));
    float *raw = bench_input(m, batch), *logits = malloc((size_t)batch * (size_t)m->classes * sizeof(float));
    char backend[16] = "", err[ERR_LEN];
    int rc = 1;
    if (!seconds || !medians || !times || !variants || !chosen || !raw || !logits) {
        fprintf(stderr, "infer: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n * SC_VARIANTS; ++i)
        seconds[i] = -1.0;
    for (int v = 0; v < SC_VARIANTS; ++v) {
        int tried = 0;
        for (int l = 0; l < m->n_layers; ++l) {
            const int can = sc_tune_can(&m->layers[l], v);
            variants[l] = can ? v : m->layers[l].tunable ? SC_VARIANT_CSR : -1;
            tried += can;
        }
        if (!tried)
            continue;
        runner r = {0};
        /* every round on the backend the first one got */
        const int cpu = force_cpu || strcmp(backend, "c") == 0;
        if (runner_open(&r, batch, cpu, variants) != 0 ||
            (backend[0] && strcmp(backend, runner_backend(&r)) != 0) ||
            runner_forward(&r, raw, logits, batch, NULL) != 0 ||
            layer_medians(&r, raw, logits, runs, batch, times, medians) != 0) {
            fprintf(stderr, "infer: timing the %s variant failed\n", sc_variant_names[v]);
            runner_close(&r);
            goto done;
        }
        snprintf(backend, sizeof backend, "%s", runner_backend(&r));
        runner_close(&r);
        for (int l = 0; l < m->n_layers; ++l)
            if (variants[l] == v && sc_tune_can(&m->layers[l], v))
                seconds[(size_t)l * SC_VARIANTS + (size_t)v] = medians[l];
    }
    printf("{\"backend\": \"%s\", \"batch\": %d, \"runs\": %d, \"layers\": [", backend, batch, runs);
    for (int l = 0, first = 1; l < m->n_layers; ++l) {
        chosen[l] = -1;
        if (!m->layers[l].tunable)
            continue;
        for (int v = 0; v < SC_VARIANTS; ++v) {
            const double t = seconds[(size_t)l * SC_VARIANTS + (size_t)v];
            if (t >= 0.0 && (chosen[l] < 0 || t < seconds[(size_t)l * SC_VARIANTS + (size_t)chosen[l]]))
                chosen[l] = v;
        }
        printf("%s{\"name\": \"%s\", \"variant\": \"%s\"", first ? "" : ", ", m->layers[l].name,
               sc_variant_names[chosen[l]]);
        for (int v = 0; v < SC_VARIANTS; ++v)
            if (seconds[(size_t)l * SC_VARIANTS + (size_t)v] >= 0.0)
                printf(", \"%s_s\": %.9g", sc_variant_names[v], seconds[(size_t)l * SC_VARIANTS + (size_t)v]);
        printf("}");
        first = 0;
    }
    printf("]}\n");
    if (sc_tune_save(path, m, backend, batch, chosen, seconds, err, sizeof err) != 0) {
        fprintf(stderr, "infer: %s\n", err);
        goto done;
    }
    fprintf(stderr, "infer: kernel variants for %s saved to %s\n", backend, path);
    rc = 0;
done:
    free(seconds);
    free(medians);
    free(times);
    free(variants);
    free(chosen);
    free(raw);
    free(logits);
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
            printf(", %s kernel%s", variants[layer->variant], sc_the_model.layers[l].tunable ? " (tunable)" : "");
        if (layer->kind != SC_LAYER_MAXPOOL)
            printf(", %d-byte indices, %s weights", layer->col_bytes, layer->val_bytes == 2 ? "fp16" : "fp32");
        printf("\n");
    }
    if (is_tunable(&sc_the_model))
        printf("variants %s\n", r->tuned_from_file ? "from the tune file" : "the bundle's defaults (infer --autotune tunes them)");
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
    int force_cpu = 0, do_selftest = 0, do_info = 0, do_autotune = 0, runs = 0, batch = 1, per_layer = 0;
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
        else if (strcmp(a, "--autotune") == 0)
            do_autotune = 1;
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
    const int modes = do_selftest + do_info + do_autotune + (runs > 0 && !do_autotune) + (n_paths > 0);
    if (modes != 1 || (n_paths > 0 && n_paths != 2) || (per_layer && (runs == 0 || do_autotune)))
        return usage();

    /* the tune file: $SPARSECL_TUNE_FILE, else beside this program */
    static char tune_path[1024];
    const char *env = getenv("SPARSECL_TUNE_FILE");
    if (env && *env)
        snprintf(tune_path, sizeof tune_path, "%s", env);
    else if (snprintf(tune_path, sizeof tune_path, "%s.tune", argv[0]) >= (int)sizeof tune_path)
        tune_path[0] = '\0';
    if (do_autotune)
        return autotune(tune_path[0] ? tune_path : NULL, runs > 0 ? runs : 100, batch, force_cpu);

    runner r = {.tune_path = tune_path[0] ? tune_path : NULL};
    const double t0 = sc_now();
    if (runner_open(&r, runs > 0 ? batch : CHUNK, force_cpu, NULL) != 0) {
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

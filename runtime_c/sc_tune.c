#include "sc_tune.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sc_variant_names[SC_VARIANTS] = {"csr", "dense", "unrolled"};

int sc_tune_can(const sc_layer *layer, int variant)
{
    if (!layer->tunable || variant < 0 || variant >= SC_VARIANTS)
        return 0;
    return variant != SC_VARIANT_UNROLLED || layer->unrolled != NULL;
}

/* Every weight row-major, scattered from the CSR arrays in the layer's value storage (float or half). */
static void *dense_from_csr(const sc_layer *l)
{
    const size_t size = (size_t)l->rows * (size_t)l->n_in;
    unsigned char *dense = calloc(size ? size : 1, (size_t)l->val_bytes);
    if (!dense)
        return NULL;
    for (int i = 0; i < l->rows; ++i)
        for (int32_t e = l->rowptr[i]; e < l->rowptr[i + 1]; ++e)
            memcpy(dense + ((size_t)i * (size_t)l->n_in + (size_t)sc_col_at(l, e)) * (size_t)l->val_bytes,
                   (const unsigned char *)l->vals + (size_t)e * (size_t)l->val_bytes, (size_t)l->val_bytes);
    return dense;
}

int sc_tune_resolve(const sc_model *m, const int *variants, sc_tuned *out, char *err, size_t err_len)
{
    out->model = *m;
    out->layers = calloc((size_t)m->n_layers, sizeof *out->layers);
    out->dense = calloc((size_t)m->n_layers, sizeof *out->dense);
    if (!out->layers || !out->dense) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    out->model.layers = out->layers;
    for (int l = 0; l < m->n_layers; ++l) {
        sc_layer *layer = &out->layers[l];
        *layer = m->layers[l];
        if (!layer->tunable)
            continue;
        const int want = variants && variants[l] >= 0 ? variants[l] : layer->variant;
        if (!sc_tune_can(layer, want)) {
            snprintf(err, err_len, "layer %s has no %s variant in this bundle", layer->name,
                     want >= 0 && want < SC_VARIANTS ? sc_variant_names[want] : "such");
            return -1;
        }
        layer->variant = want;
        layer->tunable = 0;          /* resolved: the arrays now mean what the variant says */
        if (want == SC_VARIANT_DENSE) {
            if (!(out->dense[l] = dense_from_csr(layer))) {
                snprintf(err, err_len, "out of memory for the dense weights of %s", layer->name);
                return -1;
            }
            layer->vals = out->dense[l];
            layer->rowptr = NULL;
            layer->cols = NULL;
        } else if (want == SC_VARIANT_UNROLLED) {
            layer->rowptr = NULL;
            layer->cols = NULL;
            layer->vals = NULL;
        }
    }
    return 0;
}

void sc_tune_release(sc_tuned *t)
{
    if (t->dense)
        for (int l = 0; l < t->model.n_layers; ++l)
            free(t->dense[l]);
    free(t->dense);
    free(t->layers);
    t->dense = NULL;
    t->layers = NULL;
}

/* Identifies the model a tune file was written for: its name and every layer's shape and nonzeros. */
static unsigned long long fingerprint(const sc_model *m)
{
    uint64_t hash = 14695981039346656037ull;
    char text[160];
    for (int l = -1; l < m->n_layers; ++l) {
        if (l < 0)
            snprintf(text, sizeof text, "%.120s|%d|%d", m->name, m->input_size, m->classes);
        else
            snprintf(text, sizeof text, "%.64s|%d|%d|%d|%d", m->layers[l].name, m->layers[l].kind,
                     m->layers[l].n_in, m->layers[l].n_out, m->layers[l].nnz);
        for (const char *c = text; *c; ++c)
            hash = (hash ^ (unsigned char)*c) * 1099511628211ull;
    }
    return (unsigned long long)hash;
}

#define LINE 4096
#define HEADER "sparsecl-tune 1 %016llx\n"

/* Fills variants from a line "BACKEND BATCH LAYER=VARIANT ...". Returns 0, or -1 with err. */
static int parse_choices(char *line, const sc_model *m, int *variants, char *err, size_t err_len)
{
    char *save = NULL;
    strtok_r(line, " \n", &save);          /* backend, already matched */
    strtok_r(NULL, " \n", &save);          /* batch it was tuned at */
    for (char *item; (item = strtok_r(NULL, " \n", &save)) != NULL;) {
        char *eq = strchr(item, '=');
        int layer = -1, variant = -1;
        if (eq) {
            *eq = '\0';
            for (int l = 0; l < m->n_layers; ++l)
                if (strcmp(m->layers[l].name, item) == 0)
                    layer = l;
            for (int v = 0; v < SC_VARIANTS; ++v)
                if (strcmp(sc_variant_names[v], eq + 1) == 0)
                    variant = v;
        }
        if (layer < 0 || variant < 0 || !sc_tune_can(&m->layers[layer], variant)) {
            snprintf(err, err_len, "names %.40s%s%.20s, which this bundle does not have", item, eq ? "=" : "",
                     eq ? eq + 1 : "");
            return -1;
        }
        variants[layer] = variant;
    }
    return 0;
}

int sc_tune_load(const char *path, const sc_model *m, const char *backend, int *variants, char *err,
                 size_t err_len)
{
    for (int l = 0; l < m->n_layers; ++l)
        variants[l] = -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[LINE], expected[64], problem[200] = "";
    snprintf(expected, sizeof expected, HEADER, fingerprint(m));
    int header = 0, found = 0;
    const size_t backend_len = strlen(backend);
    while (!problem[0] && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (!header) {
            if (strncmp(line, "sparsecl-tune ", 14) != 0)
                snprintf(problem, sizeof problem, "is not a tune file");
            else if (strcmp(line, expected) != 0)
                snprintf(problem, sizeof problem, "was tuned for another model");
            header = 1;
        } else if (strncmp(line, backend, backend_len) == 0 && line[backend_len] == ' ') {
            found = parse_choices(line, m, variants, problem, sizeof problem) == 0;
        }
    }
    fclose(f);
    if (!header && !problem[0])
        snprintf(problem, sizeof problem, "is empty");
    if (problem[0]) {
        for (int l = 0; l < m->n_layers; ++l)
            variants[l] = -1;
        snprintf(err, err_len, "%.300s %s", path, problem);
        return -1;
    }
    return found;
}

int sc_tune_save(const char *path, const sc_model *m, const char *backend, int batch, const int *variants,
                 const double *seconds, char *err, size_t err_len)
{
    /* another backend's line of the same model survives */
    char kept[LINE] = "", line[LINE], expected[64], tmp[1100];
    snprintf(expected, sizeof expected, HEADER, fingerprint(m));
    FILE *old = fopen(path, "r");
    if (old) {
        int same_model = 0;
        while (fgets(line, sizeof line, old)) {
            if (line[0] == '#' || line[0] == '\n')
                continue;
            if (!same_model) {
                if (strcmp(line, expected) != 0)
                    break;
                same_model = 1;
            } else if (!(strncmp(line, backend, strlen(backend)) == 0 && line[strlen(backend)] == ' ')) {
                snprintf(kept, sizeof kept, "%s", line);
            }
        }
        fclose(old);
    }
    snprintf(tmp, sizeof tmp, "%.1000s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, err_len, "cannot write %.300s", tmp);
        return -1;
    }
    fprintf(f, "# Kernel variants chosen by `infer --autotune` for this bundle; delete the file for the defaults.\n");
    fprintf(f, "# %s, batch %d, median seconds per layer:", backend, batch);
    for (int l = 0; l < m->n_layers; ++l) {
        if (!m->layers[l].tunable)
            continue;
        fprintf(f, " %s", m->layers[l].name);
        for (int v = 0; v < SC_VARIANTS; ++v)
            if (seconds[(size_t)l * SC_VARIANTS + (size_t)v] >= 0.0)
                fprintf(f, " %s %.3g", sc_variant_names[v], seconds[(size_t)l * SC_VARIANTS + (size_t)v]);
        fprintf(f, ";");
    }
    fprintf(f, "\n%s%s %d", expected, backend, batch);
    for (int l = 0; l < m->n_layers; ++l)
        if (m->layers[l].tunable && variants[l] >= 0)
            fprintf(f, " %s=%s", m->layers[l].name, sc_variant_names[variants[l]]);
    fprintf(f, "\n%s", kept);
    const int ok = !ferror(f);
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        remove(tmp);
        snprintf(err, err_len, "cannot write %.300s", path);
        return -1;
    }
    return 0;
}

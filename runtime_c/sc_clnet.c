#include "sc_clnet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sc_cl.h"
#include "sc_time.h"

#define MAX_PLATFORMS 16
#define MAX_DEVICES 16

#define PREFERRED_GROUP 64   /* work-items per group along the first dimension, when the device allows it */

typedef struct {
    cl_kernel kernel;
    size_t group;            /* local size along the first dimension, within the device's limits */
    cl_mem rowptr, cols, vals, bias;
} layer_state;

struct sc_clnet {
    sc_cl_api cl;
    const sc_model *model;
    int max_batch;
    cl_context context;
    cl_command_queue queue;
    cl_program program;
    cl_kernel preprocess;
    size_t preprocess_group;
    cl_kernel network;       /* the fused kernel, when the model has one and SPARSECL_FUSED is not 0 */
    size_t network_group;
    cl_mem raw, act[2];
    float *logits_t;         /* feature-major logits, read back before transposing */
    layer_state *layers;
    char device[128];
    char *options;           /* build options: the OpenCL version, and each tunable layer's variant */
    double build_seconds;
    int cached;              /* the program came from the on-disk cache */
};

static int check(cl_int status, const char *what, char *err, size_t err_len)
{
    if (status == CL_SUCCESS)
        return 0;
    snprintf(err, err_len, "OpenCL error %d in %s", (int)status, what);
    return -1;
}

static int pick_device(sc_clnet *net, cl_device_id *chosen, char *err, size_t err_len)
{
    cl_platform_id platforms[MAX_PLATFORMS];
    cl_uint n_platforms = 0;
    if (net->cl.clGetPlatformIDs(MAX_PLATFORMS, platforms, &n_platforms) != CL_SUCCESS || n_platforms == 0) {
        snprintf(err, err_len, "no OpenCL platform found");
        return -1;
    }
    if (n_platforms > MAX_PLATFORMS)
        n_platforms = MAX_PLATFORMS;
    const char *spec = getenv("SPARSECL_DEVICE");
    int want_p = -1, want_d = -1;
    if (spec && *spec && sscanf(spec, "%d:%d", &want_p, &want_d) != 2) {
        snprintf(err, err_len, "SPARSECL_DEVICE must be PLATFORM:DEVICE (e.g. 0:0), got '%.40s'", spec);
        return -1;
    }
    int found = 0;
    for (int pass = 0; pass < 2 && !found; ++pass) {   /* a GPU first, then any device */
        for (cl_uint p = 0; p < n_platforms && !found; ++p) {
            cl_device_id devices[MAX_DEVICES];
            cl_uint n_devices = 0;
            if (net->cl.clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devices, &n_devices)
                != CL_SUCCESS)
                continue;
            if (n_devices > MAX_DEVICES)
                n_devices = MAX_DEVICES;
            for (cl_uint d = 0; d < n_devices && !found; ++d) {
                cl_device_type type = 0;
                net->cl.clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof type, &type, NULL);
                if (want_p >= 0 ? ((int)p == want_p && (int)d == want_d)
                                : (pass == 1 || (type & CL_DEVICE_TYPE_GPU))) {
                    *chosen = devices[d];
                    found = 1;
                }
            }
        }
        if (want_p >= 0)
            break;
    }
    if (!found) {
        snprintf(err, err_len, want_p >= 0 ? "no OpenCL device %d:%d" : "no OpenCL device found", want_p, want_d);
        return -1;
    }
    size_t len = 0;
    net->cl.clGetDeviceInfo(*chosen, CL_DEVICE_NAME, sizeof net->device - 1, net->device, &len);
    net->device[sizeof net->device - 1] = '\0';
    return 0;
}

/* The largest power of two up to PREFERRED_GROUP that the kernel on this device accepts (Mali GPUs
 * report 256 or 384 as their maximum; a kernel's own limit can be lower). */
static size_t group_size(sc_clnet *net, cl_kernel kernel, cl_device_id device)
{
    size_t device_max = 1, kernel_max = 1, group = PREFERRED_GROUP;
    net->cl.clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof device_max, &device_max, NULL);
    net->cl.clGetKernelWorkGroupInfo(kernel, device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kernel_max, &kernel_max, NULL);
    while (group > 1 && (group > device_max || group > kernel_max))
        group /= 2;
    return group;
}

/* Global sizes are rounded up to whole groups; every kernel ignores the work-items past its range. */
static size_t round_up(size_t n, size_t group) { return (n + group - 1) / group * group; }

/* A read-only copy of data; NULL data (an array the layer's variant does without) gives a placeholder. */
static cl_mem upload(sc_clnet *net, const void *data, size_t bytes, cl_int *status)
{
    static const int32_t placeholder = 0;
    if (!data) {
        data = &placeholder;
        bytes = sizeof placeholder;
    }
    return net->cl.clCreateBuffer(net->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, (void *)data,
                                  status);
}

/* Built programs are cached on disk, keyed by a hash of everything that makes the binary: the kernel
 * source, the build options, the device and its driver. A later start loads the binary and skips the
 * compiler; any problem with the cache just means compiling again. */
#define BUILD_OPTIONS "-cl-std=CL1.2"

/* "-cl-std=CL1.2 -DSC_VARIANT_<layer>=<variant> ..." for every fully connected layer: the kernel source of
 * a tunable bundle has every variant of such a layer and compiles the one the runtime resolved. */
static char *build_options(const sc_model *m)
{
    size_t len = sizeof BUILD_OPTIONS;
    for (int l = 0; l < m->n_layers; ++l)
        len += strlen(m->layers[l].name) + 32;
    char *options = malloc(len), *end = options;
    if (!options)
        return NULL;
    end += snprintf(end, len, "%s", BUILD_OPTIONS);
    for (int l = 0; l < m->n_layers; ++l)
        if (m->layers[l].kind == SC_LAYER_CSR)
            end += snprintf(end, len - (size_t)(end - options), " -DSC_VARIANT_%s=%d", m->layers[l].name,
                            m->layers[l].variant);
    return options;
}

static uint64_t fnv1a(uint64_t hash, const char *text)
{
    for (; *text; ++text)
        hash = (hash ^ (unsigned char)*text) * 1099511628211ull;
    return hash;
}

static int cache_path(sc_clnet *net, cl_device_id device, char *path, size_t len)
{
    const char *dir = getenv("SPARSECL_CACHE_DIR"), *home = getenv("HOME");
    char base[384], info[256];
    if (dir && *dir) {
        snprintf(base, sizeof base, "%s", dir);
    } else if (home && *home) {
        snprintf(base, sizeof base, "%s/.cache", home);
        mkdir(base, 0700);
        snprintf(base, sizeof base, "%s/.cache/sparsecl", home);
    } else {
        return -1;
    }
    mkdir(base, 0700);           /* may exist already; a failure shows when the file is written */
    uint64_t hash = fnv1a(fnv1a(14695981039346656037ull, net->model->kernel_source), net->options);
    const cl_uint keys[] = {CL_DEVICE_NAME, CL_DEVICE_VERSION, CL_DRIVER_VERSION};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; ++i) {
        info[0] = '\0';
        net->cl.clGetDeviceInfo(device, keys[i], sizeof info - 1, info, NULL);
        info[sizeof info - 1] = '\0';
        hash = fnv1a(hash, info);
    }
    snprintf(path, len, "%s/sparsecl-kernels-%016llx.bin", base, (unsigned long long)hash);
    return 0;
}

static int load_cached(sc_clnet *net, cl_device_id device, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char *binary = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && size < (64L << 20) && fseek(f, 0, SEEK_SET) == 0)
        binary = malloc((size_t)size);
    const int ok = binary && fread(binary, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    cl_int status = !ok, binary_status = CL_SUCCESS;
    if (ok) {
        const size_t length = (size_t)size;
        const unsigned char *data = binary;
        net->program = net->cl.clCreateProgramWithBinary(net->context, 1, &device, &length, &data, &binary_status,
                                                         &status);
        if (status == CL_SUCCESS && binary_status == CL_SUCCESS)
            status = net->cl.clBuildProgram(net->program, 1, &device, net->options, NULL, NULL);
        if (status != CL_SUCCESS && net->program) {
            net->cl.clReleaseProgram(net->program);
            net->program = NULL;
        }
    }
    free(binary);
    return ok && status == CL_SUCCESS && binary_status == CL_SUCCESS ? 0 : -1;
}

static void store_cached(sc_clnet *net, const char *path)
{
    size_t size = 0;
    if (net->cl.clGetProgramInfo(net->program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
        size == 0)
        return;
    unsigned char *binary = malloc(size);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = NULL;
    if (binary && net->cl.clGetProgramInfo(net->program, CL_PROGRAM_BINARIES, sizeof binary, &binary, NULL) == CL_SUCCESS &&
        (f = fopen(tmp, "wb")) != NULL) {
        const int ok = fwrite(binary, 1, size, f) == size;
        if (fclose(f) == 0 && ok)
            rename(tmp, path);       /* atomic: a reader sees the old file or the whole new one */
        else
            remove(tmp);
    }
    free(binary);
}

static int build(sc_clnet *net, cl_device_id device, char *err, size_t err_len)
{
    const double t0 = sc_now();
    char path[512];
    const int cacheable = cache_path(net, device, path, sizeof path) == 0 && !getenv("SPARSECL_NO_CACHE");
    if (cacheable && load_cached(net, device, path) == 0) {
        net->cached = 1;
        net->build_seconds = sc_now() - t0;
        return 0;
    }
    cl_int status;
    const char *source = net->model->kernel_source;
    net->program = net->cl.clCreateProgramWithSource(net->context, 1, &source, NULL, &status);
    if (check(status, "clCreateProgramWithSource", err, err_len))
        return -1;
    status = net->cl.clBuildProgram(net->program, 1, &device, net->options, NULL, NULL);
    if (status != CL_SUCCESS) {
        char log[512] = "";
        net->cl.clGetProgramBuildInfo(net->program, device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        log[sizeof log - 1] = '\0';
        for (char *c = log; *c; ++c)
            if (*c == '\n')
                *c = ' ';
        snprintf(err, err_len, "kernel build failed (%d): %.300s", (int)status, log);
        return -1;
    }
    if (cacheable)
        store_cached(net, path);
    net->build_seconds = sc_now() - t0;
    return 0;
}

/* The fused kernel's arguments are fixed but for the batch: raw, both activation buffers, then each weight
 * layer's rowptr, cols, vals and bias. */
static int set_network_args(sc_clnet *net, cl_device_id device, char *err, size_t err_len)
{
    cl_int status;
    net->network = net->cl.clCreateKernel(net->program, "network", &status);
    if (check(status, "clCreateKernel(network)", err, err_len))
        return -1;
    net->network_group = group_size(net, net->network, device);
    cl_uint arg = 0;
    status = net->cl.clSetKernelArg(net->network, arg++, sizeof(cl_mem), &net->raw);
    for (int i = 0; i < 2; ++i)
        status |= net->cl.clSetKernelArg(net->network, arg++, sizeof(cl_mem), &net->act[i]);
    for (int l = 0; l < net->model->n_layers; ++l) {
        const layer_state *s = &net->layers[l];
        if (net->model->layers[l].kind == SC_LAYER_MAXPOOL)
            continue;
        const cl_mem mems[] = {s->rowptr, s->cols, s->vals, s->bias};
        for (size_t i = 0; i < 4; ++i)
            status |= net->cl.clSetKernelArg(net->network, arg++, sizeof(cl_mem), &mems[i]);
    }
    return check(status, "clSetKernelArg(network)", err, err_len);
}

sc_clnet *sc_clnet_create(const sc_model *m, int max_batch, char *err, size_t err_len)
{
    sc_clnet *net = calloc(1, sizeof *net);
    if (!net) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    net->model = m;
    net->max_batch = max_batch;
    net->layers = calloc((size_t)m->n_layers, sizeof *net->layers);
    net->logits_t = malloc((size_t)max_batch * (size_t)m->classes * sizeof(float));
    cl_device_id device;
    cl_int status;
    net->options = build_options(m);
    if (!net->layers || !net->logits_t || !net->options) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (sc_cl_load(&net->cl, err, err_len) || pick_device(net, &device, err, err_len))
        goto fail;
    net->context = net->cl.clCreateContext(NULL, 1, &device, NULL, NULL, &status);
    if (check(status, "clCreateContext", err, err_len))
        goto fail;
    net->queue = net->cl.clCreateCommandQueue(net->context, device, 0, &status);
    if (check(status, "clCreateCommandQueue", err, err_len) || build(net, device, err, err_len))
        goto fail;
    net->preprocess = net->cl.clCreateKernel(net->program, "preprocess", &status);
    if (check(status, "clCreateKernel(preprocess)", err, err_len))
        goto fail;
    net->preprocess_group = group_size(net, net->preprocess, device);
    const size_t act_bytes = (size_t)max_batch * (size_t)m->max_width * sizeof(float);
    net->raw = net->cl.clCreateBuffer(net->context, CL_MEM_READ_ONLY,
                                      (size_t)max_batch * (size_t)m->input_size * sizeof(float), NULL, &status);
    if (check(status, "clCreateBuffer", err, err_len))
        goto fail;
    for (int i = 0; i < 2; ++i) {
        net->act[i] = net->cl.clCreateBuffer(net->context, CL_MEM_READ_WRITE, act_bytes, NULL, &status);
        if (check(status, "clCreateBuffer", err, err_len))
            goto fail;
    }
    for (int l = 0; l < m->n_layers; ++l) {
        const sc_layer *layer = &m->layers[l];
        layer_state *s = &net->layers[l];
        char name[96];
        snprintf(name, sizeof name, "%s_forward", layer->name);
        s->kernel = net->cl.clCreateKernel(net->program, name, &status);
        if (check(status, "clCreateKernel", err, err_len))
            goto fail;
        s->group = group_size(net, s->kernel, device);
        if (layer->kind == SC_LAYER_MAXPOOL)
            continue;
        /* Buffers are never empty; an array a variant does without becomes a placeholder. */
        const size_t stored = layer->variant == SC_VARIANT_DENSE ? (size_t)layer->rows * (size_t)layer->n_in
                              : layer->nnz > 0 ? (size_t)layer->nnz : 1;
        s->rowptr = upload(net, layer->rowptr, (size_t)(layer->rows + 1) * sizeof(int32_t), &status);
        if (!check(status, "clCreateBuffer", err, err_len))
            s->cols = upload(net, layer->cols, stored * (size_t)layer->col_bytes, &status);
        if (!check(status, "clCreateBuffer", err, err_len))
            s->vals = upload(net, layer->vals, stored * (size_t)layer->val_bytes, &status);
        if (!check(status, "clCreateBuffer", err, err_len))
            s->bias = upload(net, layer->bias, (size_t)layer->rows * sizeof(float), &status);
        if (check(status, "clCreateBuffer", err, err_len))
            goto fail;
    }
    const char *fused = getenv("SPARSECL_FUSED");
    if (m->fused && !(fused && strcmp(fused, "0") == 0) && set_network_args(net, device, err, err_len) != 0)
        goto fail;
    return net;
fail:
    sc_clnet_destroy(net);
    return NULL;
}

#define ARG(kernel, index, value) net->cl.clSetKernelArg(kernel, index, sizeof(value), &(value))

/* The last layer's feature-major output, read back and transposed to (n, classes). */
static int read_logits(sc_clnet *net, float *logits, int n, char *err, size_t err_len)
{
    const sc_model *m = net->model;
    cl_int status = net->cl.clEnqueueReadBuffer(net->queue, net->act[m->n_layers % 2], CL_TRUE, 0,
                                                (size_t)n * (size_t)m->classes * sizeof(float), net->logits_t, 0,
                                                NULL, NULL);
    if (check(status, "clEnqueueReadBuffer", err, err_len))
        return -1;
    for (int c = 0; c < m->classes; ++c)
        for (int b = 0; b < n; ++b)
            logits[b * m->classes + c] = net->logits_t[c * n + b];
    return 0;
}

int sc_clnet_forward(sc_clnet *net, const float *raw, float *logits, int n, double *layer_seconds, char *err,
                     size_t err_len)
{
    const sc_model *m = net->model;
    if (n < 1 || n > net->max_batch) {
        snprintf(err, err_len, "batch of %d outside 1..%d", n, net->max_batch);
        return -1;
    }
    cl_int status = net->cl.clEnqueueWriteBuffer(net->queue, net->raw, CL_FALSE, 0,
                                                 (size_t)n * (size_t)m->input_size * sizeof(float), raw, 0,
                                                 NULL, NULL);
    if (check(status, "clEnqueueWriteBuffer", err, err_len))
        return -1;
    if (net->network && n < m->vector_width && !layer_seconds) {        /* small batches: the whole network in one launch */
        cl_uint batch_arg = 3;      /* after raw, a, b and four buffers per weight layer */
        for (int l = 0; l < m->n_layers; ++l)
            batch_arg += m->layers[l].kind == SC_LAYER_MAXPOOL ? 0 : 4;
        const size_t global = net->network_group;
        status = ARG(net->network, batch_arg, n);
        if (!status)
            status = net->cl.clEnqueueNDRangeKernel(net->queue, net->network, 1, NULL, &global, &global, 0, NULL,
                                                    NULL);
        if (check(status, "network", err, err_len))
            return -1;
        return read_logits(net, logits, n, err, err_len);
    }
    /* Activations are feature-major on the device: preprocess transposes, and so does the read-back. */
    status = ARG(net->preprocess, 0, net->raw) | ARG(net->preprocess, 1, net->act[0]) |
             ARG(net->preprocess, 2, n);
    /* 2-D groups of 8 samples: the transposing reads and writes both stay close (groups along the features
     * only took about twice as long at batch 256 on PoCL). */
    const size_t ty = n >= 8 && net->preprocess_group >= 8 ? 8 : 1, tx = net->preprocess_group / ty;
    const size_t pre_global[2] = {round_up((size_t)m->input_size, tx), round_up((size_t)n, ty)};
    const size_t pre_local[2] = {tx, ty};
    if (!status)
        status = net->cl.clEnqueueNDRangeKernel(net->queue, net->preprocess, 2, NULL, pre_global, pre_local, 0,
                                                NULL, NULL);
    if (check(status, "preprocess", err, err_len))
        return -1;
    for (int l = 0; l < m->n_layers; ++l) {
        const sc_layer *layer = &m->layers[l];
        layer_state *s = &net->layers[l];
        cl_mem in = net->act[l % 2], out = net->act[(l + 1) % 2];
        /* Weight layers (dense or convolution) take (x, rowptr, cols, vals, bias, y, batch); pooling (x, y, batch). */
        if (layer->kind == SC_LAYER_MAXPOOL)
            status = ARG(s->kernel, 0, in) | ARG(s->kernel, 1, out) | ARG(s->kernel, 2, n);
        else
            status = ARG(s->kernel, 0, in) | ARG(s->kernel, 1, s->rowptr) | ARG(s->kernel, 2, s->cols) |
                     ARG(s->kernel, 3, s->vals) | ARG(s->kernel, 4, s->bias) | ARG(s->kernel, 5, out) |
                     ARG(s->kernel, 6, n);
        const size_t blocks = (size_t)((n + m->vector_width - 1) / m->vector_width);
        /* a work-item per unit and block of samples; the unrolled variant computes every unit at once, a
         * convolution `tile` outputs of a row */
        const size_t units = layer->variant == SC_VARIANT_UNROLLED ? 1
                             : layer->kind == SC_LAYER_CONV ? (size_t)layer->c_out * (size_t)layer->oh *
                                                                  (size_t)((layer->ow + layer->tile - 1) / layer->tile)
                                                            : (size_t)layer->n_out;
        const size_t group = layer->variant == SC_VARIANT_UNROLLED ? 1 : s->group;
        const size_t global[2] = {round_up(units, group), blocks};
        const size_t local[2] = {group, 1};
        if (layer_seconds)
            status |= net->cl.clFinish(net->queue);
        const double t0 = sc_now();
        if (!status)
            status = net->cl.clEnqueueNDRangeKernel(net->queue, s->kernel, 2, NULL, global, local, 0, NULL, NULL);
        if (layer_seconds) {
            status |= net->cl.clFinish(net->queue);
            layer_seconds[l] += sc_now() - t0;
        }
        if (check(status, layer->name, err, err_len))
            return -1;
    }
    return read_logits(net, logits, n, err, err_len);
}

const char *sc_clnet_device(const sc_clnet *net) { return net->device; }

double sc_clnet_build_seconds(const sc_clnet *net) { return net->build_seconds; }

int sc_clnet_cached(const sc_clnet *net) { return net->cached; }

void sc_clnet_destroy(sc_clnet *net)
{
    if (!net)
        return;
    if (net->layers) {
        for (int l = 0; l < net->model->n_layers; ++l) {
            layer_state *s = &net->layers[l];
            cl_mem mems[] = {s->rowptr, s->cols, s->vals, s->bias};
            for (size_t i = 0; i < 4; ++i)
                if (mems[i])
                    net->cl.clReleaseMemObject(mems[i]);
            if (s->kernel)
                net->cl.clReleaseKernel(s->kernel);
        }
        free(net->layers);
    }
    free(net->logits_t);
    free(net->options);
    cl_mem mems[] = {net->raw, net->act[0], net->act[1]};
    for (size_t i = 0; i < 3; ++i)
        if (mems[i])
            net->cl.clReleaseMemObject(mems[i]);
    if (net->preprocess)
        net->cl.clReleaseKernel(net->preprocess);
    if (net->network)
        net->cl.clReleaseKernel(net->network);
    if (net->program)
        net->cl.clReleaseProgram(net->program);
    if (net->queue)
        net->cl.clReleaseCommandQueue(net->queue);
    if (net->context)
        net->cl.clReleaseContext(net->context);
    free(net);
}

/*
 * handler.c
 *    Opening, warming up, calling and closing a service handler: a built-in
 *    (builtin:NAME) or a `const ros_udf` of a user library (PATH.so:SYMBOL).
 *
 * A user library is loaded as CREATE FUNCTION ... LANGUAGE c loads one
 * (runtime/exec/udf.c), with the same error messages, but a service has no
 * declaration to check it against: the descriptor itself is validated, and
 * each batch's column types are checked against it instead.  Built-ins are
 * type-generic and check their own arguments (service/builtin/).
 */
#include "service/handler.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core/types.h"
#include "service/builtin/builtin.h"
#include "service/builtin/builtin_int.h"
#ifdef ROSQL_HAVE_CUDA
#include "service/builtin/gpu.h"
#endif

#define BUILTIN_PREFIX "builtin:"

/* A loaded handler. */
struct svc_handler {
    char *spec;                 /* as given to svc_handler_open */
    char *options;              /* owned copy of the options, "" when none */
    const svc_builtin *builtin; /* a built-in, or NULL for a user library */
    void *dl;                   /* dlopen handle of the user library */
    const ros_udf *udf;         /* its descriptor (points into the library) */
    char *fname;                /* function name for messages: udf->name or the symbol */
    ros_func_ctx ctx;           /* state, options, device, host */
    bool inited;                /* init ran and succeeded: fini is due */
};

/* What a host offers when the worker installs nothing else. */
static const ros_host_api default_host = {ROS_UDF_ABI_VERSION, NULL};

static int check_device(const svc_builtin *b, int device, ros_error *err);
static int open_library(svc_handler *h, const char *spec, ros_error *err);
static int check_descriptor(const ros_udf *d, const char *symbol, const char *library, ros_error *err);
static int run_init(svc_handler *h, ros_error *err);
static int call_udf(svc_handler *h, const ros_batch *args, ros_vector *out, ros_error *err);
static int udf_warmup_input(const ros_udf *d, ros_batch *args, ros_error *err);
static void batch_free(ros_batch *b);

/* ---------------------------------------------------------------- */
/* Opening and closing */

svc_handler *svc_handler_open(const char *spec, const char *options, int device, ros_error *err)
{
    if (!spec)
        spec = "";
    svc_handler *h = calloc(1, sizeof *h);
    if (!h) {
        ros_error_oom(err);
        return NULL;
    }
    h->spec = strdup(spec);
    h->options = strdup(options ? options : "");
    if (!h->spec || !h->options) {
        ros_error_oom(err);
        goto fail;
    }
    h->ctx.options = h->options;
    h->ctx.device = device;
    h->ctx.host = &default_host;
    h->ctx.host_private = NULL;

    if (strncmp(spec, BUILTIN_PREFIX, strlen(BUILTIN_PREFIX)) == 0) {
        const char *name = spec + strlen(BUILTIN_PREFIX);
        h->builtin = svc_builtin_find(name);
        if (!h->builtin) {
            ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "unknown built-in handler \"%s\"", name);
            ros_error_hint(err, "The built-in handlers are echo, delay, embed and cosine.");
            goto fail;
        }
        if (check_device(h->builtin, device, err) < 0)
            goto fail;
        h->fname = strdup(spec);
        if (!h->fname) {
            ros_error_oom(err);
            goto fail;
        }
    } else {
        if (device < -1) {
            ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                          "device %d is not available: a device is -1 (CPU) or a CUDA device ordinal",
                          device);
            goto fail;
        }
        if (open_library(h, spec, err) < 0)
            goto fail;
    }
    if (run_init(h, err) < 0)
        goto fail;
    return h;
fail:
    svc_handler_close(h);
    return NULL;
}

void svc_handler_close(svc_handler *h)
{
    if (!h)
        return;
    if (h->inited) {
        if (h->builtin && h->builtin->fini)
            h->builtin->fini(&h->ctx);
        else if (h->udf && h->udf->fini)
            h->udf->fini(&h->ctx);
    }
    if (h->dl)
        dlclose(h->dl);
    free(h->fname);
    free(h->options);
    free(h->spec);
    free(h);
}

const char *svc_handler_spec(const svc_handler *h)
{
    return h->spec;
}

void svc_handler_set_host(svc_handler *h, const ros_host_api *host, void *host_private)
{
    h->ctx.host = host ? host : &default_host;
    h->ctx.host_private = host ? host_private : NULL;
}

/*
 * A built-in runs on device >= 0 only when it has a CUDA path in this build
 * and the device exists.  Returns 0 or -1 with err set.
 */
static int check_device(const svc_builtin *b, int device, ros_error *err)
{
    if (device == -1)
        return 0;
    if (device < -1)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                             "device %d is not available: a device is -1 (CPU) or a CUDA device ordinal",
                             device);
    if (!b->has_gpu)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                             "device %d is not available: builtin:%s has no GPU path in this build", device,
                             b->name);
    int n = svc_gpu_count();
    if (device >= n) {
        if (n == 0)
            return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                                 "device %d is not available: no CUDA device is visible", device);
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                             "device %d is not available: %d CUDA device%s visible", device, n,
                             n == 1 ? " is" : "s are");
    }
    return 0;
}

/*
 * Loads "PATH.so:SYMBOL" (split on the last ':', so a path may hold colons)
 * and validates the descriptor.  Returns 0 or -1 with err set; what was
 * loaded is left on h for svc_handler_close.
 */
static int open_library(svc_handler *h, const char *spec, ros_error *err)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || colon[1] == '\0') {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid handler \"%s\"", spec);
        ros_error_hint(err, "A handler is 'builtin:NAME' or 'PATH.so:SYMBOL'.");
        return -1;
    }
    size_t liblen = (size_t)(colon - spec);
    char library[PATH_MAX];
    char path[PATH_MAX + 2];
    if (liblen >= sizeof library) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid handler \"%s\"", spec);
        ros_error_detail(err, "The library path is longer than %d bytes.", PATH_MAX - 1);
        return -1;
    }
    memcpy(library, spec, liblen);
    library[liblen] = '\0';
    const char *symbol = colon + 1;
    /* a relative path names a file relative to the current directory, not
     * the loader's search path (as for CREATE FUNCTION) */
    if (!strchr(library, '/'))
        snprintf(path, sizeof path, "./%s", library);
    else
        snprintf(path, sizeof path, "%s", library);

    h->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h->dl) {
        const char *why = dlerror();
        return ros_error_set(err, ROS_ERR_UNDEFINED_FILE, "could not load library \"%s\": %s", library,
                             why ? why : "unknown error");
    }
    dlerror();
    h->udf = dlsym(h->dl, symbol);
    if (!h->udf) {
        ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "could not find function \"%s\" in file \"%s\"",
                      symbol, library);
        ros_error_hint(err, "The symbol must be an exported `const ros_udf` (see include/rosql/udf.h).");
        return -1;
    }
    if (check_descriptor(h->udf, symbol, library, err) < 0) {
        h->udf = NULL; /* not a ros_udf: fini must not be called */
        return -1;
    }
    h->fname = strdup(h->udf->name && h->udf->name[0] ? h->udf->name : symbol);
    if (!h->fname)
        return ros_error_oom(err);
    return 0;
}

/* Checks what a ros_udf must hold.  Returns 0 or -1 with err set. */
static int check_descriptor(const ros_udf *d, const char *symbol, const char *library, ros_error *err)
{
    const char *why = NULL;
    char buf[160];
    if (d->abi_version != ROS_UDF_ABI_VERSION) {
        snprintf(buf, sizeof buf, "The library was built for interface version %u; this rosql uses version %d.",
                 d->abi_version, ROS_UDF_ABI_VERSION);
        why = buf;
    } else if (!d->fn) {
        why = "It has no function pointer (fn).";
    } else if (d->nargs < 0 || d->nargs > ROS_UDF_MAX_ARGS) {
        snprintf(buf, sizeof buf, "It declares %d arguments; a function takes 0 to %d.", d->nargs,
                 ROS_UDF_MAX_ARGS);
        why = buf;
    } else if ((unsigned)d->ret_type >= ROS_TYPE_COUNT) {
        snprintf(buf, sizeof buf, "Its return type %d is not a known type.", (int)d->ret_type);
        why = buf;
    } else {
        for (int i = 0; i < d->nargs; i++)
            if ((unsigned)d->arg_types[i] >= ROS_TYPE_COUNT) {
                snprintf(buf, sizeof buf, "The type %d of its argument %d is not a known type.",
                         (int)d->arg_types[i], i + 1);
                why = buf;
                break;
            }
    }
    if (!why)
        return 0;
    ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "function \"%s\" in file \"%s\" is not a valid ros_udf",
                  symbol, library);
    ros_error_detail(err, "%s", why);
    return -1;
}

/* Runs the init of the built-in or library.  Returns 0 or -1 with err set. */
static int run_init(svc_handler *h, ros_error *err)
{
    if (h->builtin) {
        if (h->builtin->init) {
            ros_error e;
            ros_error_clear(&e);
            if (h->builtin->init(&h->ctx, &e) != 0) {
                /* keep the built-in's code: a bad option is 22023, not 38000 */
                ros_error_set(err, e.set ? e.code : ROS_ERR_EXTERNAL, "handler \"%s\" failed to initialise: %s",
                              h->spec, e.set ? e.message : "no message");
                if (e.detail[0])
                    ros_error_detail(err, "%s", e.detail);
                if (e.hint[0])
                    ros_error_hint(err, "%s", e.hint);
                return -1;
            }
        }
    } else if (h->udf->init) {
        h->ctx.errmsg[0] = '\0';
        if (h->udf->init(&h->ctx) != 0) {
            h->ctx.errmsg[sizeof h->ctx.errmsg - 1] = '\0';
            return ros_error_set(err, ROS_ERR_EXTERNAL, "handler \"%s\" failed to initialise: %s", h->spec,
                                 h->ctx.errmsg[0] ? h->ctx.errmsg : "no message");
        }
    }
    h->inited = true;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Calling */

int svc_handler_call(svc_handler *h, const char *method, const ros_batch *args, ros_vector *out,
                     int64_t *err_row, ros_error *err)
{
    *err_row = -1;
    if (!method)
        method = "";
    int rc;
    if (h->builtin) {
        memset(out, 0, sizeof *out);
        rc = h->builtin->call(&h->ctx, method, args, out, err_row, err);
        if (rc != 0) {
            if (!err->set)
                ros_error_set(err, ROS_ERR_INTERNAL, "handler \"%s\" failed without a message", h->spec);
        } else if (out->len != args->nrows) {
            rc = ros_error_set(err, ROS_ERR_INTERNAL, "handler \"%s\" returned %u rows for %u input rows",
                               h->spec, out->len, args->nrows);
            *err_row = -1;
        }
    } else {
        rc = call_udf(h, args, out, err);
        *err_row = -1; /* a ros_udf cannot name its failing row */
    }
    if (rc != 0) {
        ros_vector_free(out);
        return -1;
    }
    return 0;
}

/* Checks args against the descriptor and calls its fn.  0 or -1, err set. */
static int call_udf(svc_handler *h, const ros_batch *args, ros_vector *out, ros_error *err)
{
    const ros_udf *d = h->udf;
    ros_vector_init(out, d->ret_type);
    bool match = args->ncols == (uint32_t)d->nargs;
    for (int i = 0; match && i < d->nargs; i++)
        match = args->cols[i].type == d->arg_types[i];
    if (!match) {
        char want[256], got[256];
        svc_types_text(want, sizeof want, d->arg_types, d->nargs);
        svc_batch_types_text(got, sizeof got, args);
        return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH, "handler \"%s\" takes %s, received %s", h->spec,
                             want, got);
    }
    const ros_vector *cols[ROS_UDF_MAX_ARGS];
    for (int i = 0; i < d->nargs; i++) {
        if (args->cols[i].len < args->nrows)
            return ros_error_set(err, ROS_ERR_INTERNAL, "column %d has %u rows, the batch %u", i + 1,
                                 args->cols[i].len, args->nrows);
        cols[i] = &args->cols[i];
    }
    h->ctx.errmsg[0] = '\0';
    if (d->fn(&h->ctx, cols, args->nrows, out) != 0) {
        h->ctx.errmsg[sizeof h->ctx.errmsg - 1] = '\0';
        return ros_error_set(err, ROS_ERR_EXTERNAL, "function %s failed: %s", h->fname,
                             h->ctx.errmsg[0] ? h->ctx.errmsg : "no message");
    }
    if (out->type != d->ret_type)
        return ros_error_set(err, ROS_ERR_EXTERNAL, "function %s returned a column of type %s, declared %s",
                             h->fname, ros_type_name(out->type), ros_type_name(d->ret_type));
    if (out->len != args->nrows)
        return ros_error_set(err, ROS_ERR_EXTERNAL, "function %s returned %u rows for %u input rows", h->fname,
                             out->len, args->nrows);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Warm-up */

int svc_handler_warmup(svc_handler *h, ros_error *err)
{
    ros_batch args;
    memset(&args, 0, sizeof args);
    int rc;
    if (h->builtin)
        rc = h->builtin->warmup_input ? h->builtin->warmup_input(&h->ctx, &args, err) : 0;
    else
        rc = udf_warmup_input(h->udf, &args, err);
    if (rc == 0) {
        ros_vector out;
        int64_t row;
        rc = svc_handler_call(h, "", &args, &out, &row, err);
        if (rc == 0)
            ros_vector_free(&out);
        else
            ros_error_detail(err, "It failed on the warm-up batch.");
    }
    batch_free(&args);
    return rc == 0 ? 0 : -1;
}

/*
 * Four rows of each argument type of d: integers 0..3, floats 0.5..3.5,
 * booleans alternating, text "warm-up", 3-byte bytea, real[] of 4 floats
 * (a null-typed argument is all NULL).  Returns 0 or -1 with err set; what
 * was built stays in args for batch_free.
 */
static int udf_warmup_input(const ros_udf *d, ros_batch *args, ros_error *err)
{
    if (svc_batch_alloc(args, d->arg_types, (uint32_t)d->nargs, err) < 0)
        return -1;
    static const uint8_t bytes[3] = {0x00, 0x7f, 0xff};
    for (int c = 0; c < d->nargs; c++) {
        ros_vector *v = &args->cols[c];
        for (int i = 0; i < 4; i++) {
            float arr[4] = {0.5f + (float)i, 1.5f, -2.5f, 0.25f};
            int r;
            switch (v->type) {
            case ROS_TYPE_BOOL: r = ros_vector_append_bool(v, i % 2 == 0); break;
            case ROS_TYPE_INT16: r = ros_vector_append_i16(v, (int16_t)i); break;
            case ROS_TYPE_INT32: r = ros_vector_append_i32(v, i); break;
            case ROS_TYPE_INT64: r = ros_vector_append_i64(v, i); break;
            case ROS_TYPE_FLOAT32: r = ros_vector_append_f32(v, 0.5f + (float)i); break;
            case ROS_TYPE_FLOAT64: r = ros_vector_append_f64(v, 0.5 + i); break;
            case ROS_TYPE_TEXT: r = ros_vector_append_text(v, "warm-up"); break;
            case ROS_TYPE_BYTEA: r = ros_vector_append_bytes(v, bytes, sizeof bytes); break;
            case ROS_TYPE_FLOAT32_ARRAY: r = ros_vector_append_bytes(v, arr, sizeof arr); break;
            default: r = ros_vector_append_null(v); break;
            }
            if (r < 0)
                return ros_error_oom(err);
        }
    }
    args->nrows = 4;
    return 0;
}

/* Frees the columns of a batch built here and leaves it empty. */
static void batch_free(ros_batch *b)
{
    for (uint32_t i = 0; b->cols && i < b->ncols; i++)
        ros_vector_free(&b->cols[i]);
    free(b->cols);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- */
/* Devices */

int svc_gpu_count(void)
{
#ifdef ROSQL_HAVE_CUDA
    static atomic_int cached = -1;
    int n = atomic_load(&cached);
    if (n < 0) {
        n = svc_cuda_device_count();
        if (n < 0)
            n = 0;
        atomic_store(&cached, n);
    }
    return n;
#else
    return 0;
#endif
}

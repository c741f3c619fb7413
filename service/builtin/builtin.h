/*
 * builtin.h
 *    The built-in handlers of CREATE SERVICE ... USING 'builtin:NAME'.
 *
 * Built-ins are type-generic (echo returns whatever it is given), so they
 * have their own small interface rather than a fixed ros_udf signature.
 * Options reach them through ctx->options ("k=v\n" text): delay_ms,
 * per_row_ms, dim, seed, ...  See service/README.md for each one.
 */
#ifndef SVC_BUILTIN_H
#define SVC_BUILTIN_H

#include <rosql/udf.h>
#include <rosql/vector.h>

#include "runtime/core/error.h"

typedef struct svc_builtin {
    const char *name; /* "echo", "delay", "embed", "cosine" */
    /* Model load: parse options, allocate, copy weights to the device
     * (ctx->device >= 0).  Returns 0 or -1 with err set. */
    int (*init)(ros_func_ctx *ctx, ros_error *err);
    /* One batch: out is zeroed; set its type and append args->nrows rows.
     * Returns 0 or -1 with err set and *err_row (-1 when not one row). */
    int (*call)(ros_func_ctx *ctx, const char *method, const ros_batch *args, ros_vector *out,
                int64_t *err_row, ros_error *err);
    void (*fini)(ros_func_ctx *ctx);
    /* Builds the warm-up input (a few rows of the types the builtin takes). */
    int (*warmup_input)(ros_func_ctx *ctx, ros_batch *args, ros_error *err);
    int has_gpu; /* 1 when this build has a CUDA path for it */
} svc_builtin;

/* The built-in called name, or NULL. */
const svc_builtin *svc_builtin_find(const char *name);

#endif /* SVC_BUILTIN_H */

/*
 * example_udf.c
 *    Example user-defined C functions for rosql (see include/rosql/udf.h).
 *
 * Build: part of the rosql build (build/examples/librosql_example_udf.so).
 * Use:
 *     CREATE FUNCTION add_one(bigint) RETURNS bigint
 *         LANGUAGE c AS 'build/examples/librosql_example_udf.so', 'add_one_udf';
 *
 * `score` shows the init/fini hooks: init stands in for an expensive model
 * load and runs once per process; the function then uses the loaded state.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rosql/udf.h>

/* add_one(bigint) -> bigint */
static int add_one(ros_func_ctx *ctx, const ros_vector *const *args, uint32_t nrows, ros_vector *out)
{
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(args[0], i)) {
            if (ros_vector_append_null(out) < 0)
                goto oom;
            continue;
        }
        int64_t x = ROS_VEC_I64(args[0])[i];
        if (x == INT64_MAX) {
            snprintf(ctx->errmsg, sizeof ctx->errmsg, "bigint out of range");
            return 1;
        }
        if (ros_vector_append_i64(out, x + 1) < 0)
            goto oom;
    }
    return 0;
oom:
    snprintf(ctx->errmsg, sizeof ctx->errmsg, "out of memory");
    return 1;
}

ROS_UDF_EXPORT const ros_udf add_one_udf = {
    .abi_version = ROS_UDF_ABI_VERSION,
    .name = "add_one",
    .nargs = 1,
    .arg_types = {ROS_TYPE_INT64},
    .ret_type = ROS_TYPE_INT64,
    .fn = add_one,
};

/* word_count(text) -> integer: words separated by spaces */
static int word_count(ros_func_ctx *ctx, const ros_vector *const *args, uint32_t nrows, ros_vector *out)
{
    (void)ctx;
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(args[0], i)) {
            ros_vector_append_null(out);
            continue;
        }
        uint32_t n;
        const uint8_t *s = ros_vector_bytes(args[0], i, &n);
        int32_t words = 0;
        int in_word = 0;
        for (uint32_t k = 0; k < n; k++) {
            int sp = s[k] == ' ' || s[k] == '\t' || s[k] == '\n';
            if (!sp && !in_word)
                words++;
            in_word = !sp;
        }
        ros_vector_append_i32(out, words);
    }
    return 0;
}

ROS_UDF_EXPORT const ros_udf word_count_udf = {
    .abi_version = ROS_UDF_ABI_VERSION,
    .name = "word_count",
    .nargs = 1,
    .arg_types = {ROS_TYPE_TEXT},
    .ret_type = ROS_TYPE_INT32,
    .fn = word_count,
};

/* score(text) -> double precision: a toy "model" with weights loaded at init */
typedef struct model {
    double weights[256];
} model;

static int score_init(ros_func_ctx *ctx)
{
    model *m = malloc(sizeof *m);
    if (!m) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "out of memory loading the model");
        return 1;
    }
    for (int i = 0; i < 256; i++)
        m->weights[i] = sin((double)i) * 0.5 + 0.5;
    ctx->state = m;
    return 0;
}

static void score_fini(ros_func_ctx *ctx)
{
    free(ctx->state);
    ctx->state = NULL;
}

static int score(ros_func_ctx *ctx, const ros_vector *const *args, uint32_t nrows, ros_vector *out)
{
    const model *m = ctx->state;
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(args[0], i)) {
            ros_vector_append_null(out);
            continue;
        }
        uint32_t n;
        const uint8_t *s = ros_vector_bytes(args[0], i, &n);
        double acc = 0;
        for (uint32_t k = 0; k < n; k++)
            acc += m->weights[s[k]];
        ros_vector_append_f64(out, n ? acc / n : 0);
    }
    return 0;
}

ROS_UDF_EXPORT const ros_udf score_udf = {
    .abi_version = ROS_UDF_ABI_VERSION,
    .name = "score",
    .nargs = 1,
    .arg_types = {ROS_TYPE_TEXT},
    .ret_type = ROS_TYPE_FLOAT64,
    .fn = score,
    .init = score_init,
    .fini = score_fini,
};

/* echo(bigint) -> bigint: returns its argument; the in-process baseline of
 * the service benchmark (bench/service_bench.py) */
static int echo_i64(ros_func_ctx *ctx, const ros_vector *const *args, uint32_t nrows, ros_vector *out)
{
    const ros_vector *a = args[0];
    if (ros_vector_resize_fixed(out, nrows) < 0) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "out of memory");
        return 1;
    }
    memcpy(out->values, a->values, sizeof(int64_t) * nrows);
    for (uint32_t i = 0; a->validity && i < nrows; i++)
        if (ros_vector_is_null(a, i))
            ros_vector_set_valid(out, i, false);
    return 0;
}

ROS_UDF_EXPORT const ros_udf echo_udf = {
    .abi_version = ROS_UDF_ABI_VERSION,
    .name = "echo",
    .nargs = 1,
    .arg_types = {ROS_TYPE_INT64},
    .ret_type = ROS_TYPE_INT64,
    .fn = echo_i64,
};

/* fail_on_negative(bigint) -> bigint: errors on a negative input, for tests */
static int fail_on_negative(ros_func_ctx *ctx, const ros_vector *const *args, uint32_t nrows, ros_vector *out)
{
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(args[0], i)) {
            ros_vector_append_null(out);
            continue;
        }
        int64_t x = ROS_VEC_I64(args[0])[i];
        if (x < 0) {
            snprintf(ctx->errmsg, sizeof ctx->errmsg, "negative input %lld", (long long)x);
            return 1;
        }
        ros_vector_append_i64(out, x);
    }
    return 0;
}

ROS_UDF_EXPORT const ros_udf fail_on_negative_udf = {
    .abi_version = ROS_UDF_ABI_VERSION,
    .name = "fail_on_negative",
    .nargs = 1,
    .arg_types = {ROS_TYPE_INT64},
    .ret_type = ROS_TYPE_INT64,
    .fn = fail_on_negative,
};

/* crash_on_negative(bigint) -> bigint: x, but the process dies (abort) on a
 * negative input: a "poison row" for tests of decoupled functions, which
 * must not take the query down.  Never call it in-process on such input. */
static int crash_on_negative(ros_func_ctx *ctx, const ros_vector *const *args, uint32_t nrows, ros_vector *out)
{
    (void)ctx;
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(args[0], i)) {
            ros_vector_append_null(out);
            continue;
        }
        int64_t x = ROS_VEC_I64(args[0])[i];
        if (x < 0)
            abort();
        ros_vector_append_i64(out, x);
    }
    return 0;
}

ROS_UDF_EXPORT const ros_udf crash_on_negative_udf = {
    .abi_version = ROS_UDF_ABI_VERSION,
    .name = "crash_on_negative",
    .nargs = 1,
    .arg_types = {ROS_TYPE_INT64},
    .ret_type = ROS_TYPE_INT64,
    .fn = crash_on_negative,
};

/* spin(bigint) -> bigint: x * 2 after about 31 microseconds of CPU work per
 * row (2 ms per batch of 64 rows): the CPU-heavy function of the decoupling
 * benchmark (bench/decoupling_bench.py). */
static int spin(ros_func_ctx *ctx, const ros_vector *const *args, uint32_t nrows, ros_vector *out)
{
    (void)ctx;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t until = (int64_t)nrows * 31250; /* ns */
    volatile uint64_t acc = 0;
    do {
        for (int k = 0; k < 200; k++)
            acc += (uint64_t)k * 2654435761u;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((int64_t)(t.tv_sec - t0.tv_sec) * 1000000000 + (t.tv_nsec - t0.tv_nsec) < until);
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(args[0], i))
            ros_vector_append_null(out);
        else
            ros_vector_append_i64(out, ROS_VEC_I64(args[0])[i] * 2);
    }
    return 0;
}

ROS_UDF_EXPORT const ros_udf spin_udf = {
    .abi_version = ROS_UDF_ABI_VERSION,
    .name = "spin",
    .nargs = 1,
    .arg_types = {ROS_TYPE_INT64},
    .ret_type = ROS_TYPE_INT64,
    .fn = spin,
};

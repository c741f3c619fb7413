/*
 * delay.c
 *    builtin:delay: echo after sleeping delay_ms per batch plus per_row_ms
 *    per row: a stand-in for a model of known cost (tests of batching,
 *    deadlines, back-pressure and scaling).
 *
 * Options (milliseconds, fractions allowed, default 0): delay_ms, per_row_ms,
 * and init_ms, slept once in init: a stand-in for a model's load time
 * (tests and benchmarks of scaling and start-up).
 * The sleep is a nanosleep resumed after EINTR, so a signal to the worker
 * does not shorten it.
 */
#include "service/builtin/builtin_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

/* Parsed options, in ctx->state. */
typedef struct delay_state {
    double delay_ms;   /* per batch */
    double per_row_ms; /* per row */
} delay_state;

/* Largest delay accepted per option: one day. */
#define DELAY_MAX_MS 86400000.0

static int delay_init(ros_func_ctx *ctx, ros_error *err);
static void delay_fini(ros_func_ctx *ctx);
static int delay_call(ros_func_ctx *ctx, const char *method, const ros_batch *args, ros_vector *out,
                      int64_t *err_row, ros_error *err);
static void sleep_ms(double ms);

static int delay_init(ros_func_ctx *ctx, ros_error *err)
{
    delay_state st;
    double init_ms;
    if (svc_opt_double(ctx->options, "delay_ms", 0, 0, DELAY_MAX_MS, &st.delay_ms, err) < 0 ||
        svc_opt_double(ctx->options, "per_row_ms", 0, 0, DELAY_MAX_MS, &st.per_row_ms, err) < 0 ||
        svc_opt_double(ctx->options, "init_ms", 0, 0, DELAY_MAX_MS, &init_ms, err) < 0)
        return -1;
    sleep_ms(init_ms);
    delay_state *p = malloc(sizeof *p);
    if (!p)
        return ros_error_oom(err);
    *p = st;
    ctx->state = p;
    return 0;
}

static void delay_fini(ros_func_ctx *ctx)
{
    free(ctx->state);
    ctx->state = NULL;
}

/* Sleeps ms milliseconds (nothing when ms <= 0), resuming after signals. */
static void sleep_ms(double ms)
{
    if (!(ms > 0))
        return;
    double whole = floor(ms / 1000.0);
    struct timespec req, rem;
    req.tv_sec = (time_t)whole;
    req.tv_nsec = (long)((ms - whole * 1000.0) * 1e6);
    if (req.tv_nsec >= 1000000000L) {
        req.tv_sec++;
        req.tv_nsec -= 1000000000L;
    }
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}

static int delay_call(ros_func_ctx *ctx, const char *method, const ros_batch *args, ros_vector *out,
                      int64_t *err_row, ros_error *err)
{
    const delay_state *st = ctx->state;
    *err_row = -1;
    if (args->ncols < 1)
        return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH, "builtin:delay takes at least one argument");
    sleep_ms(st->delay_ms + st->per_row_ms * (double)args->nrows);
    return svc_vector_copy(out, &args->cols[0], args->nrows, err);
}

const svc_builtin svc_builtin_delay = {
    .name = "delay",
    .init = delay_init,
    .call = delay_call,
    .fini = delay_fini,
    .warmup_input = svc_echo_warmup_input,
    .has_gpu = 0,
};

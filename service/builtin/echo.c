/*
 * echo.c
 *    builtin:echo: returns its first argument column unchanged.
 *
 * The reference point of every service benchmark (the cost of the transport
 * and batching with a handler that does nothing), so the copy is one memcpy
 * per buffer, never row by row.  Further arguments are accepted and ignored.
 */
#include "service/builtin/builtin_int.h"

static int echo_call(ros_func_ctx *ctx, const char *method, const ros_batch *args, ros_vector *out,
                     int64_t *err_row, ros_error *err);

static int echo_call(ros_func_ctx *ctx, const char *method, const ros_batch *args, ros_vector *out,
                     int64_t *err_row, ros_error *err)
{
    *err_row = -1;
    if (args->ncols < 1)
        return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH, "builtin:echo takes at least one argument");
    return svc_vector_copy(out, &args->cols[0], args->nrows, err);
}

/* One bigint column of 4 rows (delay's warm-up too). */
int svc_echo_warmup_input(ros_func_ctx *ctx, ros_batch *args, ros_error *err)
{
    const ros_type t = ROS_TYPE_INT64;
    if (svc_batch_alloc(args, &t, 1, err) < 0)
        return -1;
    for (int64_t i = 0; i < 4; i++)
        if (ros_vector_append_i64(&args->cols[0], i) < 0)
            return ros_error_oom(err);
    args->nrows = 4;
    return 0;
}

const svc_builtin svc_builtin_echo = {
    .name = "echo",
    .init = NULL,
    .call = echo_call,
    .fini = NULL,
    .warmup_input = svc_echo_warmup_input,
    .has_gpu = 0,
};

/*
 * via_service.c
 *    A C function that calls a service through its context (getRosClient):
 *    via_echo(bigint) -> bigint sends its argument column to the service
 *    named "echo" and returns the answer plus one.
 *
 * Build: build/examples/librosql_example_client.so (it uses the client API
 * of include/rosql/client.h, which the rosql and rosd programs export).
 *     CREATE SERVICE echo USING 'builtin:echo';
 *     CREATE FUNCTION via_echo(bigint) RETURNS bigint
 *         LANGUAGE c AS 'build/examples/librosql_example_client.so', 'via_echo_udf';
 */
#include <stdio.h>
#include <string.h>

#include <rosql/client.h>
#include <rosql/udf.h>

static int via_echo(ros_func_ctx *ctx, const ros_vector *const *args, uint32_t nrows, ros_vector *out)
{
    ros_client *c = ctx->host->get_client ? ctx->host->get_client(ctx, "echo") : NULL;
    if (!c)
        return 1; /* get_client set ctx->errmsg */
    /* the batch to send: our argument column as it is */
    ros_vector col = *args[0];
    ros_batch b = {1, nrows, &col};
    /* asynchronous call, then wait for it (ros_client_call is the blocking
     * form of the same) */
    ros_call *call = ros_client_submit(c, NULL, &b, ctx->errmsg, sizeof ctx->errmsg);
    if (!call)
        return 1;
    ros_vector res;
    memset(&res, 0, sizeof res);
    int rc = ros_call_wait(call, -1, &res, ctx->errmsg, sizeof ctx->errmsg);
    ros_call_free(call);
    if (rc != 0)
        return 1;
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(&res, i))
            ros_vector_append_null(out);
        else
            ros_vector_append_i64(out, ROS_VEC_I64(&res)[i] + 1);
    }
    ros_vector_free(&res);
    return 0;
}

ROS_UDF_EXPORT const ros_udf via_echo_udf = {
    .abi_version = ROS_UDF_ABI_VERSION,
    .name = "via_echo",
    .nargs = 1,
    .arg_types = {ROS_TYPE_INT64},
    .ret_type = ROS_TYPE_INT64,
    .fn = via_echo,
};

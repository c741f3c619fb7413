/*
 * rosql/udf.h
 *    The interface of user-defined C functions and service handlers.
 *
 * A library exports one `const ros_udf` object per function; the symbol named
 * in CREATE FUNCTION ... AS 'lib.so', 'symbol' (or in CREATE SERVICE ... USING
 * 'lib.so:symbol') is that object.  rosql checks its ABI version, argument and
 * return types against the declaration when the function is created, so a
 * mismatch is an error at CREATE time rather than a crash later.
 *
 * The function is vectorized: it receives a batch of argument columns and
 * appends exactly nrows values to one result column.  Nothing here is
 * specific to the process it runs in: the same object is called in-process
 * by a query, in a job process, or inside a rosd service worker.  Everything
 * a function needs from its host comes through ros_func_ctx.
 *
 * Example (see examples/udf/):
 *
 *     static int add_one(ros_func_ctx *ctx, const ros_vector *const *args,
 *                        uint32_t nrows, ros_vector *out) {
 *         for (uint32_t i = 0; i < nrows; i++) {
 *             if (ros_vector_is_null(args[0], i)) ros_vector_append_null(out);
 *             else ros_vector_append_i64(out, ROS_VEC_I64(args[0])[i] + 1);
 *         }
 *         return 0;
 *     }
 *     ROS_UDF_EXPORT const ros_udf add_one_udf = {
 *         .abi_version = ROS_UDF_ABI_VERSION, .name = "add_one", .nargs = 1,
 *         .arg_types = {ROS_TYPE_INT64}, .ret_type = ROS_TYPE_INT64,
 *         .fn = add_one };
 */
#ifndef ROSQL_UDF_H
#define ROSQL_UDF_H

#include <rosql/vector.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROS_UDF_ABI_VERSION 1
#define ROS_UDF_MAX_ARGS 16
#define ROS_UDF_EXPORT __attribute__((visibility("default")))

typedef struct ros_func_ctx ros_func_ctx;
typedef struct ros_client ros_client; /* a service client (see rosql/client.h) */

/*
 * What the host offers a function.  Reached through ctx->host; entries may be
 * NULL where a host does not provide them (check before calling).
 */
typedef struct ros_host_api {
    uint32_t version; /* ROS_UDF_ABI_VERSION of the host */
    /* Returns the client of the service called `name`, or NULL with an error
     * set on ctx when there is no such service or it cannot be reached. The
     * client belongs to the host; do not free it. */
    ros_client *(*get_client)(ros_func_ctx *ctx, const char *service);
} ros_host_api;

/* Per-call context handed to every entry point of a function. */
struct ros_func_ctx {
    void *state;               /* what init stored; NULL without init */
    const char *options;       /* "key=value\n..." options of the function or service, or "" */
    int device;                /* -1 for CPU, else the CUDA device ordinal chosen by the host */
    char errmsg[512];          /* set by the function when it returns non-zero */
    const ros_host_api *host;  /* host services, never NULL */
    void *host_private;        /* the host's own data; do not touch */
};

/*
 * Called once per process before the first batch (a model load goes here).
 * Stores its state in ctx->state.  Returns 0, or non-zero with ctx->errmsg set.
 */
typedef int (*ros_udf_init_fn)(ros_func_ctx *ctx);

/*
 * Computes nrows results.  args[k] has nrows rows of arg_types[k].  The
 * function appends exactly nrows rows to out (type ret_type, empty on entry).
 * Returns 0, or non-zero with ctx->errmsg set; on error out is discarded.
 */
typedef int (*ros_udf_fn)(ros_func_ctx *ctx, const ros_vector *const *args,
                          uint32_t nrows, ros_vector *out);

/* Called once at process exit (or when the function is dropped). */
typedef void (*ros_udf_fini_fn)(ros_func_ctx *ctx);

/* The exported descriptor of one function. */
typedef struct ros_udf {
    uint32_t abi_version;                 /* ROS_UDF_ABI_VERSION */
    const char *name;                     /* informative name */
    int nargs;                            /* number of arguments, 0..ROS_UDF_MAX_ARGS */
    ros_type arg_types[ROS_UDF_MAX_ARGS]; /* declared argument types */
    ros_type ret_type;                    /* result type */
    ros_udf_fn fn;                        /* required */
    ros_udf_init_fn init;                 /* optional */
    ros_udf_fini_fn fini;                 /* optional */
} ros_udf;

#ifdef __cplusplus
}
#endif

#endif /* ROSQL_UDF_H */

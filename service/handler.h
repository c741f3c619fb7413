/*
 * handler.h
 *    What a service instance runs: a handler, loaded once per process.
 *
 * A handler is named by the USING clause of CREATE SERVICE:
 *   "builtin:NAME"      one of the built-in handlers of service/builtin/
 *                       (echo, delay, embed, cosine);
 *   "PATH.so:SYMBOL"    a `const ros_udf` exported by a user library, the
 *                       same interface as LANGUAGE c functions
 *                       (include/rosql/udf.h), with its init and fini.
 * Opening a handler runs its init (the "model load"); svc_handler_warmup
 * runs one synthetic batch through it before the instance reports ready.
 *
 * A handler is not thread-safe: one thread (the worker's executor) calls it.
 */
#ifndef SVC_HANDLER_H
#define SVC_HANDLER_H

#include <stdint.h>

#include <rosql/udf.h>
#include <rosql/vector.h>

#include "runtime/core/error.h"

typedef struct svc_handler svc_handler;

/*
 * Opens the handler named by spec with the service's options ("k=v\n" text,
 * may be "" or NULL) on device (-1 = CPU, else a CUDA device ordinal) and
 * runs its init.  Returns NULL with err set on failure:
 *   unknown builtin: ROS_ERR_UNDEFINED_FUNCTION `unknown built-in handler "x"`;
 *   library cannot be opened / symbol missing / not a valid ros_udf:
 *     the messages of CREATE FUNCTION (ROS_ERR_UNDEFINED_FILE, ...);
 *   device >= 0 and no CUDA path for this handler or no such device:
 *     ROS_ERR_INVALID_PARAMETER naming the device;
 *   init failed: `handler "spec" failed to initialise: <its message>`.
 */
svc_handler *svc_handler_open(const char *spec, const char *options, int device, ros_error *err);

/* Runs one warm-up batch of synthetic input through the handler. */
int svc_handler_warmup(svc_handler *h, ros_error *err);

/*
 * Computes one result per row of args (args->nrows rows).  method is the
 * request's method string ("" when none).  out must be zeroed on entry; the
 * handler sets its type and appends exactly args->nrows rows.  A user
 * ros_udf requires args' column count and types to equal its declaration
 * (else ROS_ERR_DATATYPE_MISMATCH naming expected and received types).
 * Returns 0, or -1 with err set, out freed, and *err_row the failing row of
 * args or -1 when the failure is not tied to one row.
 */
int svc_handler_call(svc_handler *h, const char *method, const ros_batch *args, ros_vector *out,
                     int64_t *err_row, ros_error *err);

/* Runs fini and frees the handler.  Safe on NULL. */
void svc_handler_close(svc_handler *h);

/*
 * Installs what the handler's functions reach through ctx->host and
 * ctx->host_private (the worker's service clients, ...).  host NULL restores
 * the default: version ROS_UDF_ABI_VERSION, no entries.  host must outlive
 * the handler.  Cannot fail.
 */
void svc_handler_set_host(svc_handler *h, const ros_host_api *host, void *host_private);

/* The spec the handler was opened with. */
const char *svc_handler_spec(const svc_handler *h);

/* CUDA devices usable by this build: 0 when built without CUDA or when no
 * GPU is visible.  device = 'auto' takes a GPU when this is > 0. */
int svc_gpu_count(void);

#endif /* SVC_HANDLER_H */

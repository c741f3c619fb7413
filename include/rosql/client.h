/*
 * rosql/client.h
 *    Calling a service from a user C function.
 *
 * A function reaches a service (CREATE SERVICE) through the client its host
 * hands out:
 *
 *     ros_client *svc = ctx->host->get_client
 *                           ? ctx->host->get_client(ctx, "embedder") : NULL;
 *
 * The client belongs to the host: do not free it.  It routes each call to a
 * ready instance of the service, splits large batches, retries under the
 * same request id when an instance dies or is busy, and answers every call
 * within the service's timeout (see "The client" in service/README.md).
 *
 * A call sends a batch of argument columns and gets one result column with
 * exactly as many rows back.  The client copies the arguments, so the
 * caller keeps (and frees) its own batch.
 *
 * Threads: a client is used by one thread at a time (the function's); so
 * are its calls.  Nothing here blocks except ros_client_call and
 * ros_call_wait, and those only up to the service's timeout.
 *
 * Errors are returned as -1 (or NULL) with a message in errbuf (errbuf may
 * be NULL, errlen 0); a message from the service starts with
 * `service "NAME": `.
 *
 * Symbols: these functions live in the rosql host (shell, job process or
 * rosd worker) and are resolved when the library is loaded.
 */
#ifndef ROSQL_CLIENT_H
#define ROSQL_CLIENT_H

#include <stddef.h>

#include <rosql/vector.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ros_client ros_client; /* also declared by rosql/udf.h */
typedef struct ros_call ros_call;     /* one asynchronous call */

/*
 * Calls method (may be NULL: the service's default) of the service with
 * args and waits for the answer.  out is zeroed on entry; on success it
 * holds args->nrows rows (free it with ros_vector_free).  Returns 0, or -1
 * with a message in errbuf and out empty.
 */
int ros_client_call(ros_client *c, const char *method, const ros_batch *args, ros_vector *out,
                    char *errbuf, size_t errlen);

/*
 * Starts a call and returns at once (when the client's in-flight limit is
 * reached, it first waits for one of the outstanding calls to finish; that
 * call's result is kept for its own ros_call_wait).  Returns the call, or
 * NULL with a message in errbuf (e.g. a row too large to send).
 */
ros_call *ros_client_submit(ros_client *c, const char *method, const ros_batch *args,
                            char *errbuf, size_t errlen);

/*
 * Waits up to timeout_ms (0 = do not wait, -1 = until done) for call.  out
 * is zeroed on entry.  Returns 0 when done (the result is moved to out:
 * free it with ros_vector_free), 1 when still running after timeout_ms
 * (wait again later), -1 when the call failed (message in errbuf) or its
 * result was already taken.
 */
int ros_call_wait(ros_call *call, int timeout_ms, ros_vector *out, char *errbuf, size_t errlen);

/* Frees a call; a running call is abandoned (its result is discarded when it
 * arrives).  Safe on NULL. */
void ros_call_free(ros_call *call);

#ifdef __cplusplus
}
#endif

#endif /* ROSQL_CLIENT_H */

/*
 * worker.h
 *    One service instance: the server inside a `rosd worker` process.
 *
 * The worker listens on an nng REP socket and receives on many contexts at
 * once, so every caller is served concurrently.  It opens its handler once
 * (init = model load), runs a warm-up batch, and only then reports READY in
 * its PONG answers (the coordinator pings it and registers it for traffic).
 *
 * Requests from all callers go into one bounded queue; an executor thread
 * batches them dynamically (up to max_batch rows, or max_delay_ms after the
 * oldest queued request arrived, whichever comes first), calls the handler
 * once, and answers each request with its own rows.  Also:
 *  - queue full: an immediate BUSY reply (status with retry_after_ms);
 *  - a request whose deadline has passed when it is dequeued is answered
 *    with an ERROR (57014 "deadline expired"), not run;
 *  - result cache keyed by (job, op, seq, part_index) and the part's
 *    content digest (svc_frame_digest), cache_entries answers (LRU);
 *    VOLATILE requests are neither served from nor stored in it; a
 *    duplicate (same key) of a request still queued or running waits for
 *    the first one's answer instead of running twice; answers from the
 *    cache or to a duplicate carry SVC_FLAG_REUSED;
 *  - CANCEL (job, op, attempt) drops queued requests of that caller whose
 *    attempt is <= the one given; requests received over a pipe (connection)
 *    that closes are dropped too (the caller is gone);
 *  - malformed (08P01) and oversized (54000) frames get an ERROR reply and
 *    are counted; the worker keeps serving;
 *  - drain: take no new requests (answer BUSY with state DRAINING), finish
 *    those queued and running, then svc_worker_wait returns.
 */
#ifndef SVC_WORKER_H
#define SVC_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/core/error.h"
#include "service/frame.h"

typedef struct svc_worker_config {
    const char *handler;    /* handler spec (service/handler.h) */
    const char *options;    /* "k=v\n" service options, or NULL */
    const char *listen;     /* nng URL to listen on: ipc://..., tcp://host:port */
    int device;             /* -1 CPU, else CUDA ordinal */
    uint32_t max_batch;     /* rows per handler call; 0 = 1024 */
    uint32_t max_delay_ms;  /* batching window; 0 = no waiting */
    uint32_t max_queue;     /* requests queued; 0 = 1024 */
    uint32_t cache_entries; /* answers kept; 0 = no cache */
    size_t max_frame;       /* largest frame accepted or sent; 0 = SVC_FRAME_DEFAULT_MAX */
} svc_worker_config;

typedef struct svc_worker svc_worker;

/*
 * Starts listening on cfg->listen and returns at once; the handler is opened
 * and warmed up on a background thread (state STARTING, then WARMING, then
 * READY; REQUESTs before READY are answered BUSY).  cfg's strings are
 * copied.  Returns NULL with err set when the URL cannot be listened on.
 */
svc_worker *svc_worker_start(const svc_worker_config *cfg, ros_error *err);

/*
 * Waits up to timeout_ms (-1 = forever) for the worker to become READY.
 * Returns 0 when ready, 1 on timeout, -1 when the handler failed to open or
 * warm up (err holds why; the worker then answers every REQUEST with that
 * error and should be stopped).
 */
int svc_worker_wait_ready(svc_worker *w, int timeout_ms, ros_error *err);

/* Enters drain mode (idempotent; safe from a signal-handling thread, not
 * from a signal handler itself). */
void svc_worker_drain(svc_worker *w);

/* Waits up to timeout_ms (-1 = forever) until draining finished: returns 0,
 * or 1 on timeout. */
int svc_worker_wait_drained(svc_worker *w, int timeout_ms);

/* Current status (what a PONG carries). */
void svc_worker_status(svc_worker *w, svc_status *st);

/* Handler calls made by the executor since start (the warm-up batch is not
 * counted): with the status's `requests`, shows how well requests batch. */
uint64_t svc_worker_handler_calls(svc_worker *w);

/* Requests answered from the result cache since start. */
uint64_t svc_worker_cache_hits(svc_worker *w);

/* Doorbell lanes (service/lane.h) whose thread runs now. */
uint32_t svc_worker_lanes(svc_worker *w);

/* The URL the worker listens on: cfg->listen, except that a tcp URL ending
 * in ":0" names the port the system chose.  Valid until svc_worker_stop. */
const char *svc_worker_url(const svc_worker *w);

/* Closes the socket, stops the threads, closes the handler, frees w.
 * Waits for a handler call (or the handler's init) in progress; requests
 * still queued are dropped unanswered.  Safe on NULL. */
void svc_worker_stop(svc_worker *w);

/*
 * `rosd worker` main:
 *   rosd worker --handler SPEC --listen URL [--options TEXT] [--device N]
 *               [--max-batch N] [--max-delay-ms N] [--max-queue N]
 *               [--cache-entries N] [--max-frame BYTES]
 *               [--register CTL_URL --service NAME]
 * Logs to stderr.  SIGTERM or SIGINT: drain, then exit 0.  Exit 1 when the
 * handler fails to open or warm up (its error is the last stderr line).
 * With --register, once ready it sends "register NAME LISTEN_URL" to the
 * coordinator's control socket (nng REQ, text; reply "ok" or "error ...")
 * and "deregister NAME LISTEN_URL" when it drains.
 */
int svc_worker_main(int argc, char **argv);

#endif /* SVC_WORKER_H */

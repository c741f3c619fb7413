/*
 * test_worker.c
 *    Unit tests of the service instance (service/worker.h), in process: a
 *    worker listening on an ipc:// socket in a fresh directory, and raw nng
 *    REQ sockets sending frames built with svc_frame_encode.
 *
 * Covered: the lifecycle (states in PONG, drain, stop), echo round trips of
 * several types with NULLs, batching across callers, the result cache and
 * duplicates of a running request (keyed by id, part and content; answers
 * not computed for their asker marked REUSED, also as the client reports
 * it), BUSY on a full queue, expired deadlines, CANCEL, callers that
 * disconnect, drain finishing in-flight work, garbage and oversized frames,
 * a failed start, and a user library handler whose failing request does not
 * fail its batch-mates.
 */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <rosql/vector.h>

#include "runtime/core/error.h"
#include "service/client.h"
#include "service/frame.h"
#include "service/lane.h"
#include "service/shm.h"
#include "service/worker.h"

/* ---------------------------------------------------------------- */
/* Helpers */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t unix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A worker in its own directory plus one connected REQ socket. */
typedef struct fixture {
    char dir[64];
    char url[128];
    svc_worker *w;
    nng_socket s;
} fixture;

static nng_socket open_req(const char *url)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000), 0);
    assert_int_equal(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0), 0);
    assert_int_equal(nng_dial(s, url, NULL, 0), 0);
    return s;
}

/* Starts a worker with cfg (listen is filled in); waits until it is ready
 * when wait is set. */
static void fx_start(fixture *fx, svc_worker_config cfg, bool wait)
{
    strcpy(fx->dir, "/tmp/rosw-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->url, sizeof fx->url, "ipc://%s/w.sock", fx->dir);
    cfg.listen = fx->url;
    ros_error err;
    ros_error_clear(&err);
    fx->w = svc_worker_start(&cfg, &err);
    if (!fx->w)
        fail_msg("svc_worker_start: %s", err.message);
    if (wait) {
        int rc = svc_worker_wait_ready(fx->w, 5000, &err);
        if (rc != 0)
            fail_msg("worker not ready (%d): %s", rc, err.message);
    }
    fx->s = open_req(fx->url);
}

static void fx_stop(fixture *fx)
{
    nng_close(fx->s);
    svc_worker_stop(fx->w);
    char path[128];
    snprintf(path, sizeof path, "%s/w.sock", fx->dir);
    unlink(path);
    rmdir(fx->dir);
}

static svc_worker_config config(const char *handler, const char *options)
{
    svc_worker_config c;
    memset(&c, 0, sizeof c);
    c.handler = handler;
    c.options = options;
    c.device = -1;
    return c;
}

/* One bigint column; null[i] marks NULL rows (null may be NULL). */
static void batch_i64(ros_batch *b, const int64_t *v, const bool *null, uint32_t n)
{
    b->ncols = 1;
    b->nrows = n;
    b->cols = calloc(1, sizeof *b->cols);
    assert_non_null(b->cols);
    ros_vector_init(&b->cols[0], ROS_TYPE_INT64);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(null && null[i] ? ros_vector_append_null(&b->cols[0])
                                         : ros_vector_append_i64(&b->cols[0], v[i]),
                         0);
}

/* Bigints first, first + 1, ... */
static void batch_seq(ros_batch *b, int64_t first, uint32_t n)
{
    int64_t *v = malloc(sizeof *v * (n ? n : 1));
    assert_non_null(v);
    for (uint32_t i = 0; i < n; i++)
        v[i] = first + i;
    batch_i64(b, v, NULL, n);
    free(v);
}

/* Encodes a REQUEST of b under (job, op, seq). */
static void req_frame(uint64_t job, uint32_t op, uint64_t seq, uint32_t attempt, uint32_t flags,
                      uint64_t deadline, const ros_batch *b, uint8_t **buf, size_t *len)
{
    svc_request_id id = {job, op, seq};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_REQUEST, &id);
    h.attempt = attempt;
    h.flags |= flags;
    h.deadline_ms = deadline;
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_encode(&h, b, 0, buf, len, &err), 0);
}

static void simple_frame(svc_frame_kind kind, uint64_t job, uint32_t op, uint32_t attempt, uint8_t **buf,
                         size_t *len)
{
    svc_request_id id = {job, op, 0};
    svc_frame_header h;
    svc_frame_header_init(&h, kind, &id);
    h.attempt = attempt;
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_encode(&h, NULL, 0, buf, len, &err), 0);
}

/* Sends len bytes and decodes the answer into f (which owns its batch). */
static void rpc_raw(nng_socket s, const void *buf, size_t len, svc_frame *f)
{
    assert_int_equal(nng_send(s, (void *)buf, len, 0), 0);
    char *ans = NULL;
    size_t alen = 0;
    assert_int_equal(nng_recv(s, &ans, &alen, NNG_FLAG_ALLOC), 0);
    ros_error err;
    ros_error_clear(&err);
    if (svc_frame_decode((const uint8_t *)ans, alen, 0, f, &err) != 0)
        fail_msg("answer does not decode: %s", err.message);
    nng_free(ans, alen);
}

/* Sends buf (then frees it). */
static void rpc(nng_socket s, uint8_t *buf, size_t len, svc_frame *f)
{
    rpc_raw(s, buf, len, f);
    free(buf);
}

static svc_status ping(nng_socket s)
{
    uint8_t *buf;
    size_t len;
    simple_frame(SVC_KIND_PING, 0, 0, 0, &buf, &len);
    svc_frame f;
    rpc(s, buf, len, &f);
    assert_int_equal(f.h.kind, SVC_KIND_PONG);
    svc_status st = f.status;
    svc_frame_clear(&f);
    return st;
}

/* An asynchronous call on its own REQ context. */
typedef struct acall {
    nng_ctx ctx;
    nng_aio *aio;
    atomic_int done; /* set by the aio's callback */
} acall;

static void acall_cb(void *arg)
{
    acall *a = arg;
    atomic_store(&a->done, 1);
}

/* Sends buf (then frees it) and starts waiting for the answer. */
static void acall_start(nng_socket s, acall *a, uint8_t *buf, size_t len)
{
    assert_int_equal(nng_ctx_open(&a->ctx, s), 0);
    atomic_init(&a->done, 0);
    assert_int_equal(nng_aio_alloc(&a->aio, acall_cb, a), 0);
    nng_msg *m;
    assert_int_equal(nng_msg_alloc(&m, len), 0);
    memcpy(nng_msg_body(m), buf, len);
    free(buf);
    nng_aio_set_msg(a->aio, m);
    nng_ctx_send(a->ctx, a->aio);
    nng_aio_wait(a->aio);
    assert_int_equal(nng_aio_result(a->aio), 0);
    atomic_store(&a->done, 0);
    nng_aio_set_timeout(a->aio, 5000);
    nng_ctx_recv(a->ctx, a->aio);
}

/* Waits up to timeout_ms for the answer; returns the nng result (0: f holds
 * the decoded answer) and releases the call. */
static int acall_finish(acall *a, int timeout_ms, svc_frame *f)
{
    int64_t end = now_ms() + timeout_ms;
    while (!atomic_load(&a->done) && now_ms() < end)
        sleep_ms(2);
    if (!atomic_load(&a->done))
        nng_aio_cancel(a->aio);
    nng_aio_wait(a->aio);
    int rv = nng_aio_result(a->aio);
    if (rv == 0) {
        nng_msg *m = nng_aio_get_msg(a->aio);
        ros_error err;
        ros_error_clear(&err);
        if (svc_frame_decode(nng_msg_body(m), nng_msg_len(m), 0, f, &err) != 0)
            fail_msg("answer does not decode: %s", err.message);
        nng_msg_free(m);
    }
    nng_aio_free(a->aio);
    nng_ctx_close(a->ctx);
    return rv;
}

/* f is a RESPONSE whose bigint rows are first, first + 1, ... */
static void assert_seq(const svc_frame *f, int64_t first, uint32_t n)
{
    if (f->h.kind == SVC_KIND_ERROR)
        fail_msg("ERROR %s: %s", f->remote.code, f->remote.message);
    assert_int_equal(f->h.kind, SVC_KIND_RESPONSE);
    assert_int_equal(f->batch.ncols, 1);
    assert_int_equal(f->batch.nrows, n);
    const ros_vector *v = &f->batch.cols[0];
    assert_int_equal(v->type, ROS_TYPE_INT64);
    for (uint32_t i = 0; i < n; i++) {
        assert_false(ros_vector_is_null(v, i));
        assert_int_equal(ROS_VEC_I64(v)[i], first + (int64_t)i);
    }
}

/* The answer was not computed for its asker (cache hit or duplicate). */
static bool reused(const svc_frame *f)
{
    return (f->h.flags & SVC_FLAG_REUSED) != 0;
}

/* Sends rows first.. under (job, op, seq) asynchronously. */
static void acall_seq(nng_socket s, acall *a, uint64_t job, uint32_t op, uint64_t seq, uint32_t attempt,
                      int64_t first, uint32_t n)
{
    ros_batch b;
    batch_seq(&b, first, n);
    uint8_t *buf;
    size_t len;
    req_frame(job, op, seq, attempt, 0, 0, &b, &buf, &len);
    svc_batch_free(&b);
    acall_start(s, a, buf, len);
}

/* Polls the worker's status until pred holds or timeout_ms passes. */
static svc_status wait_status(svc_worker *w, bool (*pred)(const svc_status *, uint64_t), uint64_t arg,
                              int timeout_ms)
{
    svc_status st;
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        svc_worker_status(w, &st);
        if (pred(&st, arg) || now_ms() >= end)
            return st;
        sleep_ms(2);
    }
}

static bool depth_is(const svc_status *st, uint64_t n)
{
    return st->queue_depth == n;
}

/* ---------------------------------------------------------------- */
/* Lifecycle */

static void test_lifecycle(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:echo", NULL);
    cfg.max_queue = 7;
    fx_start(&fx, cfg, true);

    svc_status st = ping(fx.s);
    assert_int_equal(st.state, SVC_STATE_READY);
    assert_int_equal(st.queue_depth, 0);
    assert_int_equal(st.queue_capacity, 7);
    assert_int_equal(st.requests, 0);

    /* one request, then the counters show it */
    svc_frame f;
    ros_batch b;
    batch_seq(&b, 10, 3);
    uint8_t *buf;
    size_t len;
    req_frame(1, 1, 1, 0, 0, 0, &b, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 10, 3);
    assert_int_equal(f.h.id.job, 1);
    assert_int_equal(f.h.id.seq, 1);
    assert_true(f.h.flags & SVC_FLAG_LAST_PART);
    svc_frame_clear(&f);
    st = ping(fx.s);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.rows, 3);
    assert_int_equal(svc_worker_handler_calls(fx.w), 1);

    /* drain: PONG says DRAINING, new requests get BUSY, drained at once */
    svc_worker_drain(fx.w);
    svc_worker_drain(fx.w); /* idempotent */
    assert_int_equal(svc_worker_wait_drained(fx.w, 2000), 0);
    st = ping(fx.s);
    assert_int_equal(st.state, SVC_STATE_DRAINING);
    req_frame(1, 1, 2, 0, 0, 0, &b, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_int_equal(f.h.kind, SVC_KIND_BUSY);
    assert_int_equal(f.status.state, SVC_STATE_DRAINING);
    assert_int_equal(f.h.id.seq, 2);
    svc_frame_clear(&f);
    svc_batch_free(&b);
    fx_stop(&fx);
}

/* While the handler warms up (builtin:delay sleeps on its warm-up batch)
 * PONG says WARMING and requests get BUSY. */
static void test_warming(void **state)
{
    (void)state;
    fixture fx;
    fx_start(&fx, config("builtin:delay", "delay_ms=400\n"), false);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_worker_wait_ready(fx.w, 50, &err), 1);
    svc_status st = ping(fx.s);
    assert_true(st.state == SVC_STATE_WARMING || st.state == SVC_STATE_STARTING);
    ros_batch b;
    batch_seq(&b, 1, 2);
    uint8_t *buf;
    size_t len;
    req_frame(1, 1, 1, 0, 0, 0, &b, &buf, &len);
    svc_frame f;
    rpc(fx.s, buf, len, &f);
    assert_int_equal(f.h.kind, SVC_KIND_BUSY);
    assert_true(f.status.state == SVC_STATE_WARMING || f.status.state == SVC_STATE_STARTING);
    assert_true(f.status.retry_after_ms > 0);
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_wait_ready(fx.w, 5000, &err), 0);
    assert_int_equal(ping(fx.s).state, SVC_STATE_READY);
    svc_batch_free(&b);
    fx_stop(&fx);
}

/* A handler that cannot open: wait_ready says why, requests get that
 * error, PONG reports no serving state. */
static void test_failed_start(void **state)
{
    (void)state;
    fixture fx;
    fx_start(&fx, config("builtin:no_such_handler", NULL), false);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_worker_wait_ready(fx.w, 5000, &err), -1);
    assert_string_equal(err.code, ROS_ERR_UNDEFINED_FUNCTION);
    assert_non_null(strstr(err.message, "no_such_handler"));
    assert_int_equal(ping(fx.s).state, SVC_STATE_UNKNOWN);
    ros_batch b;
    batch_seq(&b, 1, 2);
    uint8_t *buf;
    size_t len;
    req_frame(5, 6, 7, 0, 0, 0, &b, &buf, &len);
    svc_frame f;
    rpc(fx.s, buf, len, &f);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_string_equal(f.remote.code, ROS_ERR_UNDEFINED_FUNCTION);
    assert_int_equal(f.h.id.job, 5);
    assert_int_equal(f.h.id.seq, 7);
    svc_frame_clear(&f);
    svc_batch_free(&b);
    fx_stop(&fx);

    /* a URL that cannot be listened on fails at once */
    svc_worker_config cfg = config("builtin:echo", NULL);
    cfg.listen = "ipc:///nonexistent-dir-rosql/w.sock";
    ros_error_clear(&err);
    assert_null(svc_worker_start(&cfg, &err));
    assert_true(err.set);
}

/* ---------------------------------------------------------------- */
/* Round trips */

/* Echo returns its first column: every type, NULLs, empty strings. */
static void test_echo_types(void **state)
{
    (void)state;
    fixture fx;
    fx_start(&fx, config("builtin:echo", NULL), true);
    static const ros_type types[] = {ROS_TYPE_BOOL,    ROS_TYPE_INT16, ROS_TYPE_INT32,
                                     ROS_TYPE_INT64,   ROS_TYPE_FLOAT32, ROS_TYPE_FLOAT64,
                                     ROS_TYPE_TEXT,    ROS_TYPE_BYTEA, ROS_TYPE_FLOAT32_ARRAY,
                                     ROS_TYPE_NULL};
    const uint32_t n = 37;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        /* column 0 of the type asked, column 1 a bigint that echo ignores */
        ros_batch b;
        b.ncols = 2;
        b.nrows = n;
        b.cols = calloc(2, sizeof *b.cols);
        assert_non_null(b.cols);
        ros_vector *v = &b.cols[0];
        ros_vector_init(v, types[t]);
        ros_vector_init(&b.cols[1], ROS_TYPE_INT64);
        for (uint32_t i = 0; i < n; i++) {
            int rc = 0;
            assert_int_equal(ros_vector_append_i64(&b.cols[1], -(int64_t)i), 0);
            if (types[t] == ROS_TYPE_NULL || i % 4 == 3) {
                rc = ros_vector_append_null(v);
            } else {
                switch (types[t]) {
                case ROS_TYPE_BOOL: rc = ros_vector_append_bool(v, i % 3 == 0); break;
                case ROS_TYPE_INT16: rc = ros_vector_append_i16(v, (int16_t)(i * 11 - 200)); break;
                case ROS_TYPE_INT32: rc = ros_vector_append_i32(v, (int32_t)(i * 100001)); break;
                case ROS_TYPE_INT64: rc = ros_vector_append_i64(v, (int64_t)i * -99999999999ll); break;
                case ROS_TYPE_FLOAT32: rc = ros_vector_append_f32(v, (float)i / 7.0f); break;
                case ROS_TYPE_FLOAT64: rc = ros_vector_append_f64(v, (double)i * 1e-9); break;
                case ROS_TYPE_TEXT: {
                    char s[32];
                    snprintf(s, sizeof s, i % 5 == 1 ? "" : "t\xc3\xa9xt-%u", i);
                    rc = ros_vector_append_text(v, s);
                    break;
                }
                case ROS_TYPE_BYTEA: {
                    uint8_t by[4] = {0, (uint8_t)i, 0xff, 7};
                    rc = ros_vector_append_bytes(v, by, i % 5);
                    break;
                }
                case ROS_TYPE_FLOAT32_ARRAY: {
                    float fl[3] = {(float)i, 0.5f, -1.0f};
                    rc = ros_vector_append_bytes(v, fl, (i % 4) * (uint32_t)sizeof(float));
                    break;
                }
                default: rc = -1;
                }
            }
            assert_int_equal(rc, 0);
        }
        uint8_t *buf;
        size_t len;
        req_frame(3, 4, t, 0, SVC_FLAG_ORDERED, 0, &b, &buf, &len);
        svc_frame f;
        rpc(fx.s, buf, len, &f);
        if (f.h.kind == SVC_KIND_ERROR)
            fail_msg("type %d: %s", (int)types[t], f.remote.message);
        assert_int_equal(f.h.kind, SVC_KIND_RESPONSE);
        assert_true(f.h.flags & SVC_FLAG_ORDERED);
        assert_int_equal(f.h.id.seq, t);
        assert_int_equal(f.batch.ncols, 1);
        assert_int_equal(f.batch.nrows, n);
        const ros_vector *o = &f.batch.cols[0];
        assert_int_equal(o->type, types[t]);
        for (uint32_t i = 0; i < n; i++) {
            bool null = types[t] == ROS_TYPE_NULL || i % 4 == 3;
            assert_int_equal(ros_vector_is_null(o, i), null);
            if (null || types[t] == ROS_TYPE_NULL)
                continue;
            if (ros_type_is_varlen(types[t])) {
                uint32_t la, lb;
                const uint8_t *pa = ros_vector_bytes(v, i, &la), *pb = ros_vector_bytes(o, i, &lb);
                assert_int_equal(la, lb);
                assert_memory_equal(pa, pb, la);
            } else {
                size_t wdt = ros_type_width(types[t]);
                assert_memory_equal((uint8_t *)v->values + i * wdt, (uint8_t *)o->values + i * wdt, wdt);
            }
        }
        svc_frame_clear(&f);
        svc_batch_free(&b);
    }
    /* an empty batch answers an empty column */
    ros_batch b;
    batch_seq(&b, 0, 0);
    uint8_t *buf;
    size_t len;
    req_frame(3, 4, 99, 0, 0, 0, &b, &buf, &len);
    svc_frame f;
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 0, 0);
    svc_frame_clear(&f);
    svc_batch_free(&b);
    fx_stop(&fx);
}

/* ---------------------------------------------------------------- */
/* Batching, cache, duplicates */

/* 8 callers of 4 rows each within the batching window share one or two
 * handler calls of 100 ms (8 separate calls would take 800 ms). */
static void test_batching_across_callers(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=100\n");
    cfg.max_batch = 1000;
    cfg.max_delay_ms = 50;
    fx_start(&fx, cfg, true);
    nng_socket socks[4];
    for (int i = 0; i < 4; i++)
        socks[i] = open_req(fx.url);
    acall calls[8];
    int64_t t0 = now_ms();
    for (int i = 0; i < 8; i++) /* two contexts on each of four connections */
        acall_seq(socks[i % 4], &calls[i], 1, 1, (uint64_t)i, 0, 100 * i, 4);
    for (int i = 0; i < 8; i++) {
        svc_frame f;
        assert_int_equal(acall_finish(&calls[i], 5000, &f), 0);
        assert_seq(&f, 100 * i, 4);
        assert_int_equal(f.h.id.seq, (uint64_t)i);
        svc_frame_clear(&f);
    }
    int64_t elapsed = now_ms() - t0;
    uint64_t ncalls = svc_worker_handler_calls(fx.w);
    svc_status st;
    svc_worker_status(fx.w, &st);
    assert_int_equal(st.requests, 8);
    assert_int_equal(st.rows, 32);
    assert_true(ncalls >= 1 && ncalls <= 2);
    assert_true(elapsed < 500);
    for (int i = 0; i < 4; i++)
        nng_close(socks[i]);
    fx_stop(&fx);
}

/* Requests of different column types or methods never share a call, and
 * max_batch caps a call's rows (one request larger than it runs alone). */
static void test_batching_limits(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=20\n");
    cfg.max_batch = 10;
    cfg.max_delay_ms = 60;
    fx_start(&fx, cfg, true);
    acall calls[4];
    /* 6 + 6 rows: over max_batch together -> two calls */
    acall_seq(fx.s, &calls[0], 1, 1, 1, 0, 0, 6);
    acall_seq(fx.s, &calls[1], 1, 1, 2, 0, 100, 6);
    /* 25 rows alone, larger than max_batch */
    acall_seq(fx.s, &calls[2], 1, 1, 3, 0, 200, 25);
    /* an int32 column: another type */
    ros_batch b;
    b.ncols = 1;
    b.nrows = 2;
    b.cols = calloc(1, sizeof *b.cols);
    ros_vector_init(&b.cols[0], ROS_TYPE_INT32);
    ros_vector_append_i32(&b.cols[0], 5);
    ros_vector_append_i32(&b.cols[0], 6);
    uint8_t *buf;
    size_t len;
    req_frame(1, 1, 4, 0, 0, 0, &b, &buf, &len);
    svc_batch_free(&b);
    acall_start(fx.s, &calls[3], buf, len);
    svc_frame f;
    assert_int_equal(acall_finish(&calls[0], 5000, &f), 0);
    assert_seq(&f, 0, 6);
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&calls[1], 5000, &f), 0);
    assert_seq(&f, 100, 6);
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&calls[2], 5000, &f), 0);
    assert_seq(&f, 200, 25);
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&calls[3], 5000, &f), 0);
    assert_int_equal(f.h.kind, SVC_KIND_RESPONSE);
    assert_int_equal(f.batch.cols[0].type, ROS_TYPE_INT32);
    assert_int_equal(ROS_VEC_I32(&f.batch.cols[0])[1], 6);
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_handler_calls(fx.w), 4);
    fx_stop(&fx);
}

/* A repeated request id is answered from the cache at once; VOLATILE
 * requests bypass it; errors are not cached. */
static void test_cache(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=200\n");
    cfg.cache_entries = 2;
    fx_start(&fx, cfg, true);
    ros_batch b;
    batch_seq(&b, 40, 5);
    uint8_t *buf;
    size_t len;
    svc_frame f;

    int64_t t0 = now_ms();
    req_frame(9, 2, 1, 0, 0, 0, &b, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 40, 5);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_true(now_ms() - t0 >= 190);

    /* retry under attempt 3: from the cache, naming attempt 3, REUSED */
    t0 = now_ms();
    req_frame(9, 2, 1, 3, 0, 0, &b, &buf, &len);
    rpc(fx.s, buf, len, &f);
    int64_t hit_ms = now_ms() - t0;
    assert_seq(&f, 40, 5);
    assert_int_equal(f.h.attempt, 3);
    assert_true(reused(&f));
    assert_true(f.h.flags & SVC_FLAG_LAST_PART);
    svc_frame_clear(&f);
    assert_true(hit_ms < 100);
    assert_int_equal(svc_worker_cache_hits(fx.w), 1);
    assert_int_equal(svc_worker_handler_calls(fx.w), 1);

    /* VOLATILE: computed again */
    t0 = now_ms();
    req_frame(9, 2, 1, 0, SVC_FLAG_VOLATILE, 0, &b, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 40, 5);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_true(now_ms() - t0 >= 190);
    assert_int_equal(svc_worker_cache_hits(fx.w), 1);
    assert_int_equal(svc_worker_handler_calls(fx.w), 2);

    /* another part of the same id is another entry */
    req_frame(9, 2, 1, 0, 0, 0, &b, &buf, &len);
    rpc(fx.s, buf, len, &f); /* part 0 again: a hit */
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_cache_hits(fx.w), 2);

    svc_status st;
    svc_worker_status(fx.w, &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.rows, 10); /* hits are not computed */

    /* LRU of 2 entries: seq 2 and 3 push seq 1 out */
    for (uint64_t seq = 2; seq <= 3; seq++) {
        req_frame(9, 2, seq, 0, 0, 0, &b, &buf, &len);
        rpc(fx.s, buf, len, &f);
        svc_frame_clear(&f);
    }
    req_frame(9, 2, 1, 0, 0, 0, &b, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 40, 5);
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_cache_hits(fx.w), 2);
    assert_int_equal(svc_worker_handler_calls(fx.w), 5);
    svc_batch_free(&b);

    /* an error is not cached: no column -> builtin:delay fails each time */
    ros_batch empty = {0, 3, NULL};
    for (int i = 0; i < 2; i++) {
        req_frame(9, 3, 1, 0, 0, 0, &empty, &buf, &len);
        rpc(fx.s, buf, len, &f);
        assert_int_equal(f.h.kind, SVC_KIND_ERROR);
        assert_string_equal(f.remote.code, ROS_ERR_DATATYPE_MISMATCH);
        svc_frame_clear(&f);
    }
    assert_int_equal(svc_worker_cache_hits(fx.w), 2);
    fx_stop(&fx);
}

/* After a job restore the same request id may carry other rows: the cache
 * is keyed by content too, so those are computed afresh (and answered with
 * their own rows), while the old content is still a hit. */
static void test_cache_content(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=1\n");
    cfg.cache_entries = 256;
    fx_start(&fx, cfg, true);
    ros_batch b1, b2, b3;
    batch_seq(&b1, 40, 5);
    batch_seq(&b2, 500, 5);   /* same shape, other rows */
    batch_seq(&b3, 40, 6);    /* b1 plus one row */
    uint8_t *buf;
    size_t len;
    svc_frame f;

    req_frame(9, 2, 1, 0, 0, 0, &b1, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 40, 5);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_handler_calls(fx.w), 1);

    /* same id, other rows: a miss, computed, the new rows come back */
    req_frame(9, 2, 1, 1, 0, 0, &b2, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 500, 5);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_handler_calls(fx.w), 2);
    assert_int_equal(svc_worker_cache_hits(fx.w), 0);

    /* same id, one row more */
    req_frame(9, 2, 1, 2, 0, 0, &b3, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 40, 6);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_handler_calls(fx.w), 3);

    /* same id and rows, another method string: a miss */
    svc_request_id id = {9, 2, 1};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_REQUEST, &id);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_set_method(&h, "other", 5, &err), 0);
    assert_int_equal(svc_frame_encode(&h, &b1, 0, &buf, &len, &err), 0);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 40, 5);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_handler_calls(fx.w), 4);
    assert_int_equal(svc_worker_cache_hits(fx.w), 0);

    /* each content replayed under the id: hits, each with its own rows */
    req_frame(9, 2, 1, 3, 0, 0, &b2, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 500, 5);
    assert_true(reused(&f));
    svc_frame_clear(&f);
    req_frame(9, 2, 1, 4, 0, 0, &b1, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 40, 5);
    assert_true(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_cache_hits(fx.w), 2);
    assert_int_equal(svc_worker_handler_calls(fx.w), 4);

    /* a VOLATILE request is never a hit, nor stored */
    for (int i = 0; i < 2; i++) {
        req_frame(9, 2, 7, 0, SVC_FLAG_VOLATILE, 0, &b1, &buf, &len);
        rpc(fx.s, buf, len, &f);
        assert_seq(&f, 40, 5);
        assert_false(reused(&f));
        svc_frame_clear(&f);
    }
    assert_int_equal(svc_worker_handler_calls(fx.w), 6);
    assert_int_equal(svc_worker_cache_hits(fx.w), 2);

    /* 200 contents under one id (many share a hash bucket), each computed
     * once, then each replayed: every replay gets its own rows back */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 200; i++) {
            ros_batch bi;
            batch_seq(&bi, 1000 * i, 2);
            req_frame(9, 5, 1, 0, 0, 0, &bi, &buf, &len);
            svc_batch_free(&bi);
            rpc(fx.s, buf, len, &f);
            assert_seq(&f, 1000 * i, 2);
            assert_int_equal(reused(&f), pass == 1);
            svc_frame_clear(&f);
        }
    assert_int_equal(svc_worker_handler_calls(fx.w), 6 + 200);
    assert_int_equal(svc_worker_cache_hits(fx.w), 2 + 200);
    svc_batch_free(&b1);
    svc_batch_free(&b2);
    svc_batch_free(&b3);
    fx_stop(&fx);
}

/* The same id sent twice while the first runs: one handler call, both
 * answered (no cache involved); the duplicates' answers are REUSED. */
static void test_duplicate_attaches(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=200\n");
    cfg.max_batch = 4;
    fx_start(&fx, cfg, true);
    nng_socket s2 = open_req(fx.url);
    acall a, b, c;
    acall_seq(fx.s, &a, 4, 4, 4, 0, 7, 3);
    sleep_ms(30); /* a is running */
    acall_seq(s2, &b, 4, 4, 4, 1, 7, 3);
    acall_seq(fx.s, &c, 4, 4, 5, 0, 70, 3); /* queued behind a */
    sleep_ms(30);
    acall d;
    acall_seq(s2, &d, 4, 4, 5, 2, 70, 3); /* duplicate of queued c */
    svc_frame f;
    assert_int_equal(acall_finish(&a, 5000, &f), 0);
    assert_seq(&f, 7, 3);
    assert_int_equal(f.h.attempt, 0);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&b, 5000, &f), 0);
    assert_seq(&f, 7, 3);
    assert_int_equal(f.h.attempt, 1);
    assert_true(reused(&f)); /* attached to running a */
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&c, 5000, &f), 0);
    assert_seq(&f, 70, 3);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&d, 5000, &f), 0);
    assert_seq(&f, 70, 3);
    assert_int_equal(f.h.attempt, 2);
    assert_true(reused(&f)); /* attached to queued c */
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_handler_calls(fx.w), 2);
    svc_status st;
    svc_worker_status(fx.w, &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.rows, 6);
    nng_close(s2);
    fx_stop(&fx);
}

/* Requests under the id of a running one but with other rows (a restored
 * job batching differently), or VOLATILE, do not attach: each is computed
 * and answered with its own rows, not REUSED. */
static void test_duplicate_needs_same_content(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=200\n");
    cfg.max_batch = 4;
    fx_start(&fx, cfg, true);
    nng_socket s2 = open_req(fx.url);
    acall a, b, c, d;
    acall_seq(fx.s, &a, 4, 4, 4, 0, 7, 3);
    sleep_ms(30); /* a is running */
    acall_seq(s2, &b, 4, 4, 4, 1, 700, 3); /* same id, other rows */
    ros_batch vb;
    batch_seq(&vb, 7, 3);
    uint8_t *buf;
    size_t len;
    req_frame(4, 4, 4, 2, SVC_FLAG_VOLATILE, 0, &vb, &buf, &len); /* same id and rows, VOLATILE */
    acall_start(fx.s, &c, buf, len);
    req_frame(4, 4, 4, 3, 0, 0, &vb, &buf, &len); /* same id and rows: attaches to a */
    acall_start(s2, &d, buf, len);
    svc_batch_free(&vb);
    svc_frame f;
    assert_int_equal(acall_finish(&a, 5000, &f), 0);
    assert_seq(&f, 7, 3);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&b, 5000, &f), 0);
    assert_seq(&f, 700, 3);
    assert_int_equal(f.h.attempt, 1);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&c, 5000, &f), 0);
    assert_seq(&f, 7, 3);
    assert_int_equal(f.h.attempt, 2);
    assert_false(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&d, 5000, &f), 0);
    assert_seq(&f, 7, 3);
    assert_int_equal(f.h.attempt, 3);
    assert_true(reused(&f));
    svc_frame_clear(&f);
    svc_status st;
    svc_worker_status(fx.w, &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.rows, 9); /* a, b and c computed; d reused a's */
    assert_int_equal(svc_worker_cache_hits(fx.w), 0);
    nng_close(s2);
    fx_stop(&fx);
}

/* ---------------------------------------------------------------- */
/* The client's view: svc_result.reused */

static svc_client *open_client(const char *url, size_t max_frame)
{
    svc_client_config cc;
    memset(&cc, 0, sizeof cc);
    cc.service = "w";
    cc.timeout_ms = 5000;
    cc.max_frame = max_frame;
    cc.job = 31;
    cc.op = 2;
    ros_error err;
    ros_error_clear(&err);
    svc_client *c = svc_client_open(&cc, &err);
    if (!c)
        fail_msg("svc_client_open: %s", err.message);
    svc_member m;
    memset(&m, 0, sizeof m);
    snprintf(m.url, sizeof m.url, "%s", url);
    assert_int_equal(svc_client_set_members(c, &m, 1, &err), 0);
    return c;
}

/* Submits bigints first.. under seq and waits for them; returns reused. */
static bool client_call(svc_client *c, uint64_t seq, uint32_t flags, int64_t first, uint32_t n)
{
    ros_batch b;
    batch_seq(&b, first, n);
    ros_error err;
    ros_error_clear(&err);
    if (svc_client_submit(c, seq, NULL, flags, &b, NULL, &err) != 0)
        fail_msg("submit: %s", err.message);
    svc_result res;
    assert_int_equal(svc_client_poll(c, 10000, &res), 1);
    if (!res.ok)
        fail_msg("request %llu failed: %s", (unsigned long long)seq, res.error.message);
    assert_int_equal(res.seq, seq);
    assert_int_equal(res.out.len, n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(ROS_VEC_I64(&res.out)[i], first + (int64_t)i);
    bool r = res.reused;
    svc_result_clear(&res);
    return r;
}

/* Through svc_client: a replay of the same id and rows is reported reused,
 * other rows under the id are computed, VOLATILE never reused, and a split
 * request is reused only when every part was. */
static void test_client_reused(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:echo", NULL);
    cfg.cache_entries = 64;
    fx_start(&fx, cfg, true);
    svc_client *c = open_client(fx.url, 0);

    assert_false(client_call(c, 1, 0, 10, 50));
    assert_int_equal(svc_worker_handler_calls(fx.w), 1);
    assert_true(client_call(c, 1, 0, 10, 50)); /* replay: from the cache */
    assert_int_equal(svc_worker_handler_calls(fx.w), 1);
    assert_int_equal(svc_worker_cache_hits(fx.w), 1);
    assert_false(client_call(c, 1, 0, 900, 50)); /* same id, other rows */
    assert_int_equal(svc_worker_handler_calls(fx.w), 2);
    assert_true(client_call(c, 1, 0, 900, 50));
    assert_int_equal(svc_worker_cache_hits(fx.w), 2);
    for (int i = 0; i < 2; i++)
        assert_false(client_call(c, 2, SVC_FLAG_VOLATILE, 10, 50));
    assert_int_equal(svc_worker_handler_calls(fx.w), 4);
    svc_client_close(c);

    /* 4000 bigints in frames of at most 8 KiB: several parts */
    c = open_client(fx.url, 8192);
    assert_false(client_call(c, 3, 0, 0, 4000));
    uint64_t calls = svc_worker_handler_calls(fx.w);
    assert_true(calls >= 4 + 4);
    assert_true(client_call(c, 3, 0, 0, 4000));
    assert_int_equal(svc_worker_handler_calls(fx.w), calls);
    /* the same id with the last row changed: every part but the last is a
     * hit, the last is computed, so the request is not reused */
    ros_batch b;
    batch_seq(&b, 0, 4000);
    ROS_VEC_I64(&b.cols[0])[3999] = -1;
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_client_submit(c, 3, NULL, 0, &b, NULL, &err), 0);
    svc_result res;
    assert_int_equal(svc_client_poll(c, 10000, &res), 1);
    assert_true(res.ok);
    assert_int_equal(ROS_VEC_I64(&res.out)[3998], 3998);
    assert_int_equal(ROS_VEC_I64(&res.out)[3999], -1);
    assert_false(res.reused);
    svc_result_clear(&res);
    assert_int_equal(svc_worker_handler_calls(fx.w), calls + 1);
    svc_client_close(c);
    fx_stop(&fx);
}

/* SVC_FLAG_NO_STORE: the answer is not kept in the cache (a replay is
 * computed again), but an answer already cached is still a hit; a client
 * with a random (ad-hoc) job id sets the flag, one with a job id does not. */
static void test_no_store(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:echo", NULL);
    cfg.cache_entries = 64;
    fx_start(&fx, cfg, true);
    ros_batch b;
    batch_seq(&b, 7, 20);
    uint8_t *buf;
    size_t len;
    svc_frame f;
    for (int i = 0; i < 2; i++) {
        req_frame(5, 1, 1, 0, SVC_FLAG_NO_STORE, 0, &b, &buf, &len);
        rpc(fx.s, buf, len, &f);
        assert_seq(&f, 7, 20);
        assert_false(reused(&f));
        svc_frame_clear(&f);
    }
    assert_int_equal(svc_worker_cache_hits(fx.w), 0);
    assert_int_equal(svc_worker_handler_calls(fx.w), 2);
    /* stored without the flag, then a hit with it */
    req_frame(5, 1, 2, 0, 0, 0, &b, &buf, &len);
    rpc(fx.s, buf, len, &f);
    svc_frame_clear(&f);
    req_frame(5, 1, 2, 0, SVC_FLAG_NO_STORE, 0, &b, &buf, &len);
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 7, 20);
    assert_true(reused(&f));
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_cache_hits(fx.w), 1);
    assert_int_equal(svc_worker_handler_calls(fx.w), 3);
    svc_batch_free(&b);

    /* an ad-hoc client: nothing stored, so a replay is computed again */
    svc_client_config cc;
    memset(&cc, 0, sizeof cc);
    cc.service = "w";
    cc.timeout_ms = 5000;
    cc.op = 2;
    ros_error err;
    ros_error_clear(&err);
    svc_client *c = svc_client_open(&cc, &err);
    assert_non_null(c);
    svc_member m;
    memset(&m, 0, sizeof m);
    snprintf(m.url, sizeof m.url, "%s", fx.url);
    assert_int_equal(svc_client_set_members(c, &m, 1, &err), 0);
    assert_false(client_call(c, 1, 0, 10, 50));
    assert_false(client_call(c, 1, 0, 10, 50));
    assert_int_equal(svc_worker_handler_calls(fx.w), 5);
    svc_client_close(c);
    /* a job's client: stored, the replay is a hit */
    c = open_client(fx.url, 0);
    assert_false(client_call(c, 1, 0, 10, 50));
    assert_true(client_call(c, 1, 0, 10, 50));
    assert_int_equal(svc_worker_handler_calls(fx.w), 6);
    svc_client_close(c);
    fx_stop(&fx);
}

/* ---------------------------------------------------------------- */
/* Back-pressure, deadlines, cancel, disconnects, drain */

static void test_busy_when_full(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=150\n");
    cfg.max_batch = 4;
    cfg.max_queue = 2;
    fx_start(&fx, cfg, true);
    acall calls[3];
    acall_seq(fx.s, &calls[0], 1, 1, 1, 0, 0, 4);
    sleep_ms(30); /* running, queue empty */
    acall_seq(fx.s, &calls[1], 1, 1, 2, 0, 10, 4);
    acall_seq(fx.s, &calls[2], 1, 1, 3, 0, 20, 4);
    svc_status st = wait_status(fx.w, depth_is, 2, 1000);
    assert_int_equal(st.queue_depth, 2);
    assert_int_equal(st.inflight, 1);

    ros_batch b;
    batch_seq(&b, 30, 4);
    uint8_t *buf;
    size_t len;
    req_frame(1, 1, 4, 0, 0, 0, &b, &buf, &len);
    svc_batch_free(&b);
    int64_t t0 = now_ms();
    svc_frame f;
    rpc(fx.s, buf, len, &f);
    assert_true(now_ms() - t0 < 100); /* at once, not after the queue */
    assert_int_equal(f.h.kind, SVC_KIND_BUSY);
    assert_int_equal(f.h.id.seq, 4);
    assert_int_equal(f.status.state, SVC_STATE_READY);
    assert_int_equal(f.status.queue_depth, 2);
    assert_int_equal(f.status.queue_capacity, 2);
    assert_true(f.status.retry_after_ms > 0);
    svc_frame_clear(&f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(acall_finish(&calls[i], 5000, &f), 0);
        assert_seq(&f, 10 * i, 4);
        svc_frame_clear(&f);
    }
    fx_stop(&fx);
}

static void test_deadline_expired(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=150\n");
    cfg.max_batch = 4;
    fx_start(&fx, cfg, true);
    acall a, b, c;
    acall_seq(fx.s, &a, 1, 1, 1, 0, 0, 4);
    sleep_ms(20);
    ros_batch bt;
    batch_seq(&bt, 50, 2);
    uint8_t *buf;
    size_t len;
    req_frame(1, 1, 2, 0, 0, (uint64_t)unix_now_ms() + 50, &bt, &buf, &len); /* expires while queued */
    acall_start(fx.s, &b, buf, len);
    req_frame(1, 1, 3, 0, 0, (uint64_t)unix_now_ms() + 60000, &bt, &buf, &len); /* far away */
    acall_start(fx.s, &c, buf, len);
    svc_batch_free(&bt);
    svc_frame f;
    assert_int_equal(acall_finish(&a, 5000, &f), 0);
    assert_seq(&f, 0, 4);
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&b, 5000, &f), 0);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_string_equal(f.remote.code, "57014");
    assert_string_equal(f.remote.message, "deadline expired");
    assert_int_equal(f.h.id.seq, 2);
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&c, 5000, &f), 0);
    assert_seq(&f, 50, 2);
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_handler_calls(fx.w), 2); /* the expired one did not run */
    fx_stop(&fx);
}

static void test_cancel(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=150\n");
    cfg.max_batch = 4;
    fx_start(&fx, cfg, true);
    acall run, x1, x2, keep_newer, keep_other;
    acall_seq(fx.s, &run, 7, 2, 1, 1, 0, 4); /* (7, 2) running: CANCEL leaves it */
    sleep_ms(30);
    acall_seq(fx.s, &x1, 7, 2, 2, 1, 10, 4);         /* dropped */
    acall_seq(fx.s, &x2, 7, 2, 3, 0, 20, 4);         /* dropped (older attempt) */
    acall_seq(fx.s, &keep_newer, 7, 2, 4, 2, 30, 4); /* newer attempt: kept */
    acall_seq(fx.s, &keep_other, 7, 3, 5, 1, 40, 4); /* another operator: kept */
    svc_status st = wait_status(fx.w, depth_is, 4, 1000);
    assert_int_equal(st.queue_depth, 4);

    uint8_t *buf;
    size_t len;
    simple_frame(SVC_KIND_CANCEL, 7, 2, 1, &buf, &len);
    svc_frame f;
    rpc(fx.s, buf, len, &f);
    assert_int_equal(f.h.kind, SVC_KIND_PONG);
    assert_int_equal(f.h.id.job, 7);
    assert_int_equal(f.status.queue_depth, 2);
    svc_frame_clear(&f);

    assert_int_equal(acall_finish(&run, 5000, &f), 0);
    assert_seq(&f, 0, 4);
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&keep_newer, 5000, &f), 0);
    assert_seq(&f, 30, 4);
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&keep_other, 5000, &f), 0);
    assert_seq(&f, 40, 4);
    svc_frame_clear(&f);
    /* the dropped ones are never answered */
    assert_int_equal(acall_finish(&x1, 200, &f), NNG_ECANCELED);
    assert_int_equal(acall_finish(&x2, 10, &f), NNG_ECANCELED);
    assert_int_equal(svc_worker_handler_calls(fx.w), 3);

    svc_worker_status(fx.w, &st);
    assert_int_equal(st.queue_depth, 0);
    assert_int_equal(st.requests, 3);
    assert_int_equal(ping(fx.s).state, SVC_STATE_READY);
    fx_stop(&fx);
}

/* Contexts must not leak when requests are dropped: with max_queue 2 there
 * are 18 contexts; after 40 queued requests were cancelled, requests are
 * still received, queued and answered. */
static void test_cancel_recycles_contexts(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=40\n");
    cfg.max_batch = 4;
    cfg.max_queue = 2;
    fx_start(&fx, cfg, true);
    for (int round = 0; round < 20; round++) {
        acall a, b, c;
        acall_seq(fx.s, &a, 8, 1, (uint64_t)round * 3, 0, 0, 4);
        sleep_ms(5);
        acall_seq(fx.s, &b, 8, 1, (uint64_t)round * 3 + 1, 0, 0, 4);
        acall_seq(fx.s, &c, 8, 1, (uint64_t)round * 3 + 2, 0, 0, 4);
        assert_int_equal(wait_status(fx.w, depth_is, 2, 1000).queue_depth, 2);
        uint8_t *buf;
        size_t len;
        simple_frame(SVC_KIND_CANCEL, 8, 1, 0, &buf, &len);
        svc_frame f;
        rpc(fx.s, buf, len, &f);
        assert_int_equal(f.status.queue_depth, 0);
        svc_frame_clear(&f);
        assert_int_equal(acall_finish(&a, 5000, &f), 0);
        svc_frame_clear(&f);
        assert_int_equal(acall_finish(&b, 1, &f), NNG_ECANCELED);
        assert_int_equal(acall_finish(&c, 1, &f), NNG_ECANCELED);
    }
    svc_status st = ping(fx.s);
    assert_int_equal(st.state, SVC_STATE_READY);
    ros_batch b;
    batch_seq(&b, 5, 1);
    uint8_t *buf;
    size_t len;
    req_frame(8, 2, 0, 0, 0, 0, &b, &buf, &len);
    svc_batch_free(&b);
    svc_frame f;
    rpc(fx.s, buf, len, &f);
    assert_seq(&f, 5, 1);
    svc_frame_clear(&f);
    fx_stop(&fx);
}

/* Requests queued by a caller that disconnects are dropped. */
static void test_disconnect_drops(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=150\n");
    cfg.max_batch = 4;
    fx_start(&fx, cfg, true);
    acall run;
    acall_seq(fx.s, &run, 1, 1, 1, 0, 0, 4);
    sleep_ms(30);
    nng_socket gone = open_req(fx.url);
    acall g1, g2;
    acall_seq(gone, &g1, 2, 1, 1, 0, 0, 4);
    acall_seq(gone, &g2, 2, 1, 2, 0, 0, 4);
    svc_status st = wait_status(fx.w, depth_is, 2, 1000);
    assert_int_equal(st.queue_depth, 2);
    nng_aio_cancel(g1.aio);
    nng_aio_cancel(g2.aio);
    svc_frame f;
    acall_finish(&g1, 10, &f);
    acall_finish(&g2, 10, &f);
    nng_close(gone);
    st = wait_status(fx.w, depth_is, 0, 1000);
    assert_int_equal(st.queue_depth, 0);
    assert_int_equal(st.inflight, 1); /* the first still runs */
    assert_int_equal(acall_finish(&run, 5000, &f), 0);
    assert_seq(&f, 0, 4);
    svc_frame_clear(&f);
    sleep_ms(50);
    assert_int_equal(svc_worker_handler_calls(fx.w), 1);
    fx_stop(&fx);
}

/* Drain: queued and running requests finish, new ones get BUSY. */
static void test_drain_finishes_work(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:delay", "delay_ms=100\n");
    cfg.max_batch = 4;
    fx_start(&fx, cfg, true);
    acall calls[3];
    for (int i = 0; i < 3; i++)
        acall_seq(fx.s, &calls[i], 1, 1, (uint64_t)i, 0, 10 * i, 4);
    sleep_ms(30);
    svc_worker_drain(fx.w);
    assert_int_equal(svc_worker_wait_drained(fx.w, 10), 1); /* not yet */
    ros_batch b;
    batch_seq(&b, 0, 1);
    uint8_t *buf;
    size_t len;
    req_frame(1, 1, 9, 0, 0, 0, &b, &buf, &len);
    svc_batch_free(&b);
    svc_frame f;
    rpc(fx.s, buf, len, &f);
    assert_int_equal(f.h.kind, SVC_KIND_BUSY);
    assert_int_equal(f.status.state, SVC_STATE_DRAINING);
    svc_frame_clear(&f);
    assert_int_equal(svc_worker_wait_drained(fx.w, 3000), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(acall_finish(&calls[i], 5000, &f), 0);
        assert_seq(&f, 10 * i, 4);
        svc_frame_clear(&f);
    }
    svc_status st;
    svc_worker_status(fx.w, &st);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.queue_depth, 0);
    assert_int_equal(st.inflight, 0);
    fx_stop(&fx);
}

/* ---------------------------------------------------------------- */
/* Garbage */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

static void test_malformed_frames(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:echo", NULL);
    cfg.max_frame = 64 << 10;
    fx_start(&fx, cfg, true);
    uint32_t sent = 0;
    svc_frame f;

    /* random bytes, some with a valid magic and version */
    for (int i = 0; i < 200; i++) {
        size_t n = rnd() % 300;
        uint8_t buf[300];
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rnd();
        if (i % 2 && n >= 8) {
            memcpy(buf, "ROSF\x01\x00", 6);
            buf[6] = (uint8_t)(1 + rnd() % 7);
            buf[7] = 0;
        }
        rpc_raw(fx.s, buf, n, &f);
        assert_int_equal(f.h.kind, SVC_KIND_ERROR);
        assert_true(strcmp(f.remote.code, "08P01") == 0 || strcmp(f.remote.code, "54000") == 0);
        svc_frame_clear(&f);
        sent++;
    }

    /* every truncation of a valid request */
    ros_batch b;
    batch_seq(&b, 1, 20);
    uint8_t *full;
    size_t flen;
    req_frame(6, 6, 6, 0, 0, 0, &b, &full, &flen);
    svc_batch_free(&b);
    for (size_t n = 0; n < flen; n += 1 + n / 16) {
        rpc_raw(fx.s, full, n, &f);
        assert_int_equal(f.h.kind, SVC_KIND_ERROR);
        assert_string_equal(f.remote.code, "08P01");
        svc_frame_clear(&f);
        sent++;
    }
    /* a flipped byte in the batch: 08P01 under the request's id */
    full[SVC_FRAME_HEADER_SIZE + 8] = 0x7f; /* column type 127 */
    rpc_raw(fx.s, full, flen, &f);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_string_equal(f.remote.code, "08P01");
    assert_int_equal(f.h.id.job, 6);
    assert_int_equal(f.h.id.seq, 6);
    svc_frame_clear(&f);
    sent++;
    free(full);

    /* a frame kind a worker does not take */
    svc_frame_header h;
    svc_request_id id = {6, 6, 7};
    svc_frame_header_init(&h, SVC_KIND_RESPONSE, &id);
    batch_seq(&b, 1, 2);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_encode(&h, &b, 0, &full, &flen, &err), 0);
    svc_batch_free(&b);
    rpc(fx.s, full, flen, &f);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_string_equal(f.remote.code, "08P01");
    svc_frame_clear(&f);
    sent++;

    /* oversized: 80 KiB against a 64 KiB limit -> 54000 under its id */
    batch_seq(&b, 0, 10000);
    req_frame(6, 6, 8, 0, 0, 0, &b, &full, &flen);
    svc_batch_free(&b);
    assert_true(flen > (64 << 10));
    rpc(fx.s, full, flen, &f);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_string_equal(f.remote.code, "54000");
    assert_int_equal(f.h.id.seq, 8);
    svc_frame_clear(&f);
    sent++;

    /* a result over the limit: echo of 7000 text rows of 10 bytes fits as a
     * request only just; checked through a smaller limit below instead */

    /* still serving */
    svc_status st = ping(fx.s);
    assert_int_equal(st.state, SVC_STATE_READY);
    assert_int_equal(st.malformed, sent);
    assert_int_equal(st.requests, 0);
    batch_seq(&b, 77, 3);
    req_frame(6, 6, 9, 0, 0, 0, &b, &full, &flen);
    svc_batch_free(&b);
    rpc(fx.s, full, flen, &f);
    assert_seq(&f, 77, 3);
    svc_frame_clear(&f);
    fx_stop(&fx);
}

/* ---------------------------------------------------------------- */
/* User library handlers */

static bool example_library(char *path, size_t n)
{
    const char *dir = getenv("ROSQL_BUILD_DIR");
    if (!dir)
        return false;
    snprintf(path, n, "%s/examples/librosql_example_udf.so", dir);
    if (access(path, R_OK) != 0)
        fail_msg("%s is missing (build the rosql_example_udf target)", path);
    return true;
}

/* A text column of n rows, every 7th NULL, rows of len bytes. */
static void batch_text(ros_batch *b, uint32_t n, uint32_t len)
{
    b->ncols = 1;
    b->nrows = n;
    b->cols = calloc(1, sizeof *b->cols);
    assert_non_null(b->cols);
    ros_vector_init(&b->cols[0], ROS_TYPE_TEXT);
    char *s = malloc(len + 1);
    assert_non_null(s);
    for (uint32_t i = 0; i < n; i++) {
        if (i % 7 == 3) {
            assert_int_equal(ros_vector_append_null(&b->cols[0]), 0);
            continue;
        }
        for (uint32_t k = 0; k < len; k++)
            s[k] = (char)('a' + (i * 7 + k * 3) % 26);
        s[len] = '\0';
        assert_int_equal(ros_vector_append_text(&b->cols[0], s), 0);
    }
    free(s);
}

/* Sends b (VOLATILE: never from the cache) twice under seq and seq + 1 and
 * checks that both answers are real[] columns of n rows of dim floats (NULL
 * where the text is) and equal. */
static void embed_twice(fixture *fx, uint64_t seq, const ros_batch *b, uint32_t dim)
{
    svc_frame f[2];
    for (int k = 0; k < 2; k++) {
        uint8_t *buf;
        size_t len;
        req_frame(5, 1, seq + (uint64_t)k, 0, SVC_FLAG_VOLATILE, 0, b, &buf, &len);
        rpc(fx->s, buf, len, &f[k]);
        if (f[k].h.kind == SVC_KIND_ERROR)
            fail_msg("ERROR %s: %s", f[k].remote.code, f[k].remote.message);
        assert_int_equal(f[k].h.kind, SVC_KIND_RESPONSE);
        assert_int_equal(f[k].h.id.seq, seq + (uint64_t)k);
        assert_int_equal(f[k].batch.nrows, b->nrows);
        const ros_vector *o = &f[k].batch.cols[0];
        assert_int_equal(o->type, ROS_TYPE_FLOAT32_ARRAY);
        for (uint32_t i = 0; i < b->nrows; i++) {
            bool null = ros_vector_is_null(&b->cols[0], i);
            assert_int_equal(ros_vector_is_null(o, i), null);
            uint32_t l;
            ros_vector_bytes(o, i, &l);
            assert_int_equal(l, null ? 0 : dim * sizeof(float));
        }
    }
    const ros_vector *a = &f[0].batch.cols[0], *c = &f[1].batch.cols[0];
    assert_int_equal(a->data_len, c->data_len);
    assert_memory_equal(a->data, c->data, a->data_len);
    svc_frame_clear(&f[0]);
    svc_frame_clear(&f[1]);
}

/* Answers are written into their request's message when it has room: an
 * answer much larger than its request (short texts, 1024 floats a row) and
 * one much smaller (long texts, one float a row) both arrive whole. */
static void test_answer_sizes(void **state)
{
    (void)state;
    fixture fx;
    fx_start(&fx, config("builtin:embed", "dim=1024\n"), true);
    ros_batch b;
    batch_text(&b, 50, 4);
    embed_twice(&fx, 10, &b, 1024);
    svc_batch_free(&b);
    fx_stop(&fx);

    fx_start(&fx, config("builtin:embed", "dim=1\n"), true);
    batch_text(&b, 50, 3000);
    embed_twice(&fx, 20, &b, 1);
    svc_batch_free(&b);
    /* and the same worker again with short rows */
    batch_text(&b, 300, 2);
    embed_twice(&fx, 30, &b, 1);
    svc_batch_free(&b);
    fx_stop(&fx);
}

/* ---------------------------------------------------------------- */
/* Shared-memory lane (service/shm.h) */

/* Segments of the lane mapped in this process (client's and worker's). */
static int shm_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, "memfd:rosql-svc") != NULL;
    fclose(f);
    return n;
}

/* Text rows through a client to builtin:embed; the answer checked against
 * the same rows sent inline on the raw socket. */
static void embed_via_client(fixture *fx, svc_client *c, uint64_t seq, const ros_batch *b, uint32_t dim)
{
    ros_batch copy;
    memset(&copy, 0, sizeof copy);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_batch_append(&copy, b, &err), 0);
    assert_int_equal(svc_client_submit(c, seq, NULL, SVC_FLAG_VOLATILE, &copy, NULL, &err), 0);
    svc_result res;
    assert_int_equal(svc_client_poll(c, 10000, &res), 1);
    if (!res.ok)
        fail_msg("request %llu failed: %s", (unsigned long long)seq, res.error.message);
    uint8_t *buf;
    size_t len;
    req_frame(5, 1, 900 + seq, 0, SVC_FLAG_VOLATILE, 0, b, &buf, &len);
    svc_frame f;
    rpc(fx->s, buf, len, &f);
    assert_int_equal(f.h.kind, SVC_KIND_RESPONSE);
    const ros_vector *want = &f.batch.cols[0];
    assert_int_equal(res.out.len, b->nrows);
    assert_int_equal(res.out.data_len, want->data_len);
    assert_int_equal(res.out.data_len, (uint64_t)(b->nrows - (b->nrows + 3) / 7) * dim * sizeof(float));
    assert_memory_equal(res.out.data, want->data, want->data_len);
    svc_frame_clear(&f);
    svc_result_clear(&res);
}

/* Large parts to a local worker go through shared memory, answers come
 * back the same way (or inline when they do not fit, after which the area
 * offered grows), cache hits and ROSQL_SVC_SHM=0 are inline, and every
 * answer is right. */
static void test_shm_lane(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:echo", NULL);
    cfg.cache_entries = 64;
    fx_start(&fx, cfg, true);
    int before = shm_mappings();
    svc_client *c = open_client(fx.url, 0);
    assert_false(client_call(c, 1, 0, 5, 20000)); /* 160 KiB of bigints */
    svc_client_stats st;
    svc_client_get_stats(c, &st);
    assert_int_equal(st.parts_shm, 1);
    assert_int_equal(shm_mappings(), before + 2); /* the client's segment, and the worker's view */
    assert_true(client_call(c, 1, 0, 5, 20000)); /* from the cache: inline, reused */
    assert_false(client_call(c, 2, 0, 7, 100));  /* small: inline */
    assert_false(client_call(c, 3, 0, -9, 30000));
    svc_client_get_stats(c, &st);
    assert_int_equal(st.parts_shm, 3);
    assert_int_equal(st.parts_sent, 4);
    svc_client_close(c);

    setenv("ROSQL_SVC_SHM", "0", 1);
    c = open_client(fx.url, 0);
    assert_false(client_call(c, 4, 0, 1, 20000));
    svc_client_get_stats(c, &st);
    assert_int_equal(st.parts_shm, 0);
    svc_client_close(c);
    unsetenv("ROSQL_SVC_SHM");
    fx_stop(&fx);

    /* answers much larger than their requests (3 000 short texts -> 256
     * floats each): the first does not fit the area offered and comes
     * inline, the next ones fit */
    fx_start(&fx, config("builtin:embed", "dim=256\n"), true);
    ros_batch b;
    batch_text(&b, 3000, 12);
    c = open_client(fx.url, 0);
    for (uint64_t seq = 1; seq <= 3; seq++)
        embed_via_client(&fx, c, seq, &b, 256);
    svc_client_get_stats(c, &st);
    assert_int_equal(st.parts_shm, 3);
    svc_client_close(c);
    svc_batch_free(&b);
    fx_stop(&fx);
}

/* ---------------------------------------------------------------- */
/* Doorbell lane (service/lane.h) */

/* Waits up to 3 s for the worker to run n lanes. */
static void wait_lanes(fixture *fx, uint32_t n)
{
    for (int i = 0; i < 300 && svc_worker_lanes(fx->w) != n; i++)
        sleep_ms(10);
    assert_int_equal(svc_worker_lanes(fx->w), n);
}

/* Once a local instance has answered a request read from our memory, the
 * next ones go through a doorbell lane: answers right, cache hits too
 * (inline answers copied into the area offered); an answer larger than the
 * area offered is asked again with room for it; the lane ends with its
 * client; ROSQL_SVC_LANE=0 keeps to the socket. */
static void test_doorbell_lane(void **state)
{
    (void)state;
    fixture fx;
    svc_worker_config cfg = config("builtin:echo", NULL);
    cfg.cache_entries = 64;
    fx_start(&fx, cfg, true);
    svc_client *c = open_client(fx.url, 0);
    for (uint64_t seq = 1; seq <= 6; seq++)
        assert_false(client_call(c, seq, 0, (int64_t)seq * 100000, 20000));
    svc_client_stats st;
    svc_client_get_stats(c, &st);
    assert_int_equal(st.parts_shm, 6);
    assert_int_equal(st.parts_lane, 5); /* the first showed that it maps our memory */
    assert_int_equal(svc_worker_lanes(fx.w), 1);
    assert_true(client_call(c, 3, 0, 300000, 20000)); /* a cache hit, through the lane */
    assert_false(client_call(c, 7, 0, 5, 100));       /* small: inline on the socket */
    svc_client_get_stats(c, &st);
    assert_int_equal(st.parts_lane, 6);
    assert_int_equal(st.parts_sent, 8);
    svc_client_close(c);
    wait_lanes(&fx, 0);

    setenv("ROSQL_SVC_LANE", "0", 1);
    c = open_client(fx.url, 0);
    for (uint64_t seq = 11; seq <= 13; seq++)
        assert_false(client_call(c, seq, 0, 1, 20000));
    svc_client_get_stats(c, &st);
    assert_int_equal(st.parts_shm, 3);
    assert_int_equal(st.parts_lane, 0);
    assert_int_equal(svc_worker_lanes(fx.w), 0);
    svc_client_close(c);
    unsetenv("ROSQL_SVC_LANE");
    fx_stop(&fx);

    /* Answers much larger than their requests (short texts -> 256 floats):
     * the first comes inline over the socket; then two requests at once,
     * on two flights: the one whose flight has not seen the large answer
     * offers too little room, is answered 58R01 with the size needed and
     * sent again with that much room. */
    fx_start(&fx, config("builtin:embed", "dim=256\n"), true);
    ros_batch b;
    batch_text(&b, 3000, 12);
    c = open_client(fx.url, 0);
    embed_via_client(&fx, c, 1, &b, 256);
    ros_error err;
    ros_error_clear(&err);
    ros_batch copy[2];
    for (int k = 0; k < 2; k++) {
        memset(&copy[k], 0, sizeof copy[k]);
        assert_int_equal(svc_batch_append(&copy[k], &b, &err), 0);
        assert_int_equal(svc_client_submit(c, 2 + (uint64_t)k, NULL, SVC_FLAG_VOLATILE, &copy[k], NULL, &err), 0);
    }
    uint8_t *buf;
    size_t len;
    req_frame(5, 1, 900, 0, SVC_FLAG_VOLATILE, 0, &b, &buf, &len);
    svc_frame want;
    rpc(fx.s, buf, len, &want);
    for (int k = 0; k < 2; k++) {
        svc_result res;
        assert_int_equal(svc_client_poll(c, 10000, &res), 1);
        if (!res.ok)
            fail_msg("request %llu failed: %s", (unsigned long long)res.seq, res.error.message);
        assert_int_equal(res.out.data_len, want.batch.cols[0].data_len);
        assert_memory_equal(res.out.data, want.batch.cols[0].data, res.out.data_len);
        svc_result_clear(&res);
    }
    svc_frame_clear(&want);
    svc_client_get_stats(c, &st);
    assert_int_equal(st.parts_lane, 3); /* two, and the one asked again */
    assert_int_equal(st.parts_sent, 4);
    svc_client_close(c);
    svc_batch_free(&b);
    fx_stop(&fx);
}

/* Sends a LANE frame naming ref on the raw socket; the answer must be of
 * kind, with SQLSTATE code when it is an ERROR. */
static void lane_rpc(fixture *fx, const svc_shm_ref *ref, svc_frame_kind kind, const char *code)
{
    svc_request_id rid = {5, 1, 0};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_LANE, &rid);
    uint8_t env[SVC_FRAME_SHM_SIZE];
    svc_frame_write_lane(&h, ref, env);
    svc_frame f;
    rpc_raw(fx->s, env, sizeof env, &f);
    assert_int_equal(f.h.kind, kind);
    if (code)
        assert_string_equal(f.remote.code, code);
    svc_frame_clear(&f);
}

/* A lane opened by hand on the raw socket: LANE frames that name no lane
 * are refused; envelopes posted into the lane are answered in it, garbage
 * with an error (counted), and the worker keeps serving. */
static void test_lane_malformed(void **state)
{
    (void)state;
    fixture fx;
    fx_start(&fx, config("builtin:echo", NULL), true);
    ros_error err;
    ros_error_clear(&err);
    svc_shm_seg blk, seg;
    assert_int_equal(svc_shm_seg_create(&blk, SVC_LANE_BLOCK_BYTES, &err), 0);
    assert_int_equal(svc_shm_seg_create(&seg, 1 << 20, &err), 0);
    svc_lane lane;
    svc_lane_view(&lane, blk.base + SVC_LANE_FIRST_OFF, blk.base + SVC_LANE_BELL_OFF);
    uint8_t env[SVC_FRAME_SHM_SIZE];
    svc_frame f;
    /* no magic yet, then a wrong size, then another segment's descriptor */
    svc_shm_ref ref = {(uint32_t)blk.fd, blk.id, blk.size, SVC_LANE_FIRST_OFF, SVC_LANE_BYTES, SVC_LANE_BELL_OFF,
                       SVC_LANE_BELL_BYTES};
    lane_rpc(&fx, &ref, SVC_KIND_ERROR, SVC_ERR_SHM_UNAVAILABLE);
    svc_lane_init(&lane);
    svc_shm_ref bad = ref;
    bad.len = 4096;
    lane_rpc(&fx, &bad, SVC_KIND_ERROR, SVC_ERR_PROTOCOL_VIOLATION);
    bad = ref;
    bad.fd = (uint32_t)seg.fd;
    lane_rpc(&fx, &bad, SVC_KIND_ERROR, SVC_ERR_SHM_UNAVAILABLE);
    assert_int_equal(svc_worker_lanes(fx.w), 0);
    lane_rpc(&fx, &ref, SVC_KIND_PONG, NULL);
    assert_int_equal(svc_worker_lanes(fx.w), 1);

    /* garbage, then a frame that is not an envelope, then a request */
    uint8_t junk[SVC_LANE_REQ_MAX];
    memset(junk, 0xa5, sizeof junk);
    assert_int_equal(svc_lane_post_request(&lane, 1, junk, sizeof junk), 0);
    uint8_t *buf;
    size_t len;
    simple_frame(SVC_KIND_PING, 5, 1, 0, &buf, &len);
    assert_int_equal(svc_lane_post_request(&lane, 2, buf, len), 0);
    free(buf);
    ros_batch b;
    batch_seq(&b, 100, 1000);
    req_frame(5, 1, 3, 0, SVC_FLAG_VOLATILE, 0, &b, &buf, &len);
    memcpy(seg.base + SVC_SHM_SEG_HEADER, buf, len);
    free(buf);
    svc_frame_header rh;
    svc_request_id id3 = {5, 1, 3};
    svc_frame_header_init(&rh, SVC_KIND_REQUEST, &id3);
    svc_shm_ref rref = {(uint32_t)seg.fd, seg.id, seg.size, SVC_SHM_SEG_HEADER, len, 65536, seg.size - 65536};
    svc_frame_write_shm(&rh, &rref, env);
    assert_int_equal(svc_lane_post_request(&lane, 3, env, sizeof env), 0);
    for (uint64_t want_tag = 1; want_tag <= 3; want_tag++) {
        uint8_t ans[SVC_LANE_RESP_MAX];
        uint64_t tag;
        size_t alen;
        int64_t t0 = now_ms();
        uint32_t seen = svc_lane_bell_read(lane.bell);
        while (svc_lane_take_answer(&lane, &tag, ans, &alen) == 0) {
            assert_true(now_ms() - t0 < 5000);
            svc_lane_bell_wait(lane.bell, lane.bell_waiting, seen, 100);
            seen = svc_lane_bell_read(lane.bell);
        }
        assert_int_equal(tag, want_tag);
        assert_int_equal(svc_frame_decode(ans, alen, 0, &f, &err), 0);
        if (want_tag < 3) {
            assert_int_equal(f.h.kind, SVC_KIND_ERROR);
            assert_string_equal(f.remote.code, SVC_ERR_PROTOCOL_VIOLATION);
        } else {
            assert_int_equal(f.h.kind, SVC_KIND_SHM);
            svc_frame a;
            assert_int_equal(svc_frame_decode(seg.base + f.shm.off, (size_t)f.shm.len, 0, &a, &err), 0);
            assert_seq(&a, 100, 1000);
            svc_frame_clear(&a);
        }
        svc_frame_clear(&f);
    }
    assert_true(ping(fx.s).malformed >= 3); /* the size, the garbage, the PING */
    /* a corrupt ring ends the lane; closing one ends it too */
    uint32_t far = 5000;
    memcpy(lane.base + 64, &far, 4);
    svc_lane_wake_worker(&lane);
    wait_lanes(&fx, 0);
    svc_lane_init(&lane);
    lane_rpc(&fx, &ref, SVC_KIND_PONG, NULL);
    wait_lanes(&fx, 1);
    svc_lane_close(&lane);
    wait_lanes(&fx, 0);
    svc_batch_free(&b);
    svc_shm_seg_destroy(&seg);
    svc_shm_seg_destroy(&blk);
    fx_stop(&fx);
}

/* An envelope sent by hand on the raw socket, naming seg (or fd) with
 * the request frame at off. */
static void shm_rpc(fixture *fx, uint32_t fd, uint64_t id, uint64_t size, uint64_t off, uint64_t len,
                    uint64_t resp_off, uint64_t resp_cap, uint64_t seq, svc_frame *ans)
{
    svc_request_id rid = {5, 1, seq};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_REQUEST, &rid);
    svc_shm_ref ref = {fd, id, size, off, len, resp_off, resp_cap};
    uint8_t env[SVC_FRAME_SHM_SIZE];
    svc_frame_write_shm(&h, &ref, env);
    rpc_raw(fx->s, env, sizeof env, ans);
}

/* Envelopes that name no segment, another segment, memory outside it or a
 * malformed frame in it are answered with an error, and the worker goes on
 * serving, shared memory included. */
static void test_shm_malformed(void **state)
{
    (void)state;
    fixture fx;
    fx_start(&fx, config("builtin:echo", NULL), true);
    ros_error err;
    ros_error_clear(&err);
    svc_shm_seg seg;
    assert_int_equal(svc_shm_seg_create(&seg, 1 << 20, &err), 0);
    ros_batch b;
    batch_seq(&b, 100, 1000);
    uint8_t *buf;
    size_t len;
    req_frame(5, 1, 1, 0, SVC_FLAG_VOLATILE, 0, &b, &buf, &len);
    memcpy(seg.base + SVC_SHM_SEG_HEADER, buf, len);
    free(buf);
    uint64_t resp_off = SVC_SHM_SEG_HEADER + ((len + 63) & ~(size_t)63);
    uint64_t cap = seg.size - resp_off;
    svc_frame f;

    /* the good one: the answer lies in the segment */
    shm_rpc(&fx, (uint32_t)seg.fd, seg.id, seg.size, SVC_SHM_SEG_HEADER, len, resp_off, cap, 1, &f);
    assert_int_equal(f.h.kind, SVC_KIND_SHM);
    assert_int_equal(f.shm.off, resp_off);
    svc_frame ans;
    assert_int_equal(svc_frame_decode(seg.base + f.shm.off, (size_t)f.shm.len, 0, &ans, &err), 0);
    assert_int_equal(ans.h.kind, SVC_KIND_RESPONSE);
    assert_int_equal(ans.h.id.seq, 1);
    assert_seq(&ans, 100, 1000);
    svc_frame_clear(&ans);
    svc_frame_clear(&f);

    /* not open, not a segment (a regular file), another segment's id */
    char path[128];
    snprintf(path, sizeof path, "%s/plain", fx.dir);
    int pf = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(pf >= 0);
    assert_int_equal(ftruncate(pf, (off_t)seg.size), 0);
    const struct {
        uint32_t fd;
        uint64_t id;
    } bad[] = {{9999, seg.id}, {(uint32_t)pf, seg.id}, {(uint32_t)seg.fd, seg.id + 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        shm_rpc(&fx, bad[i].fd, bad[i].id, seg.size, SVC_SHM_SEG_HEADER, len, resp_off, cap, 2, &f);
        assert_int_equal(f.h.kind, SVC_KIND_ERROR);
        assert_string_equal(f.remote.code, SVC_ERR_SHM_UNAVAILABLE);
        assert_int_equal(f.h.id.seq, 2); /* answered under the request's id */
        svc_frame_clear(&f);
    }
    close(pf);
    unlink(path);

    /* ranges outside the segment or overlapping: malformed envelopes */
    const uint64_t ranges[][4] = {
        {SVC_SHM_SEG_HEADER, seg.size, resp_off, cap},          /* frame past the end */
        {SVC_SHM_SEG_HEADER, len, resp_off, cap + 8},           /* area past the end */
        {SVC_SHM_SEG_HEADER, len, SVC_SHM_SEG_HEADER + 8, 64},  /* overlap */
        {SVC_SHM_SEG_HEADER + 4, len, resp_off, cap},           /* unaligned */
        {SVC_SHM_SEG_HEADER, 8, resp_off, cap},                 /* shorter than a header */
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        shm_rpc(&fx, (uint32_t)seg.fd, seg.id, seg.size, ranges[i][0], ranges[i][1], ranges[i][2],
                ranges[i][3], 3, &f);
        assert_int_equal(f.h.kind, SVC_KIND_ERROR);
        assert_string_equal(f.remote.code, SVC_ERR_PROTOCOL_VIOLATION);
        svc_frame_clear(&f);
    }

    /* a malformed frame in the segment, and a frame that is not a request */
    memset(seg.base + SVC_SHM_SEG_HEADER + 8, 0xee, 8);
    shm_rpc(&fx, (uint32_t)seg.fd, seg.id, seg.size, SVC_SHM_SEG_HEADER, len, resp_off, cap, 4, &f);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_string_equal(f.remote.code, SVC_ERR_PROTOCOL_VIOLATION);
    svc_frame_clear(&f);
    simple_frame(SVC_KIND_PING, 5, 1, 0, &buf, &len);
    memcpy(seg.base + SVC_SHM_SEG_HEADER, buf, len);
    free(buf);
    shm_rpc(&fx, (uint32_t)seg.fd, seg.id, seg.size, SVC_SHM_SEG_HEADER, len, resp_off, cap, 0, &f);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_string_equal(f.remote.code, SVC_ERR_PROTOCOL_VIOLATION);
    svc_frame_clear(&f);
    assert_true(ping(fx.s).malformed >= 7);

    /* still serving, through shared memory too */
    req_frame(5, 1, 6, 0, SVC_FLAG_VOLATILE, 0, &b, &buf, &len);
    memcpy(seg.base + SVC_SHM_SEG_HEADER, buf, len);
    free(buf);
    shm_rpc(&fx, (uint32_t)seg.fd, seg.id, seg.size, SVC_SHM_SEG_HEADER, len, resp_off, cap, 6, &f);
    assert_int_equal(f.h.kind, SVC_KIND_SHM);
    assert_int_equal(svc_frame_decode(seg.base + f.shm.off, (size_t)f.shm.len, 0, &ans, &err), 0);
    assert_seq(&ans, 100, 1000);
    svc_frame_clear(&ans);
    svc_frame_clear(&f);
    svc_batch_free(&b);
    svc_shm_seg_destroy(&seg);
    fx_stop(&fx);
}

/* Another process's segment: mapped through its pid, the header checked,
 * kept while that process lives and unmapped by a sweep once it exited. */
static void test_shm_other_process(void **state)
{
    (void)state;
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ros_error err;
        ros_error_clear(&err);
        svc_shm_seg seg;
        if (svc_shm_seg_create(&seg, 1 << 16, &err) < 0)
            _exit(2);
        memcpy(seg.base + SVC_SHM_SEG_HEADER, "hello", 6);
        svc_shm_ref ref = {(uint32_t)seg.fd, seg.id, seg.size, SVC_SHM_SEG_HEADER, 64, 0, 0};
        if (write(up[1], &ref, sizeof ref) != (ssize_t)sizeof ref)
            _exit(3);
        char c;
        (void)!read(down[0], &c, 1); /* until the parent says so */
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    svc_shm_ref ref;
    assert_int_equal(read(up[0], &ref, sizeof ref), (ssize_t)sizeof ref);
    svc_shm_maps *ms = svc_shm_maps_new(4);
    assert_non_null(ms);
    ros_error err;
    ros_error_clear(&err);
    svc_shm_map *m = svc_shm_attach(ms, pid, &ref, &err);
    if (!m)
        fail_msg("attach: %s", err.message);
    assert_string_equal((const char *)svc_shm_base(m) + SVC_SHM_SEG_HEADER, "hello");
    svc_shm_ref wrong = ref;
    wrong.seg_id ^= 1;
    ros_error_clear(&err);
    assert_null(svc_shm_attach(ms, pid, &wrong, &err));
    assert_string_equal(err.code, SVC_ERR_SHM_UNAVAILABLE);
    ros_error_clear(&err);
    assert_null(svc_shm_attach(ms, 0, &ref, &err)); /* no peer pid (tcp) */
    assert_string_equal(err.code, SVC_ERR_SHM_UNAVAILABLE);
    svc_shm_release(ms, m);
    svc_shm_sweep(ms);
    assert_int_equal(svc_shm_mapped(ms), 1); /* its owner lives, recently used */
    assert_int_equal(write(down[1], "x", 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    svc_shm_sweep(ms);
    assert_int_equal(svc_shm_mapped(ms), 0);
    svc_shm_maps_free(ms);
    close(up[0]);
    close(down[1]);
}

static void test_user_library(void **state)
{
    (void)state;
    char lib[1024], spec[1100];
    if (!example_library(lib, sizeof lib))
        skip();
    snprintf(spec, sizeof spec, "%s:add_one_udf", lib);
    fixture fx;
    fx_start(&fx, config(spec, NULL), true);
    int64_t v[] = {1, 2, 0, -5, INT64_MAX - 1};
    bool nulls[] = {false, false, true, false, false};
    ros_batch b;
    batch_i64(&b, v, nulls, 5);
    uint8_t *buf;
    size_t len;
    req_frame(1, 1, 1, 0, 0, 0, &b, &buf, &len);
    svc_batch_free(&b);
    svc_frame f;
    rpc(fx.s, buf, len, &f);
    assert_int_equal(f.h.kind, SVC_KIND_RESPONSE);
    const ros_vector *o = &f.batch.cols[0];
    assert_int_equal(ROS_VEC_I64(o)[0], 2);
    assert_int_equal(ROS_VEC_I64(o)[1], 3);
    assert_true(ros_vector_is_null(o, 2));
    assert_int_equal(ROS_VEC_I64(o)[3], -4);
    assert_int_equal(ROS_VEC_I64(o)[4], INT64_MAX);
    svc_frame_clear(&f);

    /* a column of the wrong type: 42804 */
    b.ncols = 1;
    b.nrows = 1;
    b.cols = calloc(1, sizeof *b.cols);
    ros_vector_init(&b.cols[0], ROS_TYPE_TEXT);
    ros_vector_append_text(&b.cols[0], "x");
    req_frame(1, 1, 2, 0, 0, 0, &b, &buf, &len);
    svc_batch_free(&b);
    rpc(fx.s, buf, len, &f);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_string_equal(f.remote.code, ROS_ERR_DATATYPE_MISMATCH);
    svc_frame_clear(&f);
    fx_stop(&fx);
}

/* A batch of three callers where one sends a negative number: that one gets
 * the error, the other two their results. */
static void test_culprit_gets_the_error(void **state)
{
    (void)state;
    char lib[1024], spec[1100];
    if (!example_library(lib, sizeof lib))
        skip();
    snprintf(spec, sizeof spec, "%s:fail_on_negative_udf", lib);
    fixture fx;
    svc_worker_config cfg = config(spec, NULL);
    cfg.max_delay_ms = 100;
    fx_start(&fx, cfg, true);
    acall a, b, c;
    acall_seq(fx.s, &a, 1, 1, 1, 0, 1, 2);  /* 1, 2 */
    acall_seq(fx.s, &b, 1, 1, 2, 0, -1, 3); /* -1, 0, 1: fails */
    acall_seq(fx.s, &c, 1, 1, 3, 0, 5, 1);  /* 5 */
    svc_frame f;
    assert_int_equal(acall_finish(&a, 5000, &f), 0);
    assert_seq(&f, 1, 2);
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&b, 5000, &f), 0);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_string_equal(f.remote.code, ROS_ERR_EXTERNAL);
    assert_non_null(strstr(f.remote.message, "negative input -1"));
    assert_int_equal(f.h.id.seq, 2);
    svc_frame_clear(&f);
    assert_int_equal(acall_finish(&c, 5000, &f), 0);
    assert_seq(&f, 5, 1);
    svc_frame_clear(&f);
    /* one combined call, then each alone */
    assert_int_equal(svc_worker_handler_calls(fx.w), 4);
    svc_status st;
    svc_worker_status(fx.w, &st);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.rows, 3);
    fx_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_warming),
        cmocka_unit_test(test_failed_start),
        cmocka_unit_test(test_echo_types),
        cmocka_unit_test(test_answer_sizes),
        cmocka_unit_test(test_shm_lane),
        cmocka_unit_test(test_doorbell_lane),
        cmocka_unit_test(test_lane_malformed),
        cmocka_unit_test(test_shm_malformed),
        cmocka_unit_test(test_shm_other_process),
        cmocka_unit_test(test_batching_across_callers),
        cmocka_unit_test(test_batching_limits),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_content),
        cmocka_unit_test(test_duplicate_attaches),
        cmocka_unit_test(test_duplicate_needs_same_content),
        cmocka_unit_test(test_client_reused),
        cmocka_unit_test(test_no_store),
        cmocka_unit_test(test_busy_when_full),
        cmocka_unit_test(test_deadline_expired),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_recycles_contexts),
        cmocka_unit_test(test_disconnect_drops),
        cmocka_unit_test(test_drain_finishes_work),
        cmocka_unit_test(test_malformed_frames),
        cmocka_unit_test(test_user_library),
        cmocka_unit_test(test_culprit_gets_the_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

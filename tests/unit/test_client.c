/*
 * test_client.c
 *    Unit tests of the service client (service/client.h) and of the
 *    C-function API over it (include/rosql/client.h).
 *
 * The instances are fake servers run in-process: a thread with an nng REP
 * socket on an ipc:// URL in a temporary directory, decoding with
 * svc_frame_decode, answering with svc_frame_encode / encode_error /
 * encode_status, and recording every frame it received (request id, part,
 * rows) so a test can check what went over the wire.  Modes: echo (answers
 * the first argument column), BUSY n times then echo, delay then echo,
 * silent, and ERROR; echoes mark the parts of reused_parts REUSED.  An instance that dies is a child process (this binary
 * run as `test_client --die URL LOG`) that receives one request, writes its
 * id to LOG and exits, as a crashed worker does; closing an nng socket while
 * traffic arrives can wedge nng 1.5's reaper (nanomsg/nng#1543), so no fake
 * closes its socket under load.  A fake coordinator (PUB socket plus a REP
 * control thread) drives discovery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>

#include <rosql/client.h>
#include <rosql/vector.h>

#include "runtime/core/error.h"
#include "service/client.h"
#include "service/frame.h"
#include "service/shm.h"

#define SERVICE "svc"
#define JOB 4242
#define OP 7
#define ATTEMPT 3
#define SEEN_MAX 4096

/* ---------------------------------------------------------------- */
/* Clock and paths */

static char tmpdir[64];
static int url_serial;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A fresh ipc:// URL in the test's directory (never reused). */
static void make_url(char *out, size_t n, const char *what)
{
    snprintf(out, n, "ipc://%s/%s-%d", tmpdir, what, url_serial++);
}

/* ---------------------------------------------------------------- */
/* Fake instances */

typedef enum fake_mode {
    FAKE_ECHO,   /* answers the first argument column */
    FAKE_BUSY,   /* answers BUSY busy_left times, then echoes */
    FAKE_DELAY,  /* sleeps delay_ms, then echoes */
    FAKE_SILENT, /* never answers a request */
    FAKE_ERROR   /* answers ERROR 22012 naming row 3 (error_part: only that part) */
} fake_mode;

/* One frame a fake received. */
typedef struct seen {
    uint16_t kind;
    svc_request_id id;
    uint32_t attempt, part_index, part_count, nrows;
    uint64_t deadline_ms;
    char method[32];
} seen;

typedef struct fake {
    char url[256];
    nng_socket sock;
    pthread_t thr;
    fake_mode mode;
    int busy_left;         /* FAKE_BUSY */
    int delay_ms;          /* FAKE_DELAY */
    int error_part;        /* FAKE_ERROR: the part that fails, -1 = every part */
    _Atomic uint64_t reused_parts; /* echoes of these part indexes (bit i: part i) carry
                                      SVC_FLAG_REUSED; 0: none, as an older worker */
    atomic_bool stop;
    atomic_int shm_refused; /* SHM envelopes answered "cannot map" */
    pthread_mutex_t mu;
    seen log[SEEN_MAX];    /* under mu */
    int nlog;
} fake;

static void fake_send(fake *f, uint8_t *buf, size_t len)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, len) == 0) {
        memcpy(nng_msg_body(m), buf, len);
        if (nng_sendmsg(f->sock, m, 0) != 0)
            nng_msg_free(m);
    }
    free(buf);
}

static void fake_echo(fake *f, const svc_frame *fr)
{
    svc_frame_header h;
    svc_frame_reply_header(&h, &fr->h, SVC_KIND_RESPONSE);
    if (fr->h.part_index < 64 && (atomic_load(&f->reused_parts) >> fr->h.part_index & 1))
        h.flags |= SVC_FLAG_REUSED;
    ros_batch one = {.ncols = fr->batch.ncols ? 1 : 0, .nrows = fr->batch.nrows,
                     .cols = fr->batch.cols};
    uint8_t *buf;
    size_t len;
    ros_error err;
    ros_error_clear(&err);
    if (svc_frame_encode(&h, &one, 0, &buf, &len, &err) == 0)
        fake_send(f, buf, len);
}

static void fake_status(fake *f, const svc_frame *fr, svc_frame_kind kind)
{
    svc_frame_header h;
    svc_frame_reply_header(&h, &fr->h, kind);
    svc_status st = {.state = SVC_STATE_READY, .queue_depth = 8, .queue_capacity = 8,
                     .retry_after_ms = kind == SVC_KIND_BUSY ? 20 : 0};
    uint8_t *buf;
    size_t len;
    if (svc_frame_encode_status(&h, &st, 0, &buf, &len, NULL) == 0)
        fake_send(f, buf, len);
}

static void fake_error(fake *f, const svc_frame *fr)
{
    svc_frame_header h;
    svc_frame_reply_header(&h, &fr->h, SVC_KIND_ERROR);
    ros_error remote;
    ros_error_clear(&remote);
    ros_error_set(&remote, ROS_ERR_DIVISION_BY_ZERO, "division by zero");
    ros_error_detail(&remote, "Row 3 had b = 0.");
    uint8_t *buf;
    size_t len;
    if (svc_frame_encode_error(&h, &remote, 3, 0, &buf, &len, NULL) == 0)
        fake_send(f, buf, len);
}

/* A fake does not map shared memory: it answers a SHM envelope as a
 * worker that cannot (the client then sends that member frames inline). */
static void fake_no_shm(fake *f, const svc_frame *fr)
{
    svc_frame_header h;
    svc_frame_reply_header(&h, &fr->h, SVC_KIND_ERROR);
    ros_error remote;
    ros_error_clear(&remote);
    ros_error_set(&remote, SVC_ERR_SHM_UNAVAILABLE, "cannot open the caller's shared memory");
    uint8_t *buf;
    size_t len;
    if (svc_frame_encode_error(&h, &remote, SVC_FRAME_ROW_NONE, 0, &buf, &len, NULL) == 0)
        fake_send(f, buf, len);
    atomic_fetch_add(&f->shm_refused, 1);
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        nng_msg *msg;
        int rv = nng_recvmsg(f->sock, &msg, 0);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        svc_frame fr;
        ros_error err;
        ros_error_clear(&err);
        int rc = svc_frame_decode(nng_msg_body(msg), nng_msg_len(msg), 0, &fr, &err);
        nng_msg_free(msg);
        if (rc < 0)
            continue;
        pthread_mutex_lock(&f->mu);
        if (f->nlog < SEEN_MAX) {
            seen *s = &f->log[f->nlog++];
            s->kind = fr.h.kind;
            s->id = fr.h.id;
            s->attempt = fr.h.attempt;
            s->part_index = fr.h.part_index;
            s->part_count = fr.h.part_count;
            s->nrows = fr.batch.nrows;
            s->deadline_ms = fr.h.deadline_ms;
            snprintf(s->method, sizeof s->method, "%.31s", fr.h.method);
        }
        pthread_mutex_unlock(&f->mu);
        if (fr.h.kind == SVC_KIND_SHM) {
            fake_no_shm(f, &fr);
        } else if (fr.h.kind == SVC_KIND_CANCEL) {
            fake_status(f, &fr, SVC_KIND_PONG); /* as the worker does */
        } else if (fr.h.kind == SVC_KIND_REQUEST) {
            switch (f->mode) {
            case FAKE_ECHO: fake_echo(f, &fr); break;
            case FAKE_BUSY:
                if (f->busy_left > 0) {
                    f->busy_left--;
                    fake_status(f, &fr, SVC_KIND_BUSY);
                } else {
                    fake_echo(f, &fr);
                }
                break;
            case FAKE_DELAY:
                sleep_ms(f->delay_ms);
                fake_echo(f, &fr);
                break;
            case FAKE_SILENT: break;
            case FAKE_ERROR:
                if (f->error_part < 0 || (uint32_t)f->error_part == fr.h.part_index)
                    fake_error(f, &fr);
                else
                    fake_echo(f, &fr);
                break;
            }
        }
        svc_frame_clear(&fr);
    }
    return NULL;
}

/* Starts a fake; param is busy_left (FAKE_BUSY), delay_ms (FAKE_DELAY) or
 * error_part (FAKE_ERROR, -1 = every part). */
static fake *fake_start(fake_mode mode, const char *name, int param)
{
    fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->mode = mode;
    f->busy_left = mode == FAKE_BUSY ? param : 0;
    f->delay_ms = mode == FAKE_DELAY ? param : 0;
    f->error_part = mode == FAKE_ERROR ? param : -1;
    pthread_mutex_init(&f->mu, NULL);
    make_url(f->url, sizeof f->url, name);
    assert_int_equal(nng_rep0_open(&f->sock), 0);
    assert_int_equal(nng_socket_set_size(f->sock, NNG_OPT_RECVMAXSZ, 0), 0);
    assert_int_equal(nng_socket_set_ms(f->sock, NNG_OPT_RECVTIMEO, 20), 0);
    assert_int_equal(nng_listen(f->sock, f->url, NULL, 0), 0);
    assert_int_equal(pthread_create(&f->thr, NULL, fake_main, f), 0);
    return f;
}

static void fake_stop(fake *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->thr, NULL);
    nng_close(f->sock);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* Requests (kind REQUEST) a fake received, and those with a given seq. */
static int fake_requests(fake *f, int64_t seq)
{
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->nlog; i++)
        n += f->log[i].kind == SVC_KIND_REQUEST && (seq < 0 || f->log[i].id.seq == (uint64_t)seq);
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* An instance that dies: a child process. */
typedef struct dying {
    pid_t pid;
    char url[256];
    char log[256];
} dying;

/* Child side (`--die URL LOG`): serve one request by dying. */
static int die_main(const char *url, const char *logpath)
{
    nng_socket s;
    nng_msg *msg;
    if (nng_rep0_open(&s) != 0 || nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0) != 0 ||
        nng_listen(s, url, NULL, 0) != 0)
        _exit(2);
    if (nng_recvmsg(s, &msg, 0) != 0)
        _exit(3);
    svc_frame fr;
    if (svc_frame_decode(nng_msg_body(msg), nng_msg_len(msg), 0, &fr, NULL) < 0)
        _exit(4);
    FILE *f = fopen(logpath, "w");
    if (!f)
        _exit(5);
    fprintf(f, "%llu %u %llu\n", (unsigned long long)fr.h.id.job, fr.h.id.op,
            (unsigned long long)fr.h.id.seq);
    fclose(f);
    _exit(0); /* the kernel closes the connection, as for a crashed worker */
}

static dying *dying_start(const char *name)
{
    dying *d = calloc(1, sizeof *d);
    assert_non_null(d);
    make_url(d->url, sizeof d->url, name);
    snprintf(d->log, sizeof d->log, "%s/%s.log", tmpdir, name);
    char *argv[] = {"test_client", "--die", d->url, d->log, NULL};
    extern char **environ;
    assert_int_equal(posix_spawn(&d->pid, "/proc/self/exe", NULL, NULL, argv, environ), 0);
    return d;
}

/* The seq the dead instance received (-1: none), after checking its id. */
static int64_t dying_seq(dying *d)
{
    FILE *f = fopen(d->log, "r");
    if (!f)
        return -1;
    unsigned long long job, seq;
    unsigned op;
    int n = fscanf(f, "%llu %u %llu", &job, &op, &seq);
    fclose(f);
    assert_int_equal(n, 3);
    assert_int_equal(job, JOB);
    assert_int_equal(op, OP);
    return (int64_t)seq;
}

/* Waits for the child to have exited after serving its one request. */
static void dying_stop(dying *d)
{
    int status = 0;
    assert_int_equal(waitpid(d->pid, &status, 0), d->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    free(d);
}

/* ---------------------------------------------------------------- */
/* Client helpers */

static svc_client *client_open(uint32_t inflight, uint32_t timeout_ms, uint32_t retries,
                               size_t max_frame)
{
    svc_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.service = SERVICE;
    cfg.max_inflight = inflight;
    cfg.timeout_ms = timeout_ms;
    cfg.max_retries = retries;
    cfg.max_frame = max_frame;
    cfg.job = JOB;
    cfg.op = OP;
    cfg.attempt = ATTEMPT;
    ros_error err;
    ros_error_clear(&err);
    svc_client *c = svc_client_open(&cfg, &err);
    if (!c)
        fail_msg("svc_client_open: %s", err.message);
    return c;
}

static void members_of(svc_client *c, fake **fs, int n)
{
    svc_member m[8];
    memset(m, 0, sizeof m);
    for (int i = 0; i < n; i++) {
        m[i].idx = i;
        snprintf(m[i].url, sizeof m[i].url, "%s", fs[i]->url);
    }
    ros_error err;
    ros_error_clear(&err);
    if (svc_client_set_members(c, m, n, &err) != 0)
        fail_msg("svc_client_set_members: %s", err.message);
}

/* Members: the dying instance d first, then fakes fs[0..n). */
static void members_with_dying(svc_client *c, dying *d, fake **fs, int n)
{
    svc_member m[8];
    memset(m, 0, sizeof m);
    snprintf(m[0].url, sizeof m[0].url, "%s", d->url);
    for (int i = 0; i < n; i++) {
        m[i + 1].idx = i + 1;
        snprintf(m[i + 1].url, sizeof m[i + 1].url, "%s", fs[i]->url);
    }
    ros_error err;
    ros_error_clear(&err);
    if (svc_client_set_members(c, m, n + 1, &err) != 0)
        fail_msg("svc_client_set_members: %s", err.message);
}

static void wait_connected(svc_client *c, int n)
{
    uint64_t until = now_ms() + 3000;
    while (svc_client_connected(c) < n) {
        if (now_ms() > until)
            fail_msg("only %d of %d members connected", svc_client_connected(c), n);
        svc_result res;
        if (svc_client_poll(c, 2, &res) < 0) /* applies a pushed membership */
            sleep_ms(2);
    }
}

/*
 * Column k of test data: n rows of type t, NULL every 4th row (from row
 * k % 4) unless nulls is false; values depend on k so that requests differ.
 */
static void make_column(ros_vector *v, ros_type t, uint32_t n, uint32_t k, bool nulls)
{
    ros_vector_init(v, t);
    for (uint32_t i = 0; i < n; i++) {
        int rc;
        if (t == ROS_TYPE_NULL || (nulls && (i + k) % 4 == 0)) {
            rc = ros_vector_append_null(v);
        } else {
            switch (t) {
            case ROS_TYPE_BOOL: rc = ros_vector_append_bool(v, (i + k) % 3 == 0); break;
            case ROS_TYPE_INT16: rc = ros_vector_append_i16(v, (int16_t)(i * 3 - 77 + k)); break;
            case ROS_TYPE_INT32: rc = ros_vector_append_i32(v, (int32_t)(i * 100003u + k)); break;
            case ROS_TYPE_INT64: rc = ros_vector_append_i64(v, (int64_t)i * -987654321ll + k); break;
            case ROS_TYPE_FLOAT32: rc = ros_vector_append_f32(v, (float)i * 0.25f + (float)k); break;
            case ROS_TYPE_FLOAT64: rc = ros_vector_append_f64(v, (double)i / 7.0 + k); break;
            case ROS_TYPE_TEXT: {
                char s[48];
                if (i % 5 == 1)
                    s[0] = '\0';
                else
                    snprintf(s, sizeof s, "r%u-k%u-%.*s", i, k, (int)(i % 13), "abcdefghijklm");
                rc = ros_vector_append_text(v, s);
                break;
            }
            case ROS_TYPE_BYTEA: {
                uint8_t b[4] = {(uint8_t)i, 0, (uint8_t)k, 0xff};
                rc = ros_vector_append_bytes(v, b, i % 5 < 4 ? i % 5 : 4);
                break;
            }
            case ROS_TYPE_FLOAT32_ARRAY: {
                float f[3] = {(float)i, (float)k, -1.5f};
                rc = ros_vector_append_bytes(v, f, (uint32_t)((i % 4) * sizeof(float)) % 16);
                break;
            }
            default: rc = -1;
            }
        }
        assert_int_equal(rc, 0);
    }
}

/* A one-column batch (cols malloc'd: svc_batch_free frees it). */
static void make_batch(ros_batch *b, ros_type t, uint32_t n, uint32_t k, bool nulls)
{
    b->ncols = 1;
    b->nrows = n;
    b->cols = calloc(1, sizeof *b->cols);
    assert_non_null(b->cols);
    make_column(&b->cols[0], t, n, k, nulls);
}

static void assert_vector_equal(const ros_vector *a, const ros_vector *b, uint32_t n)
{
    assert_int_equal(a->type, b->type);
    assert_true(a->len >= n);
    assert_true(b->len >= n);
    for (uint32_t i = 0; i < n; i++) {
        bool an = a->type == ROS_TYPE_NULL || ros_vector_is_null(a, i);
        bool bn = b->type == ROS_TYPE_NULL || ros_vector_is_null(b, i);
        if (an != bn)
            fail_msg("row %u: null %d vs %d", i, an, bn);
        if (an)
            continue;
        if (ros_type_is_varlen(a->type)) {
            uint32_t al, bl;
            const uint8_t *ap = ros_vector_bytes(a, i, &al);
            const uint8_t *bp = ros_vector_bytes(b, i, &bl);
            assert_int_equal(al, bl);
            if (al)
                assert_memory_equal(ap, bp, al);
        } else {
            size_t w = ros_type_width(a->type);
            assert_memory_equal((const uint8_t *)a->values + i * w,
                                (const uint8_t *)b->values + i * w, w);
        }
    }
}

/* Submits a one-column batch of type t (seq, tag = seq) and asserts 0. */
static void submit_ok(svc_client *c, uint64_t seq, ros_type t, uint32_t n, bool nulls)
{
    ros_batch b;
    make_batch(&b, t, n, (uint32_t)seq, nulls);
    ros_error err;
    ros_error_clear(&err);
    int rc = svc_client_submit(c, seq, "m", 0, &b, (void *)(uintptr_t)seq, &err);
    if (rc != 0)
        fail_msg("submit %llu: rc %d %s", (unsigned long long)seq, rc, err.message);
    assert_int_equal(b.ncols, 0); /* taken */
    assert_null(b.cols);
}

/* Waits for one result (up to 5 s) and checks it against the data of seq. */
static void expect_echo(svc_result *res, ros_type t, uint32_t n, bool nulls)
{
    if (!res->ok)
        fail_msg("seq %llu failed: %s %s", (unsigned long long)res->seq, res->error.code,
                 res->error.message);
    assert_ptr_equal(res->tag, (void *)(uintptr_t)res->seq);
    assert_int_equal(res->out.len, n);
    ros_vector want;
    make_column(&want, t, n, (uint32_t)res->seq, nulls);
    assert_vector_equal(&res->out, &want, n);
    ros_vector_free(&want);
}

static void poll_one(svc_client *c, svc_result *res)
{
    int rc = svc_client_poll(c, 5000, res);
    if (rc != 1)
        fail_msg("poll returned %d", rc);
}

/* ---------------------------------------------------------------- */
/* Round trips */

static void test_roundtrip_types(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_ECHO, "echo", 0);
    svc_client *c = client_open(4, 5000, 0, 0);
    members_of(c, &f, 1);
    assert_int_equal(svc_client_members(c), 1);
    wait_connected(c, 1);
    static const ros_type types[] = {ROS_TYPE_NULL,    ROS_TYPE_BOOL,  ROS_TYPE_INT16,
                                     ROS_TYPE_INT32,   ROS_TYPE_INT64, ROS_TYPE_FLOAT32,
                                     ROS_TYPE_FLOAT64, ROS_TYPE_TEXT,  ROS_TYPE_BYTEA,
                                     ROS_TYPE_FLOAT32_ARRAY};
    uint64_t before = wall_ms();
    for (uint32_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        for (int nulls = 0; nulls < 2; nulls++) {
            uint64_t seq = 100 + k * 2 + (uint64_t)nulls;
            submit_ok(c, seq, types[k], 37, nulls);
            svc_result res;
            poll_one(c, &res);
            assert_int_equal(res.seq, seq);
            assert_int_equal(res.retries, 0);
            expect_echo(&res, types[k], 37, nulls);
            svc_result_clear(&res);
        }
    }
    /* Zero rows. */
    submit_ok(c, 500, ROS_TYPE_INT64, 0, false);
    svc_result res;
    poll_one(c, &res);
    assert_true(res.ok);
    assert_int_equal(res.out.len, 0);
    assert_int_equal(res.out.type, ROS_TYPE_INT64);
    svc_result_clear(&res);
    assert_int_equal(svc_client_poll(c, 0, &res), -1); /* nothing outstanding */
    assert_int_equal(svc_client_outstanding(c), 0);

    /* What went over the wire: our id, method, one part, a deadline. */
    pthread_mutex_lock(&f->mu);
    assert_int_equal(f->nlog, 21);
    seen s = f->log[0];
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(s.id.job, JOB);
    assert_int_equal(s.id.op, OP);
    assert_int_equal(s.id.seq, 100);
    assert_int_equal(s.attempt, ATTEMPT);
    assert_int_equal(s.part_index, 0);
    assert_int_equal(s.part_count, 1);
    assert_string_equal(s.method, "m");
    assert_true(s.deadline_ms >= before + 5000 && s.deadline_ms <= wall_ms() + 5000);
    svc_client_close(c);
    fake_stop(f);
}

/* Requests of sizes going up and down, one at a time and several at once:
 * the client encodes requests into the messages of earlier answers when
 * they have room, so a message is reused for a smaller request, replaced
 * for a larger one, and every answer must still be exactly its request's. */
static void test_message_reuse(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_ECHO, "reuse", 0);
    svc_client *c = client_open(4, 5000, 0, 0);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    static const uint32_t sizes[] = {5, 3000, 7, 20000, 1, 3000, 0, 9000, 2, 20001};
    const size_t ns = sizeof sizes / sizeof sizes[0];
    uint64_t seq = 2000;
    for (size_t k = 0; k < ns; k++, seq++) {
        ros_type t = k % 2 ? ROS_TYPE_TEXT : ROS_TYPE_INT64;
        submit_ok(c, seq, t, sizes[k], k % 3 == 0);
        svc_result res;
        poll_one(c, &res);
        assert_int_equal(res.seq, seq);
        expect_echo(&res, t, sizes[k], k % 3 == 0);
        svc_result_clear(&res);
    }
    /* four at a time, sizes rotating */
    for (int round = 0; round < 5; round++) {
        uint64_t first = seq;
        for (int j = 0; j < 4; j++, seq++)
            submit_ok(c, seq, ROS_TYPE_FLOAT64, sizes[(round + j) % ns], j == 1);
        for (int j = 0; j < 4; j++) {
            svc_result res;
            poll_one(c, &res);
            uint64_t k = res.seq - first;
            assert_true(k < 4);
            expect_echo(&res, ROS_TYPE_FLOAT64, sizes[(round + k) % ns], k == 1);
            svc_result_clear(&res);
        }
    }
    svc_client_stats st;
    svc_client_get_stats(c, &st);
    /* the first part large enough went as a SHM envelope, which the fake
     * refused: it was sent again inline, as every part after it */
    assert_int_equal(atomic_load(&f->shm_refused), 1);
    assert_int_equal(st.parts_shm, 1);
    assert_int_equal(st.parts_sent, ns + 20 + 1);
    svc_client_close(c);
    fake_stop(f);
}

static void test_inflight_limit(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_SILENT, "silent", 0);
    svc_client *c = client_open(2, 5000, 0, 0);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    submit_ok(c, 1, ROS_TYPE_INT32, 5, false);
    submit_ok(c, 2, ROS_TYPE_INT32, 5, false);
    ros_batch b;
    make_batch(&b, ROS_TYPE_INT32, 5, 3, false);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_client_submit(c, 3, NULL, 0, &b, NULL, &err), 1);
    assert_false(err.set);
    assert_int_equal(b.nrows, 5); /* nothing taken */
    assert_non_null(b.cols);
    assert_int_equal(b.cols[0].len, 5);
    assert_int_equal(svc_client_outstanding(c), 2);
    /* Bad flags are refused, also nothing taken. */
    assert_int_equal(svc_client_submit(c, 3, NULL, 1u << 9, &b, NULL, &err), -1);
    assert_string_equal(err.code, ROS_ERR_INVALID_PARAMETER);
    assert_non_null(b.cols);
    svc_batch_free(&b);
    svc_result res;
    assert_int_equal(svc_client_poll(c, 30, &res), 0);
    /* both reached the instance */
    uint64_t until = now_ms() + 2000;
    while (fake_requests(f, -1) < 2 && now_ms() < until)
        sleep_ms(2);
    assert_int_equal(fake_requests(f, -1), 2);

    /* Closing with work outstanding cancels it on the instance. */
    uint64_t t0 = now_ms();
    svc_client_close(c);
    assert_true(now_ms() - t0 < 1000);
    pthread_mutex_lock(&f->mu);
    int cancels = 0;
    for (int i = 0; i < f->nlog; i++)
        if (f->log[i].kind == SVC_KIND_CANCEL) {
            cancels++;
            assert_int_equal(f->log[i].id.job, JOB);
            assert_int_equal(f->log[i].id.op, OP);
            assert_int_equal(f->log[i].attempt, ATTEMPT);
        }
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(cancels, 1);
    fake_stop(f);
}

/* ---------------------------------------------------------------- */
/* Routing */

static void test_load_aware_routing(void **state)
{
    (void)state;
    fake *fast = fake_start(FAKE_ECHO, "fast", 0);
    fake *slow = fake_start(FAKE_DELAY, "slow", 30);
    fake *fs[2] = {slow, fast};
    svc_client *c = client_open(8, 10000, 0, 0);
    members_of(c, fs, 2);
    wait_connected(c, 2);
    const int total = 80;
    int submitted = 0, done = 0;
    while (done < total) {
        while (submitted < total) {
            ros_batch b;
            make_batch(&b, ROS_TYPE_INT64, 16, (uint32_t)submitted, true);
            ros_error err;
            ros_error_clear(&err);
            int rc = svc_client_submit(c, (uint64_t)submitted, NULL, 0, &b,
                                       (void *)(uintptr_t)submitted, &err);
            if (rc == 1) {
                svc_batch_free(&b);
                break;
            }
            assert_int_equal(rc, 0);
            submitted++;
        }
        svc_result res;
        poll_one(c, &res);
        expect_echo(&res, ROS_TYPE_INT64, 16, true);
        svc_result_clear(&res);
        done++;
    }
    int nf = fake_requests(fast, -1), ns = fake_requests(slow, -1);
    print_message("fast instance: %d requests, slow: %d\n", nf, ns);
    assert_int_equal(nf + ns, total);
    assert_true(ns >= 1);
    assert_true(nf >= 4 * ns);
    svc_client_close(c);
    fake_stop(fast);
    fake_stop(slow);
}

/* Submits n rows preferring instance prefer (tag = seq) and asserts 0. */
static void submit_prefer_ok(svc_client *c, uint64_t seq, int prefer, uint32_t n)
{
    ros_batch b;
    make_batch(&b, ROS_TYPE_INT32, n, (uint32_t)seq, false);
    ros_error err;
    ros_error_clear(&err);
    int rc = svc_client_submit_prefer(c, seq, "m", 0, &b, (void *)(uintptr_t)seq, prefer, &err);
    if (rc != 0)
        fail_msg("submit_prefer %llu: rc %d %s", (unsigned long long)seq, rc, err.message);
    assert_null(b.cols); /* taken */
}

/* Polls one result of submit_prefer_ok and returns the instance that
 * answered it (after checking the echo). */
static int poll_member(svc_client *c, uint64_t *seq)
{
    svc_result res;
    poll_one(c, &res);
    expect_echo(&res, ROS_TYPE_INT32, 8, false);
    int m = res.member;
    if (seq)
        *seq = res.seq;
    svc_result_clear(&res);
    return m;
}

static void test_prefer_routing(void **state)
{
    (void)state;
    fake *a = fake_start(FAKE_ECHO, "pa", 0);
    fake *b = fake_start(FAKE_ECHO, "pb", 0);
    fake *d = fake_start(FAKE_ECHO, "pd", 0);
    /* instance numbers, not positions */
    svc_member ms[3];
    memset(ms, 0, sizeof ms);
    fake *fs[3] = {a, b, d};
    for (int i = 0; i < 3; i++) {
        ms[i].idx = 10 * (i + 1);
        snprintf(ms[i].url, sizeof ms[i].url, "%s", fs[i]->url);
    }
    ros_error err;
    ros_error_clear(&err);

    /* A client just opened (a restored job's): nothing is connected yet,
     * and the preferred member is waited for while others come up. */
    svc_client *c = client_open(16, 5000, 1, 0);
    assert_int_equal(svc_client_set_members(c, ms, 3, &err), 0);
    for (uint64_t seq = 1; seq <= 3; seq++)
        submit_prefer_ok(c, seq, 30, 8);
    for (int i = 0; i < 3; i++)
        assert_int_equal(poll_member(c, NULL), 30);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(fake_requests(d, (int64_t)seq), 1);
        assert_int_equal(fake_requests(a, (int64_t)seq) + fake_requests(b, (int64_t)seq), 0);
    }

    /* Connected: the preference beats the load (a burst of eight all goes
     * to 20), and svc_client_member_of says where each request went. */
    wait_connected(c, 3);
    for (uint64_t seq = 10; seq < 18; seq++) {
        submit_prefer_ok(c, seq, 20, 8);
        assert_int_equal(svc_client_member_of(c, seq), 20);
    }
    assert_int_equal(svc_client_member_of(c, 999), -1);
    for (int i = 0; i < 8; i++) {
        uint64_t seq;
        assert_int_equal(poll_member(c, &seq), 20);
        assert_int_equal(svc_client_member_of(c, seq), -1); /* returned: no longer known */
        assert_int_equal(fake_requests(b, (int64_t)seq), 1);
    }
    assert_int_equal(fake_requests(a, -1) + fake_requests(d, -1), 3);
    /* the same burst without a preference is spread */
    for (uint64_t seq = 20; seq < 28; seq++)
        submit_ok(c, seq, ROS_TYPE_INT32, 8, false);
    for (int i = 0; i < 8; i++)
        assert_int_not_equal(poll_member(c, NULL), -1);
    assert_true(fake_requests(a, -1) + fake_requests(d, -1) > 3);

    /* A number not in the membership: routed as usual, at once. */
    uint64_t t0 = now_ms();
    submit_prefer_ok(c, 30, 99, 8);
    int m = poll_member(c, NULL);
    assert_true(m == 10 || m == 20 || m == 30);
    assert_true(now_ms() - t0 < 450);
    svc_client_close(c);

    /* A member that never connects: waited for 500 ms after it was added,
     * then the request goes elsewhere; later ones at once. */
    svc_member two[2];
    memset(two, 0, sizeof two);
    two[0].idx = 5;
    make_url(two[0].url, sizeof two[0].url, "pnowhere");
    two[1].idx = 6;
    snprintf(two[1].url, sizeof two[1].url, "%s", a->url);
    c = client_open(16, 5000, 1, 0);
    t0 = now_ms();
    assert_int_equal(svc_client_set_members(c, two, 2, &err), 0);
    submit_prefer_ok(c, 40, 5, 8);
    assert_int_equal(poll_member(c, NULL), 6);
    assert_true(now_ms() - t0 >= 500);
    assert_int_equal(fake_requests(a, 40), 1);
    t0 = now_ms();
    submit_prefer_ok(c, 41, 5, 8);
    assert_int_equal(poll_member(c, NULL), 6);
    assert_true(now_ms() - t0 < 450);
    svc_client_close(c);

    /* The preferred instance dies holding the request: the re-send is
     * routed as usual.  Its connection lost, later requests preferring it
     * go elsewhere at once. */
    dying *dd = dying_start("pdie");
    c = client_open(16, 5000, 1, 0);
    members_with_dying(c, dd, &b, 1); /* the dying one is instance 0, b instance 1 */
    wait_connected(c, 2);
    submit_prefer_ok(c, 50, 0, 8);
    svc_result res;
    poll_one(c, &res);
    expect_echo(&res, ROS_TYPE_INT32, 8, false);
    assert_int_equal(res.retries, 1);
    assert_int_equal(res.member, 1);
    svc_result_clear(&res);
    assert_int_equal(dying_seq(dd), 50);
    assert_int_equal(fake_requests(b, 50), 1);
    t0 = now_ms();
    submit_prefer_ok(c, 51, 0, 8);
    assert_int_equal(poll_member(c, NULL), 1);
    assert_true(now_ms() - t0 < 450);
    svc_client_close(c);
    dying_stop(dd);

    fake_stop(a);
    fake_stop(b);
    fake_stop(d);
}

/* ---------------------------------------------------------------- */
/* Failures and retries */

static void test_retry_same_seq(void **state)
{
    (void)state;
    dying *d = dying_start("die");
    fake *echo = fake_start(FAKE_ECHO, "echo", 0);
    svc_client *c = client_open(8, 5000, 2, 0);
    members_with_dying(c, d, &echo, 1);
    wait_connected(c, 2);
    for (uint64_t seq = 10; seq < 14; seq++)
        submit_ok(c, seq, ROS_TYPE_TEXT, 9, true);
    for (int i = 0; i < 4; i++) {
        svc_result res;
        poll_one(c, &res);
        expect_echo(&res, ROS_TYPE_TEXT, 9, true);
        /* The first request went to the first member (round robin from 0),
         * which died holding it: re-sent once, under the same id. */
        if (res.seq == 10)
            assert_int_equal(res.retries, 1);
        assert_int_equal(fake_requests(echo, (int64_t)res.seq), 1);
        svc_result_clear(&res);
    }
    assert_int_equal(dying_seq(d), 10); /* job and op checked too */
    pthread_mutex_lock(&echo->mu);
    for (int i = 0; i < echo->nlog; i++) {
        assert_int_equal(echo->log[i].id.job, JOB);
        assert_int_equal(echo->log[i].id.op, OP);
    }
    pthread_mutex_unlock(&echo->mu);
    assert_int_equal(svc_client_connected(c), 1);
    svc_client_close(c);
    dying_stop(d);

    /* With no retries allowed the instance's death is the request's error. */
    d = dying_start("die2");
    c = client_open(4, 5000, 0, 0);
    members_with_dying(c, d, NULL, 0);
    wait_connected(c, 1);
    submit_ok(c, 1, ROS_TYPE_INT32, 3, false);
    svc_result res;
    poll_one(c, &res);
    assert_false(res.ok);
    assert_string_equal(res.error.code, ROS_ERR_CONNECTION);
    assert_non_null(strstr(res.error.message, "service \"svc\": instance"));
    assert_int_equal(res.error_row, -1);
    assert_int_equal(res.retries, 0);
    svc_result_clear(&res);
    assert_int_equal(dying_seq(d), 1);
    svc_client_close(c);
    dying_stop(d);
    fake_stop(echo);
}

/*
 * A member whose connection closes after routing picked it but before the
 * part was sent: the part goes to another member at once, without using a
 * retry.  (The CI failure this reproduces: the part was sent on the dead
 * member's socket, where nng held it for a reconnect until the request
 * timed out, because the pipe event naming the member's flights had
 * already run.)
 */
static struct {
    svc_client *c;
    fake *victim;   /* closed by the hook the first time a part goes to it */
    int fired;
} routed_hook;

static void close_victim_on_route(svc_client *c, const char *url)
{
    if (routed_hook.c != c || !routed_hook.victim || strcmp(url, routed_hook.victim->url) != 0)
        return;
    fake_stop(routed_hook.victim);
    routed_hook.victim = NULL;
    routed_hook.fired++;
    uint64_t until = now_ms() + 3000; /* until the client saw the pipe go */
    while (svc_client_connected(c) > 1 && now_ms() < until)
        sleep_ms(1);
}

static void test_lost_after_routing(void **state)
{
    (void)state;
    fake *gone = fake_start(FAKE_SILENT, "gone", 0);
    fake *echo = fake_start(FAKE_ECHO, "echo-r", 0);
    svc_client *c = client_open(8, 2000, 0, 0); /* no retries: a failure shows */
    fake *fs[2] = {gone, echo};
    members_of(c, fs, 2);
    wait_connected(c, 2);
    routed_hook.c = c;
    routed_hook.victim = gone;
    routed_hook.fired = 0;
    svc_client_test_routed = close_victim_on_route;
    for (uint64_t seq = 1; seq <= 2; seq++)
        submit_ok(c, seq, ROS_TYPE_INT64, 5, true);
    for (int i = 0; i < 2; i++) {
        svc_result res;
        poll_one(c, &res);
        expect_echo(&res, ROS_TYPE_INT64, 5, true);
        assert_int_equal(res.retries, 0);
        assert_int_equal(fake_requests(echo, (int64_t)res.seq), 1);
        svc_result_clear(&res);
    }
    svc_client_test_routed = NULL;
    assert_int_equal(routed_hook.fired, 1); /* a part was routed to it */
    assert_int_equal(svc_client_connected(c), 1);
    svc_client_close(c);
    fake_stop(echo);
}

static void test_busy_backoff(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_BUSY, "busy", 3);
    svc_client *c = client_open(4, 5000, 0, 0); /* BUSY does not use up retries */
    members_of(c, &f, 1);
    wait_connected(c, 1);
    uint64_t t0 = now_ms();
    submit_ok(c, 77, ROS_TYPE_FLOAT64, 20, true);
    svc_result res;
    poll_one(c, &res);
    uint64_t spent = now_ms() - t0;
    expect_echo(&res, ROS_TYPE_FLOAT64, 20, true);
    assert_int_equal(res.retries, 3);
    assert_true(spent >= 3 * 20); /* retry_after_ms honoured */
    assert_int_equal(fake_requests(f, 77), 4);
    assert_int_equal(fake_requests(f, -1), 4);
    svc_client_stats st;
    svc_client_get_stats(c, &st);
    assert_int_equal(st.busy, 3);
    assert_int_equal(st.parts_sent, 4);
    svc_result_clear(&res);
    svc_client_close(c);
    fake_stop(f);
}

static void test_error_passthrough(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_ERROR, "error", -1);
    svc_client *c = client_open(4, 5000, 3, 0);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    submit_ok(c, 5, ROS_TYPE_INT64, 10, false);
    svc_result res;
    poll_one(c, &res);
    assert_false(res.ok);
    assert_int_equal(res.seq, 5);
    assert_string_equal(res.error.code, ROS_ERR_DIVISION_BY_ZERO);
    assert_string_equal(res.error.message, "service \"svc\": division by zero");
    assert_string_equal(res.error.detail, "Row 3 had b = 0.");
    assert_int_equal(res.error_row, 3);
    assert_int_equal(res.retries, 0); /* a handler error is not retried */
    assert_int_equal(fake_requests(f, 5), 1);
    svc_result_clear(&res);
    svc_client_close(c);

    /* Split: part 1 (rows 4..7) fails at its row 3, request row 7.  A frame
     * of 4 int64 rows without NULLs (so without a validity bitmap) with
     * method "m" is 64 + 8 + 8 + 8 + 32 = 120 bytes, of 5 rows 128.  The
     * ERROR frame is larger than that: replies are decoded with a larger
     * limit. */
    fake_stop(f);
    f = fake_start(FAKE_ERROR, "error1", 1);
    c = client_open(4, 5000, 3, 120);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    submit_ok(c, 6, ROS_TYPE_INT64, 10, false);
    poll_one(c, &res);
    assert_false(res.ok);
    assert_string_equal(res.error.code, ROS_ERR_DIVISION_BY_ZERO);
    assert_int_equal(res.error_row, 7);
    svc_result_clear(&res);
    svc_client_close(c);
    fake_stop(f);
}

static void test_timeouts(void **state)
{
    (void)state;
    /* No member at all: 57P03 once the timeout is up. */
    svc_client *c = client_open(4, 150, 0, 0);
    uint64_t t0 = now_ms();
    submit_ok(c, 1, ROS_TYPE_INT32, 4, false);
    svc_result res;
    assert_int_equal(svc_client_poll(c, -1, &res), 1);
    uint64_t spent = now_ms() - t0;
    assert_false(res.ok);
    assert_string_equal(res.error.code, ROS_ERR_CANNOT_CONNECT_NOW);
    assert_string_equal(res.error.message, "service \"svc\" has no ready instance");
    assert_true(spent >= 145 && spent < 150 + 300);
    svc_result_clear(&res);
    svc_client_close(c);

    /* A member that never comes up (nothing listens) is no ready instance. */
    c = client_open(4, 150, 0, 0);
    svc_member m = {.idx = 0};
    make_url(m.url, sizeof m.url, "nobody");
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_client_set_members(c, &m, 1, &err), 0);
    submit_ok(c, 1, ROS_TYPE_INT32, 4, false);
    assert_int_equal(svc_client_poll(c, -1, &res), 1);
    assert_string_equal(res.error.code, ROS_ERR_CANNOT_CONNECT_NOW);
    svc_result_clear(&res);
    /* An invalid address is refused and changes nothing. */
    svc_member bad = {.idx = 1};
    snprintf(bad.url, sizeof bad.url, "nosuchscheme://x");
    assert_int_equal(svc_client_set_members(c, &bad, 1, &err), -1);
    assert_true(err.set);
    assert_int_equal(svc_client_members(c), 1);
    svc_client_close(c);

    /* A silent instance: 57014 within the timeout plus a margin. */
    fake *f = fake_start(FAKE_SILENT, "silent", 0);
    c = client_open(4, 200, 5, 0);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    t0 = now_ms();
    submit_ok(c, 2, ROS_TYPE_INT32, 4, false);
    submit_ok(c, 3, ROS_TYPE_INT32, 4, false);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(svc_client_poll(c, -1, &res), 1);
        spent = now_ms() - t0;
        assert_false(res.ok);
        assert_string_equal(res.error.code, ROS_ERR_CANCELED);
        assert_string_equal(res.error.message, "service \"svc\" did not answer within 200 ms");
        assert_true(spent >= 195 && spent < 200 + 300);
        svc_result_clear(&res);
    }
    assert_int_equal(svc_client_poll(c, 0, &res), -1);
    svc_client_close(c);
    fake_stop(f);
}

/* ---------------------------------------------------------------- */
/* Splitting */

static void test_split_reassemble(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_ECHO, "echo", 0);
    svc_client *c = client_open(8, 5000, 0, 2048);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    static const ros_type types[] = {ROS_TYPE_TEXT, ROS_TYPE_BOOL, ROS_TYPE_INT64,
                                     ROS_TYPE_FLOAT32_ARRAY, ROS_TYPE_NULL, ROS_TYPE_INT16};
    const uint32_t n = 20001;
    static bool got[SEEN_MAX];
    for (uint32_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        uint64_t seq = 1000 + k;
        submit_ok(c, seq, types[k], n, true);
        svc_result res;
        poll_one(c, &res);
        assert_int_equal(res.seq, seq);
        expect_echo(&res, types[k], n, true);
        svc_result_clear(&res);
        /* Several parts went out, each once, covering every row. */
        memset(got, 0, sizeof got);
        pthread_mutex_lock(&f->mu);
        uint32_t parts = 0, rows = 0, count = 0;
        for (int i = 0; i < f->nlog; i++) {
            const seen *s = &f->log[i];
            if (s->id.seq != seq)
                continue;
            parts++;
            rows += s->nrows;
            count = s->part_count;
            assert_true(s->part_index < SEEN_MAX);
            assert_false(got[s->part_index]);
            got[s->part_index] = true;
        }
        pthread_mutex_unlock(&f->mu);
        assert_true(parts > 1);
        assert_int_equal(parts, count);
        assert_int_equal(rows, n);
        for (uint32_t i = 0; i < parts; i++)
            assert_true(got[i]);
    }
    /* A single row over the limit is refused at submit, nothing taken. */
    ros_batch b;
    b.ncols = 1;
    b.nrows = 1;
    b.cols = calloc(1, sizeof *b.cols);
    ros_vector_init(&b.cols[0], ROS_TYPE_BYTEA);
    static uint8_t big[4096];
    assert_int_equal(ros_vector_append_bytes(&b.cols[0], big, sizeof big), 0);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_client_submit(c, 9, NULL, 0, &b, NULL, &err), -1);
    assert_string_equal(err.code, SVC_ERR_PROGRAM_LIMIT);
    assert_int_equal(b.nrows, 1);
    svc_batch_free(&b);
    svc_client_close(c);
    fake_stop(f);
}

/* Row i of a equals row j of b. */
static bool same_row(const ros_vector *a, uint32_t i, const ros_vector *b, uint32_t j)
{
    bool an = a->type == ROS_TYPE_NULL || ros_vector_is_null(a, i);
    bool bn = b->type == ROS_TYPE_NULL || ros_vector_is_null(b, j);
    if (an || bn)
        return an == bn;
    if (ros_type_is_varlen(a->type)) {
        uint32_t al, bl;
        const uint8_t *ap = ros_vector_bytes(a, i, &al);
        const uint8_t *bp = ros_vector_bytes(b, j, &bl);
        return al == bl && (al == 0 || memcmp(ap, bp, al) == 0);
    }
    size_t w = ros_type_width(a->type);
    return memcmp((const uint8_t *)a->values + i * w, (const uint8_t *)b->values + j * w, w) == 0;
}

/* svc_client_submit_rows: a range of a batch the client borrows (never
 * frees or writes), split into parts when it does not fit, re-sent from the
 * same rows; the answer and error_row count from the range's first row. */
static void test_submit_rows(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_ECHO, "rows", 0);
    svc_client *c = client_open(8, 5000, 0, 2048);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    static const ros_type types[] = {ROS_TYPE_INT64, ROS_TYPE_TEXT, ROS_TYPE_BOOL, ROS_TYPE_NULL};
    static const uint32_t ranges[][2] = {{0, 3000}, {1, 2999}, {1000, 1001}, {2999, 3000}, {17, 17}};
    for (uint32_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        ros_batch b;
        make_batch(&b, types[k], 3000, k, true);
        ros_batch keep = b;
        ros_vector col = b.cols[0];
        for (uint32_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            uint32_t first = ranges[r][0], last = ranges[r][1];
            uint64_t seq = 2000 + k * 10 + r;
            ros_error err;
            ros_error_clear(&err);
            assert_int_equal(svc_client_submit_rows(c, seq, "m", 0, &b, first, last, &b, -1, &err), 0);
            /* borrowed: the caller's batch is as it was */
            assert_memory_equal(&b, &keep, sizeof b);
            assert_memory_equal(&b.cols[0], &col, sizeof col);
            svc_result res;
            poll_one(c, &res);
            if (!res.ok)
                fail_msg("seq %llu failed: %s", (unsigned long long)seq, res.error.message);
            assert_int_equal(res.seq, seq);
            assert_ptr_equal(res.tag, &b);
            assert_int_equal(res.out.len, last - first);
            for (uint32_t i = 0; i < last - first; i++)
                if (!same_row(&res.out, i, &b.cols[0], first + i))
                    fail_msg("type %d range %u..%u: row %u differs", (int)types[k], first, last, i);
            svc_result_clear(&res);
        }
        svc_batch_free(&b);
    }
    /* out of the batch, or a row over the limit: refused, nothing kept */
    ros_batch b;
    make_batch(&b, ROS_TYPE_INT64, 10, 1, false);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_client_submit_rows(c, 1, NULL, 0, &b, 5, 11, NULL, -1, &err), -1);
    assert_int_equal(svc_client_outstanding(c), 0);
    svc_batch_free(&b);
    svc_client_close(c);
    fake_stop(f);

    /* error_row counts from the range: part 1 (its rows 4..7) fails at its
     * row 3 (see test_error_passthrough for the sizes) */
    f = fake_start(FAKE_ERROR, "rows-error", 1);
    c = client_open(4, 5000, 3, 120);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    make_batch(&b, ROS_TYPE_INT64, 50, 1, false);
    ros_error_clear(&err);
    assert_int_equal(svc_client_submit_rows(c, 7, "m", 0, &b, 20, 30, NULL, -1, &err), 0);
    svc_result res;
    poll_one(c, &res);
    assert_false(res.ok);
    assert_string_equal(res.error.code, ROS_ERR_DIVISION_BY_ZERO);
    assert_int_equal(res.error_row, 7);
    svc_result_clear(&res);
    svc_client_close(c);
    svc_batch_free(&b);
    fake_stop(f);
}

/* svc_result.reused: set when every part's answer carried SVC_FLAG_REUSED,
 * false for answers without it (older workers) and for failures. */
static void test_reused_flag(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_ECHO, "reuse", 0);
    svc_client *c = client_open(4, 5000, 0, 2048);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    svc_result res;
    /* one part: none, then flagged */
    submit_ok(c, 1, ROS_TYPE_INT64, 10, false);
    poll_one(c, &res);
    expect_echo(&res, ROS_TYPE_INT64, 10, false);
    assert_false(res.reused);
    svc_result_clear(&res);
    atomic_store(&f->reused_parts, 1);
    submit_ok(c, 2, ROS_TYPE_INT64, 10, false);
    poll_one(c, &res);
    expect_echo(&res, ROS_TYPE_INT64, 10, false);
    assert_true(res.reused);
    svc_result_clear(&res);
    /* 2000 bigints in frames of 2 KiB: several parts */
    atomic_store(&f->reused_parts, ~(uint64_t)0);
    submit_ok(c, 3, ROS_TYPE_INT64, 2000, true);
    poll_one(c, &res);
    expect_echo(&res, ROS_TYPE_INT64, 2000, true);
    assert_true(res.reused);
    svc_result_clear(&res);
    assert_true(fake_requests(f, 3) > 2);
    /* every part but part 1 reused: the request is not */
    atomic_store(&f->reused_parts, ~(uint64_t)2);
    submit_ok(c, 4, ROS_TYPE_INT64, 2000, true);
    poll_one(c, &res);
    expect_echo(&res, ROS_TYPE_INT64, 2000, true);
    assert_false(res.reused);
    svc_result_clear(&res);
    /* only the last part not reused */
    int parts = fake_requests(f, 4);
    atomic_store(&f->reused_parts, ~((uint64_t)1 << (parts - 1)));
    submit_ok(c, 5, ROS_TYPE_INT64, 2000, true);
    poll_one(c, &res);
    expect_echo(&res, ROS_TYPE_INT64, 2000, true);
    assert_false(res.reused);
    svc_result_clear(&res);
    svc_client_close(c);
    fake_stop(f);

    /* an ERROR is never reused */
    f = fake_start(FAKE_ERROR, "reuse-err", -1);
    atomic_store(&f->reused_parts, ~(uint64_t)0);
    c = client_open(4, 5000, 0, 0);
    members_of(c, &f, 1);
    wait_connected(c, 1);
    submit_ok(c, 6, ROS_TYPE_INT64, 10, false);
    poll_one(c, &res);
    assert_false(res.ok);
    assert_false(res.reused);
    svc_result_clear(&res);
    svc_client_close(c);
    fake_stop(f);
}

/* ---------------------------------------------------------------- */
/* Membership */

static void test_membership_replaced(void **state)
{
    (void)state;
    fake *old = fake_start(FAKE_SILENT, "old", 0);
    fake *neu = fake_start(FAKE_ECHO, "new", 0);
    svc_client *c = client_open(8, 5000, 0, 0); /* a move uses no retry */
    members_of(c, &old, 1);
    wait_connected(c, 1);
    for (uint64_t seq = 1; seq <= 3; seq++)
        submit_ok(c, seq, ROS_TYPE_BYTEA, 11, true);
    uint64_t until = now_ms() + 3000;
    svc_result res;
    while (fake_requests(old, -1) < 3 && now_ms() < until)
        assert_int_equal(svc_client_poll(c, 5, &res), 0);
    assert_int_equal(fake_requests(old, -1), 3);
    members_of(c, &neu, 1);
    assert_int_equal(svc_client_members(c), 1);
    for (int i = 0; i < 3; i++) {
        poll_one(c, &res);
        expect_echo(&res, ROS_TYPE_BYTEA, 11, true);
        assert_int_equal(res.retries, 1);
        assert_int_equal(fake_requests(neu, (int64_t)res.seq), 1);
        svc_result_clear(&res);
    }
    /* Same membership again: the connection is kept. */
    members_of(c, &neu, 1);
    assert_int_equal(svc_client_connected(c), 1);
    svc_client_close(c);
    fake_stop(old);
    fake_stop(neu);
}

/* A fake coordinator: a PUB socket and a REP control socket whose thread
 * answers "members NAME" with the line in `answer`. */
typedef struct fake_coord {
    char pub_url[256], ctl_url[256];
    nng_socket pub, ctl;
    pthread_t thr;
    atomic_bool stop;
    atomic_int shm_refused; /* SHM envelopes answered "cannot map" */
    char answer[1024];
    atomic_int asked;
} fake_coord;

static void *coord_main(void *arg)
{
    fake_coord *fc = arg;
    while (!atomic_load(&fc->stop)) {
        char *buf = NULL;
        size_t len = 0;
        int rv = nng_recv(fc->ctl, &buf, &len, NNG_FLAG_ALLOC);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        bool ok = len == strlen("members " SERVICE) + 1 &&
                  memcmp(buf, "members " SERVICE, len) == 0;
        nng_free(buf, len);
        atomic_fetch_add(&fc->asked, 1);
        const char *reply = ok ? fc->answer : "error bad request";
        nng_send(fc->ctl, (void *)reply, strlen(reply) + 1, 0);
    }
    return NULL;
}

static void coord_push(fake_coord *fc, const char *line)
{
    nng_send(fc->pub, (void *)line, strlen(line) + 1, 0);
}

/* Pushes line every 10 ms until cond(c) holds (3 s at most). */
static void push_until(fake_coord *fc, svc_client *c, const char *line,
                       bool (*cond)(svc_client *, uint64_t), uint64_t arg)
{
    uint64_t until = now_ms() + 3000;
    while (!cond(c, arg)) {
        if (now_ms() > until)
            fail_msg("push \"%s\" was not seen", line);
        coord_push(fc, line);
        sleep_ms(10);
    }
}

static bool version_is(svc_client *c, uint64_t v)
{
    svc_client_stats st;
    svc_client_get_stats(c, &st);
    return st.version == v;
}

static bool stale_seen(svc_client *c, uint64_t n)
{
    svc_client_stats st;
    svc_client_get_stats(c, &st);
    return st.stale_messages >= n;
}

static bool bad_seen(svc_client *c, uint64_t n)
{
    svc_client_stats st;
    svc_client_get_stats(c, &st);
    return st.bad_messages >= n;
}

/* Submits one request (preferring instance prefer, -1 none) and returns
 * which of a, b answered it (0 or 1). */
static int served_by_prefer(svc_client *c, uint64_t seq, int prefer, fake *a, fake *b)
{
    ros_batch bt;
    make_batch(&bt, ROS_TYPE_INT32, 6, (uint32_t)seq, false);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_client_submit_prefer(c, seq, "m", 0, &bt, (void *)(uintptr_t)seq, prefer, &err), 0);
    svc_result res;
    poll_one(c, &res);
    expect_echo(&res, ROS_TYPE_INT32, 6, false);
    svc_result_clear(&res);
    int na = fake_requests(a, (int64_t)seq), nb = fake_requests(b, (int64_t)seq);
    assert_int_equal(na + nb, 1);
    return nb;
}

static int served_by(svc_client *c, uint64_t seq, fake *a, fake *b)
{
    return served_by_prefer(c, seq, -1, a, b);
}

static void test_subscribe(void **state)
{
    (void)state;
    fake *a = fake_start(FAKE_ECHO, "a", 0);
    fake *b = fake_start(FAKE_ECHO, "b", 0);
    fake_coord *fc = calloc(1, sizeof *fc);
    assert_non_null(fc);
    make_url(fc->pub_url, sizeof fc->pub_url, "coord.pub");
    make_url(fc->ctl_url, sizeof fc->ctl_url, "coord.ctl");
    snprintf(fc->answer, sizeof fc->answer, "members " SERVICE " 2 %s", a->url);
    assert_int_equal(nng_pub0_open(&fc->pub), 0);
    assert_int_equal(nng_listen(fc->pub, fc->pub_url, NULL, 0), 0);
    assert_int_equal(nng_rep0_open(&fc->ctl), 0);
    assert_int_equal(nng_socket_set_ms(fc->ctl, NNG_OPT_RECVTIMEO, 20), 0);
    assert_int_equal(nng_listen(fc->ctl, fc->ctl_url, NULL, 0), 0);
    assert_int_equal(pthread_create(&fc->thr, NULL, coord_main, fc), 0);

    svc_client *c = client_open(4, 5000, 0, 0);
    ros_error err;
    ros_error_clear(&err);
    if (svc_client_subscribe(c, fc->pub_url, fc->ctl_url, &err) != 0)
        fail_msg("subscribe: %s", err.message);
    assert_int_equal(atomic_load(&fc->asked), 1);
    assert_int_equal(svc_client_members(c), 1);
    assert_true(version_is(c, 2));
    assert_int_equal(svc_client_subscribe(c, fc->pub_url, fc->ctl_url, &err), -1);
    assert_int_equal(served_by(c, 1, a, b), 0);

    /* A newer push replaces the membership. */
    char line[1024];
    snprintf(line, sizeof line, "members " SERVICE " 5 %s", b->url);
    push_until(fc, c, line, version_is, 5);
    assert_int_equal(served_by(c, 2, a, b), 1);
    assert_int_equal(svc_client_members(c), 1);

    /* A stale one (version 4 after 5) is ignored. */
    snprintf(line, sizeof line, "members " SERVICE " 4 %s", a->url);
    push_until(fc, c, line, stale_seen, 1);
    assert_true(version_is(c, 5));
    assert_int_equal(served_by(c, 3, a, b), 1);
    assert_int_equal(served_by(c, 4, a, b), 1);

    /* Malformed ones are counted and ignored; another service's are not
     * even received (subscription prefix). */
    coord_push(fc, "members other 9 ipc:///nowhere");
    snprintf(line, sizeof line, "members " SERVICE " 9x %s", a->url);
    push_until(fc, c, line, bad_seen, 1);
    snprintf(line, sizeof line, "members " SERVICE " 9  %s", a->url); /* two spaces */
    push_until(fc, c, line, bad_seen, 2);
    snprintf(line, sizeof line, "members " SERVICE " 99999999999999999999 %s", a->url);
    push_until(fc, c, line, bad_seen, 3);
    assert_true(version_is(c, 5));
    assert_int_equal(served_by(c, 5, a, b), 1);

    /* Two members, then none. */
    snprintf(line, sizeof line, "members " SERVICE " 6 %s %s", a->url, b->url);
    push_until(fc, c, line, version_is, 6);
    assert_int_equal(svc_client_members(c), 2);
    wait_connected(c, 2);
    /* bare URLs are numbered by position */
    assert_int_equal(served_by_prefer(c, 6, 1, a, b), 1);
    assert_int_equal(served_by_prefer(c, 7, 0, a, b), 0);

    /* N=URL: the instance number, whatever the position */
    snprintf(line, sizeof line, "members " SERVICE " 7 4=%s 9=%s", b->url, a->url);
    push_until(fc, c, line, version_is, 7);
    assert_int_equal(svc_client_members(c), 2);
    wait_connected(c, 2);
    assert_int_equal(served_by_prefer(c, 8, 9, a, b), 0);
    assert_int_equal(served_by_prefer(c, 9, 4, a, b), 1);
    assert_int_equal(served_by_prefer(c, 10, 9, a, b), 0);
    /* N~URL: standby (withdrawn by a scale-in): not counted, routed nothing
     * but the requests that prefer it; back to N=URL it takes traffic */
    snprintf(line, sizeof line, "members " SERVICE " 11 4=%s 9~%s", b->url, a->url);
    push_until(fc, c, line, version_is, 11);
    assert_int_equal(svc_client_members(c), 1);
    for (uint64_t seq = 100; seq < 108; seq++)
        assert_int_equal(served_by(c, seq, a, b), 1);
    assert_int_equal(served_by_prefer(c, 108, 9, a, b), 0);
    snprintf(line, sizeof line, "members " SERVICE " 12 4=%s 9=%s", b->url, a->url);
    push_until(fc, c, line, version_is, 12);
    assert_int_equal(svc_client_members(c), 2);
    int to_a = 0;
    for (uint64_t seq = 110; seq < 118; seq++)
        to_a += served_by(c, seq, a, b) == 0;
    assert_true(to_a > 0);
    snprintf(line, sizeof line, "members " SERVICE " 13 4=%s", b->url);
    push_until(fc, c, line, version_is, 13);
    snprintf(line, sizeof line, "members " SERVICE " 14 4=%s 9~%s", b->url, a->url);
    push_until(fc, c, line, version_is, 14);
    wait_connected(c, 1);
    assert_int_equal(served_by_prefer(c, 120, 9, a, b), 0); /* a standby member joining */
    /* malformed numbers: no '=', no URL, too large */
    snprintf(line, sizeof line, "members " SERVICE " 15 4%s", b->url);
    push_until(fc, c, line, bad_seen, 4);
    push_until(fc, c, "members " SERVICE " 15 4=", bad_seen, 5);
    snprintf(line, sizeof line, "members " SERVICE " 15 1000000000=%s", b->url);
    push_until(fc, c, line, bad_seen, 6);
    assert_true(version_is(c, 14));

    push_until(fc, c, "members " SERVICE " 15", version_is, 15);
    assert_int_equal(svc_client_members(c), 0);
    svc_client_close(c);

    /* A coordinator nobody runs: subscribe fails within about 2 s. */
    c = client_open(4, 5000, 0, 0);
    char nowhere[256];
    make_url(nowhere, sizeof nowhere, "nocoord");
    uint64_t t0 = now_ms();
    ros_error_clear(&err);
    assert_int_equal(svc_client_subscribe(c, fc->pub_url, nowhere, &err), -1);
    assert_string_equal(err.code, ROS_ERR_CONNECTION);
    uint64_t spent = now_ms() - t0;
    assert_true(spent >= 1900 && spent < 3000);
    svc_client_close(c);

    atomic_store(&fc->stop, true);
    pthread_join(fc->thr, NULL);
    nng_close(fc->ctl);
    nng_close(fc->pub);
    free(fc);
    fake_stop(a);
    fake_stop(b);
}

/* ---------------------------------------------------------------- */
/* The C-function API */

static void test_public_api(void **state)
{
    (void)state;
    fake *f = fake_start(FAKE_ECHO, "echo", 0);
    svc_client *sc = client_open(2, 5000, 0, 0);
    members_of(sc, &f, 1);
    wait_connected(sc, 1);
    ros_client *rc = svc_ros_client_wrap(sc);
    assert_non_null(rc);
    char errbuf[256];

    /* Blocking call; the caller keeps its arguments. */
    ros_batch args;
    make_batch(&args, ROS_TYPE_TEXT, 50, 1, true);
    ros_vector out;
    assert_int_equal(ros_client_call(rc, "m", &args, &out, errbuf, sizeof errbuf), 0);
    assert_int_equal(out.len, 50);
    assert_vector_equal(&out, &args.cols[0], 50);
    ros_vector_free(&out);
    assert_int_equal(args.cols[0].len, 50);
    assert_int_equal(fake_requests(f, 1), 1); /* seqs count from 1 */

    /* Six calls on a client that takes two at a time: submit waits for a
     * slot and parks finished results on their calls. */
    ros_call *calls[6];
    ros_batch in[6];
    for (int i = 0; i < 6; i++) {
        make_batch(&in[i], ROS_TYPE_INT64, 40, (uint32_t)(10 + i), true);
        calls[i] = ros_client_submit(rc, NULL, &in[i], errbuf, sizeof errbuf);
        if (!calls[i])
            fail_msg("submit %d: %s", i, errbuf);
    }
    for (int i = 5; i >= 0; i--) {
        assert_int_equal(ros_call_wait(calls[i], -1, &out, errbuf, sizeof errbuf), 0);
        assert_vector_equal(&out, &in[i].cols[0], 40);
        ros_vector_free(&out);
        assert_int_equal(ros_call_wait(calls[i], 0, &out, errbuf, sizeof errbuf), -1);
        assert_non_null(strstr(errbuf, "already taken"));
        ros_call_free(calls[i]);
        svc_batch_free(&in[i]);
    }

    /* An abandoned running call does not disturb the next one. */
    ros_call *gone = ros_client_submit(rc, NULL, &args, errbuf, sizeof errbuf);
    assert_non_null(gone);
    ros_call_free(gone);
    assert_int_equal(ros_client_call(rc, NULL, &args, &out, errbuf, sizeof errbuf), 0);
    assert_vector_equal(&out, &args.cols[0], 50);
    ros_vector_free(&out);
    /* An invalid batch is refused up front. */
    ros_batch broken = {.ncols = 1, .nrows = 60, .cols = args.cols};
    assert_int_equal(ros_client_call(rc, NULL, &broken, &out, errbuf, sizeof errbuf), -1);
    assert_non_null(strstr(errbuf, "invalid argument batch"));
    svc_batch_free(&args);
    svc_ros_client_free(rc);

    /* Waiting with a timeout, and errors. */
    fake *slow = fake_start(FAKE_DELAY, "slow", 150);
    sc = client_open(2, 5000, 0, 0);
    members_of(sc, &slow, 1);
    wait_connected(sc, 1);
    rc = svc_ros_client_wrap(sc);
    make_batch(&args, ROS_TYPE_FLOAT32, 8, 2, false);
    ros_call *call = ros_client_submit(rc, NULL, &args, errbuf, sizeof errbuf);
    assert_non_null(call);
    assert_int_equal(ros_call_wait(call, 0, &out, errbuf, sizeof errbuf), 1);
    assert_int_equal(ros_call_wait(call, 20, &out, errbuf, sizeof errbuf), 1);
    assert_int_equal(ros_call_wait(call, -1, &out, errbuf, sizeof errbuf), 0);
    assert_vector_equal(&out, &args.cols[0], 8);
    ros_vector_free(&out);
    ros_call_free(call);
    /* a call left running is freed with the client */
    assert_non_null(ros_client_submit(rc, NULL, &args, errbuf, sizeof errbuf));
    svc_ros_client_free(rc);

    fake *bad = fake_start(FAKE_ERROR, "error", -1);
    sc = client_open(2, 5000, 0, 0);
    members_of(sc, &bad, 1);
    wait_connected(sc, 1);
    rc = svc_ros_client_wrap(sc);
    assert_int_equal(ros_client_call(rc, NULL, &args, &out, errbuf, sizeof errbuf), -1);
    assert_string_equal(errbuf, "service \"svc\": division by zero");
    assert_int_equal(out.len, 0);
    assert_null(out.values);
    svc_ros_client_free(rc);
    svc_batch_free(&args);
    fake_stop(f);
    fake_stop(slow);
    fake_stop(bad);
}

/* ---------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rosql-client-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--die") == 0)
        return die_main(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_types),
        cmocka_unit_test(test_message_reuse),
        cmocka_unit_test(test_inflight_limit),
        cmocka_unit_test(test_load_aware_routing),
        cmocka_unit_test(test_prefer_routing),
        cmocka_unit_test(test_retry_same_seq),
        cmocka_unit_test(test_lost_after_routing),
        cmocka_unit_test(test_busy_backoff),
        cmocka_unit_test(test_error_passthrough),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_split_reassemble),
        cmocka_unit_test(test_reused_flag),
        cmocka_unit_test(test_membership_replaced),
        cmocka_unit_test(test_submit_rows),
        cmocka_unit_test(test_subscribe),
        cmocka_unit_test(test_public_api),
    };
    /* ROSQL_TEST_FILTER=test_name runs one test (for loops under load). */
    const char *only = getenv("ROSQL_TEST_FILTER");
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, setup, teardown);
}

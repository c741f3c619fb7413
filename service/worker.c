/*
 * worker.c
 *    One service instance: an nng REP server with many contexts, a bounded
 *    request queue, a batching executor, a result cache, cancel and drain.
 *
 * Threads.  nng's threads run the context callbacks (ctx_cb) and the pipe
 * callback (pipe_removed); they decode frames, answer PING, CANCEL, BUSY and
 * cache hits themselves, and queue REQUESTs.  One start thread opens and
 * warms up the handler.  One executor thread takes queued requests, batches
 * them, calls the handler (which is not thread-safe: only this thread calls
 * it) and hands each answer to the contexts waiting for it.
 *
 * Locking.  Everything shared lives under w->mtx.  No nng operation that
 * can complete an aio (nng_ctx_send, nng_ctx_recv) is started with w->mtx
 * held: a completion may run a callback at once on another thread, and
 * that callback takes w->mtx.  Heavy work (decoding, encoding, handler
 * calls, copying cached frames) is done outside the lock.
 *
 * A context is in one of three phases: RECV (a receive is pending), WAIT
 * (it holds a request that is queued or running, no aio pending) or SEND (a
 * reply is being sent).  A REP context must reply or receive again after a
 * request, so every path out of WAIT ends in ctx_send or ctx_recv.
 *
 * A request (wreq) owns its received message (its batch may borrow the
 * message's bytes) and the list of contexts waiting for its answer: the one
 * that received it plus duplicates (same request id, part and content
 * digest) that arrived while it was queued or running.
 *
 * Keys.  The result cache and the duplicates are keyed by request id, part
 * index and a 64-bit digest of the part's method and payload bytes
 * (svc_frame_digest, computed once per keyed request on the receiving nng
 * thread): after a job restore the same id may carry other rows, which are
 * then a miss and computed afresh.  A NO_STORE request (an ad-hoc query,
 * whose random job id is never reused with other rows) is hashed only when
 * its id is already known to the worker (see needs_digest).  Answers not computed for their asker (a
 * cache hit, a duplicate) carry the advisory flag SVC_FLAG_REUSED.
 */
#include "runtime/core/clock.h"
#include "service/lane.h"
#include "service/shm.h"
#include "service/worker.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "service/handler.h"

/* ---------------------------------------------------------------- */
/* Types, constants and prototypes */

#define DEFAULT_MAX_BATCH 1024
#define DEFAULT_MAX_QUEUE 1024
#define MAX_CONTEXTS 4096      /* nng contexts on the REP socket, at most */
#define EXTRA_CONTEXTS 16      /* contexts beyond max_queue: PING, CANCEL, BUSY answers */
#define CACHE_BYTES (512u << 20) /* cached frames in all, whatever cache_entries says */
#define START_RETRY_MS 200     /* BUSY retry hint while starting or warming */
#define RETRY_MAX_MS 10000     /* largest BUSY retry hint */
#define OFF_FLAGS 8            /* byte offset of the flags in a frame header (README) */
#define OFF_ATTEMPT 36         /* byte offset of the attempt in a frame header (README) */
#define CTL_TIMEOUT_MS 2000    /* register/deregister with the coordinator */
#define MALLOC_MMAP_THRESHOLD (128 << 20) /* rosd worker: heap-allocate below this */
#define MALLOC_TRIM_THRESHOLD (256 << 20) /* rosd worker: free heap kept for reuse */
#define SHM_MAPPINGS 64        /* callers' shared-memory segments kept mapped */
#define SHM_SWEEP_MS 2000      /* idle executor: unmap segments of callers gone */
#define LANES_MAX 32           /* doorbell lanes open at once (one per local caller) */
#define LANE_WAIT_MS 200       /* a lane thread looks for a stop at least this often */

/* Phases of the handler's start. */
enum { PH_STARTING, PH_WARMING, PH_READY, PH_FAILED };

/* Phases of an nng context (see the file comment). */
enum { CTX_RECV, CTX_WAIT, CTX_SEND };

/* A request id plus part plus content: the key of the result cache and of
 * duplicates. */
typedef struct wkey {
    uint64_t job;    /* request id: job */
    uint64_t seq;    /* request id: sequence */
    uint32_t op;     /* request id: operator */
    uint32_t part;   /* part index */
    uint64_t digest; /* svc_frame_digest of the part: method and payload bytes */
    bool known;      /* digest computed (see needs_digest); unknown keys meet only each other */
} wkey;

/* Chained hash table node, embedded in what it indexes. */
typedef struct hnode {
    wkey key;
    struct hnode *next;
} hnode;

typedef struct htab {
    hnode **b;   /* buckets */
    size_t mask; /* buckets - 1 (a power of two) */
} htab;

typedef struct wctx wctx;
typedef struct wlane wlane;

/* One queued or running request. */
typedef struct wreq {
    hnode hn;             /* in w->inflight (when keyed) */
    bool keyed;           /* not VOLATILE: duplicates may attach, answer may be cached */
    uint64_t digest;      /* keyed: svc_frame_digest of the received frame */
    bool digest_known;    /* ... computed (see needs_digest) */
    svc_frame f;          /* decoded header and batch (may borrow msg's bytes) */
    nng_msg *msg;         /* received message while f borrows it, else NULL */
    svc_shm_maps *maps;   /* shm: the cache shm belongs to */
    svc_shm_map *shm;     /* the caller's segment f borrows (a SHM envelope), else NULL */
    svc_shm_ref ref;      /* shm: where the request lies and the answer may go */
    const uint8_t *shm_reply; /* shm: the answer frame written into the segment */
    size_t shm_reply_len;
    int64_t arrived_ms;   /* monotonic arrival time */
    wctx *waiters;        /* contexts to answer; the receiving one first */
    struct wreq *prev;    /* queue links (queued requests only) */
    struct wreq *next;
} wreq;

/* One nng context with its aio. */
struct wctx {
    svc_worker *w;
    nng_ctx ctx;
    nng_aio *aio;
    int phase;        /* CTX_RECV, CTX_WAIT, CTX_SEND */
    bool answer;      /* the pending send answers a queued request (drain accounting) */
    uint32_t attempt; /* WAIT: attempt of the request this context received */
    uint32_t pipe;    /* WAIT: pipe id it came over */
    bool reused;      /* WAIT: attached to a request already queued or running */
    wctx *next;       /* WAIT: next waiter of the same request */
    /* A request that came over a doorbell lane is waited for by a wctx of
     * its own (allocated, no nng context): its answer goes into the lane. */
    wlane *lane;      /* NULL for nng contexts */
    uint64_t tag;     /* the caller's tag of the request */
    svc_shm_map *shm; /* the caller's segment of the request, for answers too
                         large for a lane slot (one user held) */
    svc_shm_ref ref;  /* ... where the request lies and its answer may go */
};

/*
 * A doorbell lane (service/lane.h): a thread takes the envelopes a caller
 * posts into the lane and handles each as if it had come over nng; the
 * answers are posted back into the lane.  Refcounted (under w->mtx): the
 * thread holds one reference and every lane waiter one; the last drop
 * releases the mapping.
 */
struct wlane {
    svc_worker *w;
    svc_shm_map *map;     /* the caller's lane block */
    svc_lane view;
    pid_t pid;            /* the caller */
    uint32_t pipe;        /* the nng connection it opened the lane on */
    pthread_mutex_t post; /* serialises answer posts */
    int refs;             /* under w->mtx */
    bool stop;            /* under w->mtx: the connection closed, or the worker stops */
    wlane *next;          /* w->lanes (while its thread runs) */
};

/* A cached answer: an encoded RESPONSE frame. */
typedef struct centry {
    hnode hn;             /* in w->cache */
    uint8_t *bytes;       /* the frame */
    size_t len;
    int refs;             /* 1 while in the cache, +1 per reader copying it */
    struct centry *prev;  /* LRU list, most recent first */
    struct centry *next;
} centry;

struct svc_worker {
    /* configuration (copied) */
    char *spec;             /* handler spec */
    char *options;          /* service options, "" when none */
    char *url;              /* listen URL */
    int device;             /* -1 CPU, else CUDA ordinal */
    uint32_t max_batch;     /* rows per handler call */
    uint32_t max_delay_ms;  /* batching window */
    uint32_t max_queue;     /* queued requests at most */
    uint32_t cache_entries; /* cached answers at most, 0 = no cache */
    size_t max_frame;       /* frame limit (0 = default) */

    nng_socket sock;
    wctx *ctxs;             /* nctx contexts */
    uint32_t nctx;
    pthread_t start_thread;
    pthread_t exec_thread;
    bool threads;           /* both threads were started */
    svc_handler *handler;   /* set by the start thread, used by the executor only */
    wreq **group;           /* executor's scratch: the batch being run */

    pthread_mutex_t mtx;
    pthread_cond_t wake;    /* executor: queue changed, drain, stop */
    pthread_cond_t changed; /* wait_ready / wait_drained: phase or counters changed */
    /* everything below is under mtx */
    int phase;              /* PH_* */
    ros_error start_err;    /* PH_FAILED: why */
    bool draining;
    bool stopping;
    wreq *qhead, *qtail;    /* queue, oldest first */
    uint32_t qlen;          /* requests queued */
    uint64_t qrows;         /* rows queued */
    uint32_t running;       /* requests being computed */
    uint32_t sending;       /* answers handed to nng but not yet sent */
    htab inflight;          /* keyed requests queued or running */
    htab cache;             /* centry by key */
    centry *lru_head, *lru_tail;
    uint32_t cache_count;
    size_t cache_bytes;
    double call_ms;         /* moving average of a handler call */
    uint64_t requests;      /* request parts answered (RESPONSE or ERROR) */
    uint64_t rows;          /* rows computed */
    uint64_t malformed;     /* malformed or oversized frames */
    uint64_t cache_hits;    /* requests answered from the cache */
    uint64_t calls;         /* handler calls by the executor */
    svc_shm_maps *shm;      /* callers' segments (thread-safe on its own) */
    wlane *lanes;           /* doorbell lanes whose thread runs */
    uint32_t nlanes;
    uint64_t lane_dropped;  /* answers a full lane could not take */
};

static void deadline_ts(struct timespec *ts, int64_t mono_deadline_ms);
static int cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mtx, int64_t deadline_ms);
static uint64_t key_hash(const wkey *k);
static int htab_init(htab *t, size_t want);
static hnode *htab_find(const htab *t, const wkey *k);
static void htab_insert(htab *t, hnode *n);
static void htab_remove(htab *t, hnode *n);
static wkey key_of(const svc_frame_header *h, uint64_t digest, bool known);
static void patch_reply(uint8_t *frame, uint32_t attempt, bool reused);
static void queue_unlink(svc_worker *w, wreq *r);
static void req_free(wreq *r);
static void cache_unref_locked(svc_worker *w, centry *e);
static void cache_put_locked(svc_worker *w, const wkey *k, uint8_t *bytes, size_t len);
static void status_locked(svc_worker *w, svc_status *st, bool busy);
static nng_msg *msg_from_buf(uint8_t *buf, size_t len);
static nng_msg *status_msg(svc_worker *w, const svc_frame_header *req, svc_frame_kind kind);
static nng_msg *error_msg(svc_worker *w, const svc_frame_header *req, const ros_error *e, int64_t row);
static void ctx_recv(wctx *c);
static void ctx_send(wctx *c, nng_msg *m);
static void ctx_cb(void *arg);
static void realign(nng_msg *m);
static void handle_msg(wctx *c, nng_msg *m);
static int shm_request(svc_worker *w, wreq *r, pid_t pid, ros_error *err);
static pid_t msg_peer(nng_msg *m);
static bool needs_digest(svc_worker *w, const svc_frame_header *h);
static void answer_malformed(wctx *c, wreq *r, const ros_error *err);
static void lane_open(wctx *c, wreq *r, uint32_t pipe, pid_t pid);
static void lane_answer(wctx *c, nng_msg *m);
static void lane_waiter_free(wctx *c);
static void lanes_stop(svc_worker *w, bool all, uint32_t pipe);
static void handle_request(wctx *c, wreq *r);
static void handle_cancel(wctx *c, const svc_frame_header *h);
static void pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg);
static void drop_waiters_locked(svc_worker *w, bool (*match)(const wreq *, const wctx *, const void *),
                                const void *arg, wctx **rearm, wreq **dead);
static void rearm_and_free(wctx *rearm, wreq *dead);
static void *start_main(void *arg);
static void *exec_main(void *arg);
static bool compatible(const wreq *a, const wreq *b);
static void exec_group(svc_worker *w, wreq **g, uint32_t n);
static void run_batch(svc_worker *w, wreq **g, uint32_t n);
static void answer_rows(svc_worker *w, wreq *r, const ros_batch *res, uint32_t start, uint32_t end);
static void answer_error(svc_worker *w, wreq *r, const ros_error *e, int64_t row);
static nng_msg *reply_msg(wreq *r, size_t size);
static void frame_drop_batch(svc_frame *f);
static void deliver(svc_worker *w, wreq *r, nng_msg *m, bool ok, uint32_t rows);
static void worker_free(svc_worker *w);

/* ---------------------------------------------------------------- */
/* Time */

static void deadline_ts(struct timespec *ts, int64_t mono_deadline_ms)
{
    ts->tv_sec = (time_t)(mono_deadline_ms / 1000);
    ts->tv_nsec = (long)(mono_deadline_ms % 1000) * 1000000L;
}

/* Waits on cv (a CLOCK_MONOTONIC condition) until deadline_ms (monotonic;
 * -1 = forever).  Returns 0 when woken, 1 on timeout. */
static int cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mtx, int64_t deadline_ms)
{
    if (deadline_ms < 0) {
        pthread_cond_wait(cv, mtx);
        return 0;
    }
    struct timespec ts;
    deadline_ts(&ts, deadline_ms);
    return pthread_cond_timedwait(cv, mtx, &ts) == ETIMEDOUT ? 1 : 0;
}

/* ---------------------------------------------------------------- */
/* Hash tables (in-flight requests, cache) */

static uint64_t key_hash(const wkey *k)
{
    uint64_t h = k->job * 0x9e3779b97f4a7c15ull;
    h ^= (k->seq + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
    h ^= ((uint64_t)k->op << 32 | k->part) * 0x94d049bb133111ebull;
    return h ^ (h >> 29); /* not the digest: a probe by id alone finds the bucket */
}

/* Returns 0, or -1 when out of memory (t is left empty). */
static int htab_init(htab *t, size_t want)
{
    size_t n = 64;
    while (n < want * 2 && n < ((size_t)1 << 20))
        n <<= 1;
    t->b = calloc(n, sizeof *t->b);
    t->mask = t->b ? n - 1 : 0;
    return t->b ? 0 : -1;
}

static hnode *htab_find(const htab *t, const wkey *k)
{
    for (hnode *n = t->b[key_hash(k) & t->mask]; n; n = n->next)
        if (n->key.job == k->job && n->key.seq == k->seq && n->key.op == k->op &&
            n->key.part == k->part && n->key.known == k->known && n->key.digest == k->digest)
            return n;
    return NULL;
}

/* Whether t holds a key of k's id and part, whatever its digest. */
static bool htab_has_id(const htab *t, const wkey *k)
{
    for (hnode *n = t->b[key_hash(k) & t->mask]; n; n = n->next)
        if (n->key.job == k->job && n->key.seq == k->seq && n->key.op == k->op && n->key.part == k->part)
            return true;
    return false;
}

static void htab_insert(htab *t, hnode *n)
{
    hnode **b = &t->b[key_hash(&n->key) & t->mask];
    n->next = *b;
    *b = n;
}

static void htab_remove(htab *t, hnode *n)
{
    for (hnode **p = &t->b[key_hash(&n->key) & t->mask]; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            n->next = NULL;
            return;
        }
}

static wkey key_of(const svc_frame_header *h, uint64_t digest, bool known)
{
    wkey k = {h->id.job, h->id.seq, h->id.op, h->part_index, known ? digest : 0, known};
    return k;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Makes an encoded answer name attempt, and marks it REUSED when set. */
static void patch_reply(uint8_t *frame, uint32_t attempt, bool reused)
{
    put_le32(frame + OFF_ATTEMPT, attempt);
    if (reused) {
        uint32_t flags = 0;
        for (int i = 0; i < 4; i++)
            flags |= (uint32_t)frame[OFF_FLAGS + i] << (8 * i);
        put_le32(frame + OFF_FLAGS, flags | SVC_FLAG_REUSED);
    }
}

/* ---------------------------------------------------------------- */
/* Requests and the cache */

static void queue_unlink(svc_worker *w, wreq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        w->qhead = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        w->qtail = r->prev;
    r->prev = r->next = NULL;
    w->qlen--;
    w->qrows -= r->f.batch.nrows;
}

static void req_free(wreq *r)
{
    if (!r)
        return;
    svc_frame_clear(&r->f);
    if (r->msg)
        nng_msg_free(r->msg);
    if (r->shm)
        svc_shm_release(r->maps, r->shm);
    free(r);
}

static void cache_unref_locked(svc_worker *w, centry *e)
{
    (void)w;
    if (--e->refs == 0) {
        free(e->bytes);
        free(e);
    }
}

static void cache_evict_locked(svc_worker *w, centry *e)
{
    htab_remove(&w->cache, &e->hn);
    if (e->prev)
        e->prev->next = e->next;
    else
        w->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        w->lru_tail = e->prev;
    e->prev = e->next = NULL;
    w->cache_count--;
    w->cache_bytes -= e->len;
    cache_unref_locked(w, e);
}

/* Takes ownership of bytes (frees them when they cannot be kept). */
static void cache_put_locked(svc_worker *w, const wkey *k, uint8_t *bytes, size_t len)
{
    hnode *old = htab_find(&w->cache, k);
    if (old)
        cache_evict_locked(w, (centry *)old);
    centry *e = calloc(1, sizeof *e);
    if (!e) {
        free(bytes);
        return;
    }
    e->hn.key = *k;
    e->bytes = bytes;
    e->len = len;
    e->refs = 1;
    htab_insert(&w->cache, &e->hn);
    e->next = w->lru_head;
    if (w->lru_head)
        w->lru_head->prev = e;
    w->lru_head = e;
    if (!w->lru_tail)
        w->lru_tail = e;
    w->cache_count++;
    w->cache_bytes += len;
    while (w->lru_tail && (w->cache_count > w->cache_entries || w->cache_bytes > CACHE_BYTES))
        cache_evict_locked(w, w->lru_tail);
}

/* ---------------------------------------------------------------- */
/* Status and reply frames */

static void status_locked(svc_worker *w, svc_status *st, bool busy)
{
    memset(st, 0, sizeof *st);
    if (w->draining)
        st->state = SVC_STATE_DRAINING;
    else if (w->phase == PH_STARTING)
        st->state = SVC_STATE_STARTING;
    else if (w->phase == PH_WARMING)
        st->state = SVC_STATE_WARMING;
    else if (w->phase == PH_READY)
        st->state = SVC_STATE_READY;
    else
        st->state = SVC_STATE_UNKNOWN; /* failed to start */
    st->queue_depth = w->qlen;
    st->queue_capacity = w->max_queue;
    if (st->state == SVC_STATE_STARTING || st->state == SVC_STATE_WARMING) {
        st->retry_after_ms = START_RETRY_MS;
    } else if (st->state == SVC_STATE_READY && (w->qlen > 0 || busy)) {
        /* time to work off the queue: its batches times a call, plus one window */
        double batches = (double)(w->qrows / w->max_batch + 1);
        double ms = batches * (w->call_ms > 1 ? w->call_ms : 1) + w->max_delay_ms;
        st->retry_after_ms = ms > RETRY_MAX_MS ? RETRY_MAX_MS : (uint32_t)ms + 1;
    }
    st->requests = w->requests;
    st->rows = w->rows;
    st->inflight = w->running;
    st->malformed = w->malformed > UINT32_MAX ? UINT32_MAX : (uint32_t)w->malformed;
}

/* Moves a malloc'd frame into a new message (frees buf).  NULL when out of
 * memory. */
static nng_msg *msg_from_buf(uint8_t *buf, size_t len)
{
    nng_msg *m = NULL;
    if (buf && nng_msg_alloc(&m, len) == 0)
        memcpy(nng_msg_body(m), buf, len);
    else
        m = NULL;
    free(buf);
    return m;
}

/* A BUSY or PONG answering req (NULL: a zero id). */
static nng_msg *status_msg(svc_worker *w, const svc_frame_header *req, svc_frame_kind kind)
{
    svc_frame_header h;
    if (req)
        svc_frame_reply_header(&h, req, kind);
    else
        svc_frame_header_init(&h, kind, NULL);
    svc_status st;
    pthread_mutex_lock(&w->mtx);
    status_locked(w, &st, kind == SVC_KIND_BUSY);
    pthread_mutex_unlock(&w->mtx);
    uint8_t *buf;
    size_t len;
    ros_error err;
    ros_error_clear(&err);
    if (svc_frame_encode_status(&h, &st, w->max_frame, &buf, &len, &err) < 0)
        return NULL;
    return msg_from_buf(buf, len);
}

/* An ERROR answering req (NULL: a zero id) with e; row is the failing row or
 * SVC_FRAME_ROW_NONE. */
static nng_msg *error_msg(svc_worker *w, const svc_frame_header *req, const ros_error *e, int64_t row)
{
    svc_frame_header h;
    if (req)
        svc_frame_reply_header(&h, req, SVC_KIND_ERROR);
    else
        svc_frame_header_init(&h, SVC_KIND_ERROR, NULL);
    uint8_t *buf;
    size_t len;
    ros_error err;
    ros_error_clear(&err);
    if (svc_frame_encode_error(&h, e, row, w->max_frame, &buf, &len, &err) < 0)
        return NULL;
    return msg_from_buf(buf, len);
}

/* ---------------------------------------------------------------- */
/* Contexts */

static void ctx_recv(wctx *c)
{
    if (c->lane) { /* a lane waiter dropped without an answer */
        lane_waiter_free(c);
        return;
    }
    c->phase = CTX_RECV;
    nng_ctx_recv(c->ctx, c->aio);
}

/* Sends m as the context's reply; with m NULL (out of memory, or a request
 * dropped) the context receives again without replying. */
static void ctx_send(wctx *c, nng_msg *m)
{
    if (!m) {
        if (c->answer) {
            svc_worker *w = c->w;
            pthread_mutex_lock(&w->mtx);
            c->answer = false;
            w->sending--;
            pthread_cond_broadcast(&w->changed);
            pthread_mutex_unlock(&w->mtx);
        }
        ctx_recv(c);
        return;
    }
    if (c->lane) {
        lane_answer(c, m);
        return;
    }
    c->phase = CTX_SEND;
    nng_aio_set_msg(c->aio, m);
    nng_ctx_send(c->ctx, c->aio);
}

static void ctx_cb(void *arg)
{
    wctx *c = arg;
    svc_worker *w = c->w;
    int rv = nng_aio_result(c->aio);
    if (c->phase == CTX_SEND) {
        if (rv != 0) { /* the message is still ours */
            nng_msg *m = nng_aio_get_msg(c->aio);
            nng_aio_set_msg(c->aio, NULL);
            if (m)
                nng_msg_free(m);
        }
        if (c->answer) {
            pthread_mutex_lock(&w->mtx);
            c->answer = false;
            w->sending--;
            pthread_cond_broadcast(&w->changed);
            pthread_mutex_unlock(&w->mtx);
        }
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            return;
        ctx_recv(c);
        return;
    }
    if (rv != 0) {
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            return;
        ctx_recv(c); /* a transient failure: keep the context alive */
        return;
    }
    nng_msg *m = nng_aio_get_msg(c->aio);
    nng_aio_set_msg(c->aio, NULL);
    handle_msg(c, m);
}

/*
 * REP hands us the frame 4 bytes past an 8-byte boundary (it trims the REQ
 * request id off the front), so svc_frame_decode_view would copy every
 * column.  Sliding the frame down by those bytes in place (nng keeps them
 * in front of the body) is one memmove without allocation, after which the
 * batch is read where it lies.  Leaves m as it was when that cannot be done.
 */
static void realign(nng_msg *m)
{
    size_t len = nng_msg_len(m);
    size_t shift = (uintptr_t)nng_msg_body(m) & 7;
    if (shift == 0 || len < SVC_FRAME_HEADER_SIZE)
        return;
    static const uint8_t pad[8];
    if (nng_msg_insert(m, pad, shift) != 0)
        return;
    uint8_t *body = nng_msg_body(m);
    if (((uintptr_t)body & 7) != 0) {
        nng_msg_trim(m, shift); /* the message moved: give up */
        return;
    }
    memmove(body, body + shift, len);
    nng_msg_chop(m, shift);
}

/*
 * r holds a decoded SHM envelope received in m: maps the caller's segment
 * (the caller is the ipc peer of m's pipe) and decodes the request frame it
 * names in place, so that r becomes that REQUEST with its batch borrowed
 * from the segment.  -1 with err set (r->f.h still names the request, for
 * the ERROR answer) when the segment cannot be mapped or the frame there is
 * malformed or not a request of the envelope's id.
 */
static int shm_request(svc_worker *w, wreq *r, pid_t pid, ros_error *err)
{
    svc_frame_header env = r->f.h;
    r->ref = r->f.shm;
    r->maps = w->shm;
    r->shm = svc_shm_attach(w->shm, pid, &r->ref, err);
    if (!r->shm)
        return -1;
    const uint8_t *buf = svc_shm_base(r->shm) + r->ref.off;
    if (svc_frame_decode_view(buf, (size_t)r->ref.len, w->max_frame, &r->f, err) < 0 ||
        r->f.h.kind != SVC_KIND_REQUEST || r->f.h.id.job != env.id.job || r->f.h.id.op != env.id.op ||
        r->f.h.id.seq != env.id.seq || r->f.h.part_index != env.part_index) {
        if (!err->set)
            ros_error_set(err, SVC_ERR_PROTOCOL_VIOLATION,
                          "malformed frame: the shared memory holds a %s frame, not the request named",
                          svc_frame_kind_name(r->f.h.kind));
        svc_frame_clear(&r->f);
        r->f.h = env;
        pthread_mutex_lock(&w->mtx);
        w->malformed++;
        pthread_mutex_unlock(&w->mtx);
        return -1;
    }
    if ((r->digest_known = needs_digest(w, &r->f.h)))
        r->digest = svc_frame_digest(&r->f.h, buf, (size_t)r->ref.len);
    return 0;
}

/*
 * Whether a request's key needs the digest of its content.  Not for a
 * VOLATILE one (never keyed).  A NO_STORE one (an ad-hoc query: its job id
 * is drawn at random and its asker never sends other rows under a seq)
 * needs it only when an answer or a request of its id is cached, queued or
 * running now, to be compared with; otherwise its key is its id with the
 * digest unknown, which meets only other unknown keys, that is NO_STORE
 * requests of the same id and so the same rows.  Spares hashing every
 * byte of an ad-hoc query's requests.
 */
static bool needs_digest(svc_worker *w, const svc_frame_header *h)
{
    if (h->flags & SVC_FLAG_VOLATILE)
        return false;
    if (!(h->flags & SVC_FLAG_NO_STORE))
        return true;
    wkey k = key_of(h, 0, false);
    pthread_mutex_lock(&w->mtx);
    bool seen = htab_has_id(&w->inflight, &k) || htab_has_id(&w->cache, &k);
    pthread_mutex_unlock(&w->mtx);
    return seen;
}

/* The ipc peer of m's connection (SO_PEERCRED), 0 when not known (tcp). */
static pid_t msg_peer(nng_msg *m)
{
    uint64_t pid = 0;
    if (nng_pipe_get_uint64(nng_msg_get_pipe(m), NNG_OPT_IPC_PEER_PID, &pid) != 0 || pid > INT32_MAX)
        pid = 0;
    return (pid_t)pid;
}

/* r (its header decoded, or kind NONE) was malformed: counted, answered
 * with err on c (naming the request when its header was read), freed. */
static void answer_malformed(wctx *c, wreq *r, const ros_error *err)
{
    svc_worker *w = c->w;
    pthread_mutex_lock(&w->mtx);
    w->malformed++;
    pthread_mutex_unlock(&w->mtx);
    bool has_id = r->f.h.kind != SVC_KIND_NONE;
    nng_msg *reply = error_msg(w, has_id ? &r->f.h : NULL, err, SVC_FRAME_ROW_NONE);
    req_free(r);
    ctx_send(c, reply);
}

/* Decodes one received message and answers it or queues it. */
static void handle_msg(wctx *c, nng_msg *m)
{
    svc_worker *w = c->w;
    wreq *r = calloc(1, sizeof *r);
    if (!r) {
        nng_msg_free(m);
        ctx_recv(c); /* cannot answer without memory; the caller retries */
        return;
    }
    ros_error err;
    ros_error_clear(&err);
    realign(m);
    if (svc_frame_decode_view(nng_msg_body(m), nng_msg_len(m), w->max_frame, &r->f, &err) < 0) {
        nng_msg_free(m);
        answer_malformed(c, r, &err);
        return;
    }
    uint32_t pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(m));
    if (r->f.h.kind == SVC_KIND_SHM) {
        /* the request lies in the caller's memory: read it there */
        if (shm_request(w, r, msg_peer(m), &err) < 0) {
            nng_msg_free(m);
            nng_msg *reply = error_msg(w, &r->f.h, &err, SVC_FRAME_ROW_NONE);
            req_free(r);
            ctx_send(c, reply);
            return;
        }
        nng_msg_free(m);
    } else if (r->f.h.kind == SVC_KIND_LANE) {
        pid_t pid = msg_peer(m);
        nng_msg_free(m);
        lane_open(c, r, pipe, pid);
        return;
    } else {
        if (r->f.h.kind == SVC_KIND_REQUEST && (r->digest_known = needs_digest(w, &r->f.h)))
            r->digest = svc_frame_digest(&r->f.h, nng_msg_body(m), nng_msg_len(m));
        if (r->f.borrowed)
            r->msg = m; /* the batch points into m */
        else
            nng_msg_free(m);
    }
    switch (r->f.h.kind) {
    case SVC_KIND_REQUEST:
        c->pipe = pipe;
        handle_request(c, r);
        return;
    case SVC_KIND_PING: {
        nng_msg *reply = status_msg(w, &r->f.h, SVC_KIND_PONG);
        req_free(r);
        ctx_send(c, reply);
        return;
    }
    case SVC_KIND_CANCEL:
        handle_cancel(c, &r->f.h);
        req_free(r);
        return;
    default: {
        ros_error_set(&err, SVC_ERR_PROTOCOL_VIOLATION, "malformed frame: a worker does not accept %s frames",
                      svc_frame_kind_name(r->f.h.kind));
        pthread_mutex_lock(&w->mtx);
        w->malformed++;
        pthread_mutex_unlock(&w->mtx);
        nng_msg *reply = error_msg(w, &r->f.h, &err, SVC_FRAME_ROW_NONE);
        req_free(r);
        ctx_send(c, reply);
        return;
    }
    }
}

/* Queues r (a decoded REQUEST received on c), or answers it at once: BUSY
 * before READY, while draining or with the queue full; the start error
 * after a failed start; a cache hit (marked REUSED).  A duplicate of a
 * queued or running request (same id, part and digest) waits for that
 * one's answer. */
static void handle_request(wctx *c, wreq *r)
{
    svc_worker *w = c->w;
    const svc_frame_header *h = &r->f.h;
    nng_msg *reply = NULL;
    bool keyed = !(h->flags & SVC_FLAG_VOLATILE);
    wkey k = key_of(h, r->digest, r->digest_known);

    pthread_mutex_lock(&w->mtx);
    if (w->phase == PH_FAILED && !w->draining) {
        ros_error e = w->start_err;
        w->requests++;
        pthread_mutex_unlock(&w->mtx);
        reply = error_msg(w, h, &e, SVC_FRAME_ROW_NONE);
        goto answer;
    }
    if (w->phase != PH_READY || w->draining || w->stopping)
        goto busy;
    if (keyed && w->cache_entries) {
        centry *e = (centry *)htab_find(&w->cache, &k);
        if (e) {
            e->refs++; /* keeps the bytes while we copy them unlocked */
            if (e != w->lru_head) {
                e->prev->next = e->next;
                if (e->next)
                    e->next->prev = e->prev;
                else
                    w->lru_tail = e->prev;
                e->prev = NULL;
                e->next = w->lru_head;
                w->lru_head->prev = e;
                w->lru_head = e;
            }
            w->cache_hits++;
            w->requests++;
            pthread_mutex_unlock(&w->mtx);
            if (nng_msg_alloc(&reply, e->len) == 0) {
                uint8_t *b = nng_msg_body(reply);
                memcpy(b, e->bytes, e->len);
                patch_reply(b, h->attempt, true); /* names this request's attempt */
            } else {
                reply = NULL;
            }
            pthread_mutex_lock(&w->mtx);
            cache_unref_locked(w, e);
            pthread_mutex_unlock(&w->mtx);
            goto answer;
        }
    }
    if (keyed) {
        hnode *n = htab_find(&w->inflight, &k);
        if (n) {
            wreq *first = (wreq *)n;
            c->phase = CTX_WAIT;
            c->attempt = h->attempt;
            c->reused = true;
            c->next = NULL;
            wctx **pp = &first->waiters;
            while (*pp)
                pp = &(*pp)->next;
            *pp = c;
            pthread_mutex_unlock(&w->mtx);
            req_free(r);
            return;
        }
    }
    if (w->qlen >= w->max_queue)
        goto busy;
    r->keyed = keyed;
    r->hn.key = k;
    r->arrived_ms = ros_mono_ms();
    c->phase = CTX_WAIT;
    c->attempt = h->attempt;
    c->reused = false;
    c->next = NULL;
    r->waiters = c;
    r->prev = w->qtail;
    r->next = NULL;
    if (w->qtail)
        w->qtail->next = r;
    else
        w->qhead = r;
    w->qtail = r;
    w->qlen++;
    w->qrows += r->f.batch.nrows;
    if (keyed)
        htab_insert(&w->inflight, &r->hn);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mtx);
    return;

busy:
    pthread_mutex_unlock(&w->mtx);
    reply = status_msg(w, h, SVC_KIND_BUSY);
answer:
    req_free(r);
    ctx_send(c, reply);
}

/* What a CANCEL names. */
typedef struct cancel_scope {
    uint64_t job;
    uint32_t op;
    uint32_t attempt; /* drop attempts <= this one */
} cancel_scope;

static bool match_cancel(const wreq *r, const wctx *c, const void *arg)
{
    const cancel_scope *s = arg;
    return r->f.h.id.job == s->job && r->f.h.id.op == s->op && c->attempt <= s->attempt;
}

static bool match_pipe(const wreq *r, const wctx *c, const void *arg)
{
    (void)r;
    return c->pipe == *(const uint32_t *)arg;
}

/*
 * Removes the waiters that match from every queued (not running) request; a
 * request left without waiters leaves the queue.  The removed contexts are
 * chained on *rearm, the removed requests on *dead (the caller re-arms and
 * frees them after unlocking).
 */
static void drop_waiters_locked(svc_worker *w, bool (*match)(const wreq *, const wctx *, const void *),
                                const void *arg, wctx **rearm, wreq **dead)
{
    bool dropped = false;
    for (wreq *r = w->qhead, *next; r; r = next) {
        next = r->next;
        for (wctx **pp = &r->waiters; *pp;) {
            wctx *c = *pp;
            if (match(r, c, arg)) {
                *pp = c->next;
                c->next = *rearm;
                *rearm = c;
                dropped = true;
            } else {
                pp = &c->next;
            }
        }
        if (!r->waiters) {
            queue_unlink(w, r);
            if (r->keyed)
                htab_remove(&w->inflight, &r->hn);
            r->next = *dead;
            *dead = r;
        }
    }
    if (dropped)
        pthread_cond_broadcast(&w->changed);
}

/* Sends the contexts of a drop back to receiving and frees the requests. */
static void rearm_and_free(wctx *rearm, wreq *dead)
{
    while (rearm) {
        wctx *c = rearm;
        rearm = c->next;
        c->next = NULL;
        ctx_recv(c);
    }
    while (dead) {
        wreq *r = dead;
        dead = r->next;
        req_free(r);
    }
}

static void handle_cancel(wctx *c, const svc_frame_header *h)
{
    svc_worker *w = c->w;
    cancel_scope s = {h->id.job, h->id.op, h->attempt};
    wctx *rearm = NULL;
    wreq *dead = NULL;
    pthread_mutex_lock(&w->mtx);
    drop_waiters_locked(w, match_cancel, &s, &rearm, &dead);
    pthread_mutex_unlock(&w->mtx);
    rearm_and_free(rearm, dead);
    ctx_send(c, status_msg(w, h, SVC_KIND_PONG));
}

/* A connection closed: its caller is gone, so its queued requests are
 * dropped (running ones finish; their replies are discarded by nng). */
static void pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    svc_worker *w = arg;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    wctx *rearm = NULL;
    wreq *dead = NULL;
    (void)ev;
    pthread_mutex_lock(&w->mtx);
    drop_waiters_locked(w, match_pipe, &id, &rearm, &dead);
    pthread_mutex_unlock(&w->mtx);
    rearm_and_free(rearm, dead);
    lanes_stop(w, false, id);
}

/* ---------------------------------------------------------------- */
/* Doorbell lanes (service/lane.h) */

static void lane_unref(wlane *l)
{
    svc_worker *w = l->w;
    pthread_mutex_lock(&w->mtx);
    bool last = --l->refs == 0;
    pthread_mutex_unlock(&w->mtx);
    if (!last)
        return;
    svc_shm_release(w->shm, l->map);
    pthread_mutex_destroy(&l->post);
    free(l);
}

static void lane_waiter_free(wctx *c)
{
    wlane *l = c->lane;
    if (c->shm)
        svc_shm_release(l->w->shm, c->shm);
    free(c);
    lane_unref(l);
}

/*
 * Posts m (an answer to c's request; consumed) into c's lane.  A frame
 * larger than a lane slot (an inline answer: a duplicate's, a cached one)
 * goes into the caller's answer area of the request, named by a SHM
 * envelope; when it does not fit there either, the answer is an ERROR
 * SVC_ERR_SHM_TOO_SMALL carrying the bytes needed in its row field, and the
 * caller asks again with a larger area.
 */
static void lane_answer(wctx *c, nng_msg *m)
{
    svc_worker *w = c->w;
    wlane *l = c->lane;
    const uint8_t *frame = nng_msg_body(m);
    size_t len = nng_msg_len(m);
    uint8_t env[SVC_FRAME_SHM_SIZE];
    nng_msg *small = NULL;
    if (len > SVC_LANE_RESP_MAX) {
        svc_frame_header h;
        svc_frame_header_init(&h, SVC_KIND_SHM, NULL);
        if (c->shm && len <= c->ref.resp_cap) {
            memcpy(svc_shm_base(c->shm) + c->ref.resp_off, frame, len);
            svc_shm_ref ref = {0, c->ref.seg_id, c->ref.seg_size, c->ref.resp_off, len, 0, 0};
            svc_frame_write_shm(&h, &ref, env);
            frame = env;
            len = sizeof env;
        } else {
            ros_error e;
            ros_error_clear(&e);
            ros_error_set(&e, SVC_ERR_SHM_TOO_SMALL, "an answer of %zu bytes does not fit the area offered", len);
            small = error_msg(w, NULL, &e, (int64_t)len);
            frame = small ? nng_msg_body(small) : NULL;
            len = small ? nng_msg_len(small) : 0;
        }
    }
    int rc = -1;
    if (frame) {
        pthread_mutex_lock(&l->post);
        rc = svc_lane_post_answer(&l->view, c->tag, frame, len);
        pthread_mutex_unlock(&l->post);
    }
    nng_msg_free(m);
    if (small)
        nng_msg_free(small);
    pthread_mutex_lock(&w->mtx);
    if (rc < 0)
        w->lane_dropped++; /* the caller's timeout asks again */
    if (c->answer) {
        c->answer = false;
        w->sending--;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->mtx);
    lane_waiter_free(c);
}

/* One envelope taken from lane l: handled as a SHM envelope off the socket,
 * waited for by a lane waiter. */
static void lane_request(wlane *l, uint64_t tag, const uint8_t *env, size_t len)
{
    svc_worker *w = l->w;
    wctx *c = calloc(1, sizeof *c);
    wreq *r = calloc(1, sizeof *r);
    if (!c || !r) {
        free(c);
        free(r);
        return; /* no answer: the caller's timeout asks again */
    }
    c->w = w;
    c->lane = l;
    c->tag = tag;
    c->pipe = l->pipe;
    pthread_mutex_lock(&w->mtx);
    l->refs++;
    pthread_mutex_unlock(&w->mtx);
    ros_error err;
    ros_error_clear(&err);
    if (svc_frame_decode(env, len, w->max_frame, &r->f, &err) < 0 || r->f.h.kind != SVC_KIND_SHM) {
        if (!err.set)
            ros_error_set(&err, SVC_ERR_PROTOCOL_VIOLATION, "malformed frame: a lane carries shm envelopes, not %s frames",
                          svc_frame_kind_name(r->f.h.kind));
        answer_malformed(c, r, &err);
        return;
    }
    if (shm_request(w, r, l->pid, &err) < 0) {
        nng_msg *reply = error_msg(w, &r->f.h, &err, SVC_FRAME_ROW_NONE);
        req_free(r);
        ctx_send(c, reply);
        return;
    }
    c->shm = r->shm;
    c->ref = r->ref;
    svc_shm_retain(w->shm, c->shm);
    handle_request(c, r);
}

static void *lane_main(void *arg)
{
    wlane *l = arg;
    svc_worker *w = l->w;
    uint8_t env[SVC_LANE_REQ_MAX];
    prctl(PR_SET_NAME, "rosd:lane", 0, 0, 0); /* in ps -T and /proc/PID/task/N/comm */
    for (;;) {
        pthread_mutex_lock(&w->mtx);
        bool stop = l->stop;
        pthread_mutex_unlock(&w->mtx);
        if (stop || svc_lane_closed(&l->view))
            break;
        uint64_t tag;
        size_t len;
        int rc = svc_lane_take_request(&l->view, &tag, env, &len);
        if (rc < 0) { /* the caller broke its ring: the lane ends */
            pthread_mutex_lock(&w->mtx);
            w->malformed++;
            pthread_mutex_unlock(&w->mtx);
            break;
        }
        if (rc == 0)
            svc_lane_wait_request(&l->view, LANE_WAIT_MS);
        else
            lane_request(l, tag, env, len);
    }
    pthread_mutex_lock(&w->mtx);
    for (wlane **pp = &w->lanes; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    pthread_mutex_unlock(&w->mtx);
    lane_unref(l);
    /* last: worker_free waits for this count, and w may be gone after it */
    pthread_mutex_lock(&w->mtx);
    w->nlanes--;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->mtx);
    return NULL;
}

/* A LANE frame (decoded in r) came on c over connection pipe from process
 * pid: maps the caller's lane and starts its thread; answers PONG, or an
 * ERROR (SVC_ERR_SHM_UNAVAILABLE: the caller goes on over the socket). */
static void lane_open(wctx *c, wreq *r, uint32_t pipe, pid_t pid)
{
    svc_worker *w = c->w;
    ros_error err;
    ros_error_clear(&err);
    svc_shm_ref ref = r->f.shm;
    svc_shm_map *map = NULL;
    wlane *l = NULL;
    if (ref.len != SVC_LANE_BYTES || ref.off % 64 || ref.resp_off % 64 || ref.resp_cap < SVC_LANE_BELL_BYTES) {
        ros_error_set(&err, SVC_ERR_PROTOCOL_VIOLATION, "malformed frame: a lane of %llu bytes at %llu",
                      (unsigned long long)ref.len, (unsigned long long)ref.off);
        pthread_mutex_lock(&w->mtx);
        w->malformed++;
        pthread_mutex_unlock(&w->mtx);
        goto fail;
    }
    if (!(map = svc_shm_attach(w->shm, pid, &ref, &err)))
        goto fail;
    if (!(l = calloc(1, sizeof *l))) {
        ros_error_oom(&err);
        goto fail;
    }
    l->w = w;
    l->map = map;
    l->pid = pid;
    l->pipe = pipe;
    l->refs = 1;
    svc_lane_view(&l->view, svc_shm_base(map) + ref.off, svc_shm_base(map) + ref.resp_off);
    if (!svc_lane_valid(&l->view)) {
        ros_error_set(&err, SVC_ERR_SHM_UNAVAILABLE, "the caller's memory holds no lane where named");
        goto fail;
    }
    pthread_mutex_init(&l->post, NULL);
    pthread_mutex_lock(&w->mtx);
    bool room = !w->stopping && w->nlanes < LANES_MAX;
    if (room) {
        l->next = w->lanes;
        w->lanes = l;
        w->nlanes++;
    }
    pthread_mutex_unlock(&w->mtx);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool started = room && pthread_create(&t, &attr, lane_main, l) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        if (room) {
            pthread_mutex_lock(&w->mtx);
            for (wlane **pp = &w->lanes; *pp; pp = &(*pp)->next)
                if (*pp == l) {
                    *pp = l->next;
                    break;
                }
            w->nlanes--;
            pthread_mutex_unlock(&w->mtx);
        }
        pthread_mutex_destroy(&l->post);
        ros_error_set(&err, SVC_ERR_SHM_UNAVAILABLE, "no lane can be opened now (%u are open)", LANES_MAX);
        goto fail;
    }
    nng_msg *reply = status_msg(w, &r->f.h, SVC_KIND_PONG);
    req_free(r);
    ctx_send(c, reply);
    return;
fail:
    free(l);
    if (map)
        svc_shm_release(w->shm, map);
    nng_msg *ereply = error_msg(w, &r->f.h, &err, SVC_FRAME_ROW_NONE);
    req_free(r);
    ctx_send(c, ereply);
}

/* Stops the lanes opened over connection pipe (all: every lane). */
static void lanes_stop(svc_worker *w, bool all, uint32_t pipe)
{
    pthread_mutex_lock(&w->mtx);
    for (wlane *l = w->lanes; l; l = l->next)
        if (all || l->pipe == pipe) {
            l->stop = true;
            svc_lane_wake_worker(&l->view);
        }
    pthread_mutex_unlock(&w->mtx);
}

/* ---------------------------------------------------------------- */
/* Start thread: open and warm up the handler */

static void *start_main(void *arg)
{
    svc_worker *w = arg;
    ros_error err;
    ros_error_clear(&err);
    svc_handler *h = svc_handler_open(w->spec, w->options, w->device, &err);
    if (h) {
        pthread_mutex_lock(&w->mtx);
        w->phase = PH_WARMING;
        pthread_cond_broadcast(&w->changed);
        pthread_mutex_unlock(&w->mtx);
        if (svc_handler_warmup(h, &err) < 0) {
            svc_handler_close(h);
            h = NULL;
        }
    }
    pthread_mutex_lock(&w->mtx);
    if (h) {
        w->handler = h;
        w->phase = PH_READY;
    } else {
        w->phase = PH_FAILED;
        w->start_err = err;
        if (!w->start_err.set)
            ros_error_set(&w->start_err, ROS_ERR_INTERNAL, "handler \"%s\" failed to start", w->spec);
    }
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->mtx);
    return NULL;
}

/* ---------------------------------------------------------------- */
/* Executor: batching and handler calls */

/* Two requests can share a handler call: same method, same column types. */
static bool compatible(const wreq *a, const wreq *b)
{
    const ros_batch *x = &a->f.batch, *y = &b->f.batch;
    if ((a->f.h.flags | b->f.h.flags) & SVC_FLAG_ALONE)
        return false;
    if (x->ncols != y->ncols || strcmp(a->f.h.method, b->f.h.method) != 0)
        return false;
    for (uint32_t i = 0; i < x->ncols; i++)
        if (x->cols[i].type != y->cols[i].type)
            return false;
    return true;
}

static void *exec_main(void *arg)
{
    svc_worker *w = arg;
    pthread_mutex_lock(&w->mtx);
    while (!w->stopping) {
        wreq *head = w->qhead;
        if (!head) {
            /* idle: now and then, let go of callers' segments nobody uses */
            if (cond_wait_until(&w->wake, &w->mtx, ros_mono_ms() + SHM_SWEEP_MS) == 1 && w->shm)
                svc_shm_sweep(w->shm);
            continue;
        }
        /* A request sent ALONE (its caller isolating a failing row) goes
         * first and by itself: it runs in a sandbox and is quick, and
         * waiting behind a batch that crashes the instance would only make
         * it die with it. */
        wreq *alone = head;
        while (alone && !(alone->f.h.flags & SVC_FLAG_ALONE))
            alone = alone->next;
        if (alone) {
            queue_unlink(w, alone);
            w->group[0] = alone;
            w->running++;
            pthread_mutex_unlock(&w->mtx);
            exec_group(w, w->group, 1);
            pthread_mutex_lock(&w->mtx);
            w->running--;
            pthread_cond_broadcast(&w->changed);
            continue;
        }
        /* Is a batch full?  The oldest request plus the compatible ones
         * behind it, in order, while they fit in max_batch rows. */
        uint64_t rows = 0;
        bool full = false;
        for (wreq *r = head; r; r = r->next) {
            if (r != head && !compatible(head, r))
                continue;
            uint32_t nr = r->f.batch.nrows;
            if (r != head && rows + nr > w->max_batch) {
                full = true;
                break;
            }
            rows += nr;
            if (rows >= w->max_batch) {
                full = true;
                break;
            }
        }
        int64_t due = head->arrived_ms + w->max_delay_ms;
        if (!full && w->max_delay_ms > 0 && !w->draining && ros_mono_ms() < due) {
            cond_wait_until(&w->wake, &w->mtx, due);
            continue;
        }
        uint32_t n = 0;
        rows = 0;
        for (wreq *r = head, *next; r; r = next) {
            next = r->next;
            if (r != head && !compatible(head, r))
                continue;
            uint32_t nr = r->f.batch.nrows;
            if (r != head && rows + nr > w->max_batch)
                break;
            queue_unlink(w, r);
            w->group[n++] = r;
            rows += nr;
            if (rows >= w->max_batch)
                break;
        }
        w->running += n;
        pthread_mutex_unlock(&w->mtx);
        exec_group(w, w->group, n);
        pthread_mutex_lock(&w->mtx);
        w->running -= n;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->mtx);
    return NULL;
}

/* Answers the expired requests of g with 57014 and runs the others. */
static void exec_group(svc_worker *w, wreq **g, uint32_t n)
{
    int64_t now = ros_unix_ms();
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t dl = g[i]->f.h.deadline_ms;
        if (dl && (uint64_t)now > dl) {
            ros_error e;
            ros_error_clear(&e);
            ros_error_set(&e, ROS_ERR_CANCELED, "deadline expired");
            ros_error_detail(&e, "The request's deadline passed %" PRId64 " ms before it could run.",
                             now - (int64_t)dl);
            answer_error(w, g[i], &e, SVC_FRAME_ROW_NONE);
        } else {
            g[k++] = g[i];
        }
    }
    if (k)
        run_batch(w, g, k);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/*
 * Runs one handler call in a forked child, a sandbox: a request sent ALONE
 * is a suspect (its caller is isolating a row that failed or crashed
 * instances), and a handler that crashes on it takes down only the child.
 * The answer travels back as a frame over a pipe.  Returns like
 * svc_handler_call; a crash is the function's error on row 0 of a one-row
 * request.  Used on the CPU only: a CUDA context does not survive fork.
 */
static int call_sandboxed(svc_worker *w, const char *method, const ros_batch *args, ros_vector *out, int64_t *row,
                          ros_error *err)
{
    *row = -1;
    int fds[2];
    if (pipe(fds) < 0)
        return ros_error_set(err, ROS_ERR_INTERNAL, "could not create a pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return ros_error_set(err, ROS_ERR_INTERNAL, "could not fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        ros_vector res;
        memset(&res, 0, sizeof res);
        int64_t r = -1;
        ros_error e;
        ros_error_clear(&e);
        svc_frame_header h;
        svc_frame_header_init(&h, SVC_KIND_RESPONSE, NULL);
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc = svc_handler_call(w->handler, method, args, &res, &r, &e);
        if (rc == 0) {
            ros_batch b = {1, res.len, &res};
            rc = svc_frame_encode(&h, &b, SIZE_MAX / 2, &buf, &len, &e);
        }
        if (rc < 0) {
            h.kind = SVC_KIND_ERROR;
            if (svc_frame_encode_error(&h, &e, r < 0 ? SVC_FRAME_ROW_NONE : r, SIZE_MAX / 2, &buf, &len, &e) < 0)
                _exit(3);
        }
        _exit(write_all(fds[1], buf, len) == 0 ? 0 : 4);
    }
    close(fds[1]);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb)
                break;
            buf = nb;
            cap = ncap;
        }
        ssize_t k = read(fds[0], buf + len, cap - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int rc = -1;
    if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) {
        if (WIFSIGNALED(status))
            ros_error_set(err, ROS_ERR_EXTERNAL, "handler \"%s\" crashed (signal %d: %s)", w->spec,
                          WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            ros_error_set(err, ROS_ERR_EXTERNAL, "handler \"%s\" exited with status %d", w->spec,
                          WEXITSTATUS(status));
        ros_error_detail(err, "The request ran alone in a sandbox process; the instance itself kept running.");
        if (args->nrows == 1)
            *row = 0;
    } else {
        svc_frame f;
        if (svc_frame_decode(buf, len, SIZE_MAX / 2, &f, err) == 0) {
            if (f.h.kind == SVC_KIND_RESPONSE && f.batch.ncols == 1) {
                *out = f.batch.cols[0];
                ros_vector_init(&f.batch.cols[0], out->type);
                rc = 0;
            } else if (f.h.kind == SVC_KIND_ERROR) {
                ros_error_set(err, f.remote.code, "%s", f.remote.message);
                snprintf(err->detail, sizeof err->detail, "%s", f.remote.detail);
                snprintf(err->hint, sizeof err->hint, "%s", f.remote.hint);
                *row = f.error_row;
            } else {
                ros_error_set(err, ROS_ERR_INTERNAL, "sandbox answered a %s frame", svc_frame_kind_name(f.h.kind));
            }
            svc_frame_clear(&f);
        }
    }
    free(buf);
    return rc;
}

/*
 * Runs the n compatible requests of g in one handler call and answers each
 * with its rows.  When a combined call fails, each request is run alone so
 * only the one that fails gets the error.
 */
static void run_batch(svc_worker *w, wreq **g, uint32_t n)
{
    ros_error err;
    ros_error_clear(&err);
    ros_batch joined;
    memset(&joined, 0, sizeof joined);
    const ros_batch *args = &g[0]->f.batch; /* one request: its batch as received */
    if (n > 1) {
        for (uint32_t i = 0; i < n; i++)
            if (svc_batch_append(&joined, &g[i]->f.batch, &err) < 0) {
                svc_batch_free(&joined);
                for (uint32_t j = 0; j < n; j++)
                    run_batch(w, &g[j], 1);
                return;
            }
        args = &joined;
    }
    ros_vector out;
    memset(&out, 0, sizeof out);
    int64_t row = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = n == 1 && (g[0]->f.h.flags & SVC_FLAG_ALONE) && w->device < 0
                 ? call_sandboxed(w, g[0]->f.h.method, args, &out, &row, &err)
                 : svc_handler_call(w->handler, g[0]->f.h.method, args, &out, &row, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    uint32_t nrows = args->nrows;
    if (rc == 0 && out.len != nrows) {
        rc = ros_error_set(&err, ROS_ERR_INTERNAL, "handler \"%s\" returned %u rows for %u input rows",
                           w->spec, out.len, nrows);
        ros_vector_free(&out);
        row = -1;
    }
    svc_batch_free(&joined);
    pthread_mutex_lock(&w->mtx);
    w->calls++;
    w->call_ms = w->calls == 1 ? ms : 0.8 * w->call_ms + 0.2 * ms;
    pthread_mutex_unlock(&w->mtx);
    if (rc < 0) {
        if (n > 1) {
            for (uint32_t i = 0; i < n; i++)
                run_batch(w, &g[i], 1);
            return;
        }
        if (row < 0 || row >= (int64_t)nrows)
            row = SVC_FRAME_ROW_NONE;
        answer_error(w, g[0], &err, row);
        return;
    }
    ros_batch res = {1, nrows, &out};
    uint32_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t nr = g[i]->f.batch.nrows;
        answer_rows(w, g[i], &res, off, off + nr);
        off += nr;
    }
    ros_vector_free(&out);
}

/* Answers r with rows [start, end) of res, encoded straight into the
 * message that is sent (or with the error when they do not encode). */
static void answer_rows(svc_worker *w, wreq *r, const ros_batch *res, uint32_t start, uint32_t end)
{
    ros_error err;
    ros_error_clear(&err);
    svc_frame_header h;
    svc_frame_reply_header(&h, &r->f.h, SVC_KIND_RESPONSE);
    size_t limit = w->max_frame ? w->max_frame : SVC_FRAME_DEFAULT_MAX;
    size_t payload = svc_frame_rows_size(res, start, end);
    size_t total = svc_frame_size(&h, NULL);
    nng_msg *m = NULL;
    if (payload == SIZE_MAX) {
        ros_error_set(&err, ROS_ERR_INTERNAL, "handler \"%s\" returned a column that cannot be sent",
                      w->spec);
    } else if (payload > limit || total + payload > limit) {
        ros_error_set(&err, SVC_ERR_PROGRAM_LIMIT, "frame of %zu bytes exceeds the limit of %zu bytes",
                      total + payload, limit);
        ros_error_hint(&err, "Send fewer rows per request part.");
    } else if (r->shm && total + payload <= r->ref.resp_cap) {
        /* into the caller's segment, where it asked for the answer; the
         * message only says where it lies */
        uint8_t *dst = svc_shm_base(r->shm) + r->ref.resp_off;
        if (svc_frame_write_rows(&h, res, start, end, w->max_frame, dst, total + payload, &err) == 0 &&
            nng_msg_alloc(&m, SVC_FRAME_SHM_SIZE) == 0) {
            svc_shm_ref ref = {0, r->ref.seg_id, r->ref.seg_size, r->ref.resp_off, total + payload, 0, 0};
            svc_frame_write_shm(&h, &ref, nng_msg_body(m));
            r->shm_reply = dst;
            r->shm_reply_len = total + payload;
        } else if (!err.set) {
            ros_error_oom(&err);
        }
    } else if (!(m = reply_msg(r, total + payload))) {
        ros_error_oom(&err);
    } else if (svc_frame_write_rows(&h, res, start, end, w->max_frame, nng_msg_body(m), total + payload,
                                    &err) < 0) {
        nng_msg_free(m);
        m = NULL;
    }
    if (!m) {
        answer_error(w, r, &err, SVC_FRAME_ROW_NONE);
        return;
    }
    deliver(w, r, m, true, end - start);
}

/* Drops the batch of a decoded frame, keeping its header. */
static void frame_drop_batch(svc_frame *f)
{
    if (f->borrowed)
        free(f->batch.cols);
    else
        svc_batch_free(&f->batch);
    memset(&f->batch, 0, sizeof f->batch);
    f->borrowed = false;
}

/*
 * A message of size bytes for r's answer: r's own request message when its
 * buffer has room (the request's batch is not read again once the handler
 * ran), else a new one.  Reusing it spares nng's zeroed allocation and the
 * page faults of a fresh buffer for every answer.  NULL when out of memory.
 */
static nng_msg *reply_msg(wreq *r, size_t size)
{
    nng_msg *m = r->msg;
    if (m && nng_msg_capacity(m) >= size) {
        r->msg = NULL; /* r's batch view is dead from here on */
        frame_drop_batch(&r->f);
        nng_msg_header_clear(m);
        nng_msg_clear(m);
        if (nng_msg_realloc(m, size) == 0)
            return m;
        nng_msg_free(m);
    }
    return nng_msg_alloc(&m, size) == 0 ? m : NULL;
}

static void answer_error(svc_worker *w, wreq *r, const ros_error *e, int64_t row)
{
    deliver(w, r, error_msg(w, &r->f.h, e, row), false, 0);
}

/*
 * Hands m (r's answer; NULL when it could not be built) to every context
 * waiting for r, caches it when it is a result that may be cached, and frees
 * r.  Duplicates that asked under another attempt get a copy naming theirs;
 * a RESPONSE to a duplicate is marked REUSED (the cached copy is not).
 */
static void deliver(svc_worker *w, wreq *r, nng_msg *m, bool ok, uint32_t rows)
{
    uint8_t *copy = NULL;
    /* the answer's frame: in m, or (a SHM envelope in m) in the caller's
     * segment, where only the receiving context's caller can read it */
    const uint8_t *frame = r->shm_reply ? r->shm_reply : m ? nng_msg_body(m) : NULL;
    size_t len = r->shm_reply ? r->shm_reply_len : m ? nng_msg_len(m) : 0;
    /* NO_STORE: the asker (an ad-hoc query) will not ask again, so the copy,
     * and on a young worker the fresh pages it lands on, would be waste */
    bool store = ok && m && r->keyed && w->cache_entries && !(r->f.h.flags & SVC_FLAG_NO_STORE);
    if (store && len <= CACHE_BYTES / 4 && (copy = malloc(len)))
        memcpy(copy, frame, len);

    pthread_mutex_lock(&w->mtx);
    if (r->keyed)
        htab_remove(&w->inflight, &r->hn);
    if (copy)
        cache_put_locked(w, &r->hn.key, copy, len);
    wctx *waiters = r->waiters;
    r->waiters = NULL;
    for (wctx *c = waiters; c; c = c->next) {
        c->answer = true;
        w->sending++;
        if (m)
            w->requests++;
    }
    if (m && ok)
        w->rows += rows;
    pthread_mutex_unlock(&w->mtx);

    /* copies first: sending m gives it away */
    for (wctx *c = waiters, *next; c; c = next) {
        next = c->next;
        c->next = NULL;
        nng_msg *cm = m;
        if (r->shm_reply && c != waiters) {
            /* a duplicate's caller cannot read the segment: the frame inline */
            cm = NULL;
            if (nng_msg_alloc(&cm, len) == 0)
                memcpy(nng_msg_body(cm), frame, len);
            else
                cm = NULL;
        } else if (m && next && !r->shm_reply && nng_msg_dup(&cm, m) != 0) {
            cm = NULL;
        }
        bool reused = ok && c->reused;
        if (cm && (c->attempt != r->f.h.attempt || reused))
            patch_reply(nng_msg_body(cm), c->attempt, reused);
        if (r->shm_reply ? c == waiters : !next)
            m = NULL; /* given to the receiving context (shm) or the last waiter */
        ctx_send(c, cm);
    }
    if (m)
        nng_msg_free(m); /* no waiter was left */
    req_free(r);
}

/* ---------------------------------------------------------------- */
/* Starting, waiting, stopping */

/* Frees w and whatever part of it was built; the threads are joined. */
static void worker_free(svc_worker *w)
{
    if (w->ctxs) {
        nng_close(w->sock); /* pending operations fail with NNG_ECLOSED */
        for (uint32_t i = 0; i < w->nctx; i++) {
            wctx *c = &w->ctxs[i];
            if (!c->aio)
                continue;
            nng_aio_stop(c->aio); /* waits for a running callback */
            /* A callback that answered as the aio stopped had its send
             * discarded by nng without a callback: the reply is ours. */
            nng_msg *m = c->phase == CTX_SEND ? nng_aio_get_msg(c->aio) : NULL;
            if (m)
                nng_msg_free(m);
            nng_aio_free(c->aio);
        }
        free(w->ctxs);
    }
    /* lane threads end (their requests are queued by now or answered) */
    lanes_stop(w, true, 0);
    pthread_mutex_lock(&w->mtx);
    while (w->nlanes > 0)
        pthread_cond_wait(&w->changed, &w->mtx);
    pthread_mutex_unlock(&w->mtx);
    while (w->qhead) {
        wreq *r = w->qhead;
        queue_unlink(w, r);
        for (wctx *c = r->waiters, *next; c; c = next) {
            next = c->next;
            if (c->lane)
                lane_waiter_free(c);
        }
        r->waiters = NULL;
        req_free(r);
    }
    while (w->lru_head)
        cache_evict_locked(w, w->lru_head);
    free(w->inflight.b);
    free(w->cache.b);
    svc_shm_maps_free(w->shm); /* after the requests that used it */
    free(w->group);
    svc_handler_close(w->handler);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->mtx);
    free(w->spec);
    free(w->options);
    free(w->url);
    free(w);
}

/* With a tcp URL ending in ":0", the URL with the port the system chose. */
static int resolve_url(svc_worker *w, nng_listener l)
{
    size_t n = strlen(w->url);
    int port;
    if (strncmp(w->url, "tcp", 3) != 0 || n < 2 || strcmp(w->url + n - 2, ":0") != 0 ||
        nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
        return 0;
    char *u = malloc(n + 8);
    if (!u)
        return -1;
    snprintf(u, n + 8, "%.*s:%d", (int)(n - 2), w->url, port);
    free(w->url);
    w->url = u;
    return 0;
}

svc_worker *svc_worker_start(const svc_worker_config *cfg, ros_error *err)
{
    if (!cfg || !cfg->handler || !cfg->listen) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "a worker needs a handler and a URL to listen on");
        return NULL;
    }
    svc_worker *w = calloc(1, sizeof *w);
    if (!w) {
        ros_error_oom(err);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mtx, NULL);
    pthread_cond_init(&w->wake, &ca);
    pthread_cond_init(&w->changed, &ca);
    pthread_condattr_destroy(&ca);
    w->spec = strdup(cfg->handler);
    w->options = strdup(cfg->options ? cfg->options : "");
    w->url = strdup(cfg->listen);
    w->device = cfg->device;
    w->max_batch = cfg->max_batch ? cfg->max_batch : DEFAULT_MAX_BATCH;
    w->max_delay_ms = cfg->max_delay_ms;
    w->max_queue = cfg->max_queue ? cfg->max_queue : DEFAULT_MAX_QUEUE;
    w->cache_entries = cfg->cache_entries;
    w->max_frame = cfg->max_frame;
    w->phase = PH_STARTING;
    uint64_t nctx = (uint64_t)w->max_queue + EXTRA_CONTEXTS;
    w->nctx = nctx > MAX_CONTEXTS ? MAX_CONTEXTS : (uint32_t)nctx;
    w->group = calloc(w->max_queue, sizeof *w->group);
    w->shm = svc_shm_maps_new(SHM_MAPPINGS);
    if (!w->spec || !w->options || !w->url || !w->group || !w->shm || htab_init(&w->inflight, w->max_queue) < 0 ||
        htab_init(&w->cache, w->cache_entries) < 0) {
        ros_error_oom(err);
        goto fail;
    }

    int rv;
    size_t limit = w->max_frame ? w->max_frame : SVC_FRAME_DEFAULT_MAX;
    /* Receive frames up to twice the limit, so an oversized one is answered
     * (54000) rather than cutting the connection; nng drops larger ones. */
    size_t recvmax = limit > SIZE_MAX / 2 ? SIZE_MAX : limit * 2;
    if ((rv = nng_rep0_open(&w->sock)) != 0) {
        ros_error_set(err, ROS_ERR_CONNECTION, "could not open a socket: %s", nng_strerror(rv));
        goto fail;
    }
    w->ctxs = calloc(w->nctx, sizeof *w->ctxs);
    if (!w->ctxs) {
        nng_close(w->sock);
        ros_error_oom(err);
        goto fail;
    }
    nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ, recvmax);
    nng_pipe_notify(w->sock, NNG_PIPE_EV_REM_POST, pipe_removed, w);
    for (uint32_t i = 0; i < w->nctx; i++) {
        wctx *c = &w->ctxs[i];
        c->w = w;
        if ((rv = nng_aio_alloc(&c->aio, ctx_cb, c)) != 0 || (rv = nng_ctx_open(&c->ctx, w->sock)) != 0) {
            ros_error_set(err, ROS_ERR_CONNECTION, "could not open a socket context: %s", nng_strerror(rv));
            goto fail;
        }
    }
    nng_listener l;
    if ((rv = nng_listen(w->sock, w->url, &l, 0)) != 0) {
        ros_error_set(err, ROS_ERR_CONNECTION, "could not listen on \"%s\": %s", w->url, nng_strerror(rv));
        goto fail;
    }
    if (resolve_url(w, l) < 0) {
        ros_error_oom(err);
        goto fail;
    }
    for (uint32_t i = 0; i < w->nctx; i++)
        ctx_recv(&w->ctxs[i]);
    if (pthread_create(&w->exec_thread, NULL, exec_main, w) != 0) {
        ros_error_set(err, ROS_ERR_INTERNAL, "could not start the executor thread");
        goto fail;
    }
    if (pthread_create(&w->start_thread, NULL, start_main, w) != 0) {
        pthread_mutex_lock(&w->mtx);
        w->stopping = true;
        pthread_cond_broadcast(&w->wake);
        pthread_mutex_unlock(&w->mtx);
        pthread_join(w->exec_thread, NULL);
        ros_error_set(err, ROS_ERR_INTERNAL, "could not start the handler thread");
        goto fail;
    }
    w->threads = true;
    return w;

fail:
    worker_free(w);
    return NULL;
}

int svc_worker_wait_ready(svc_worker *w, int timeout_ms, ros_error *err)
{
    int64_t deadline = timeout_ms < 0 ? -1 : ros_mono_ms() + timeout_ms;
    pthread_mutex_lock(&w->mtx);
    while (w->phase == PH_STARTING || w->phase == PH_WARMING) {
        if (deadline >= 0 && ros_mono_ms() >= deadline) {
            pthread_mutex_unlock(&w->mtx);
            return 1;
        }
        cond_wait_until(&w->changed, &w->mtx, deadline);
    }
    int rc = 0;
    if (w->phase == PH_FAILED) {
        if (err)
            *err = w->start_err;
        rc = -1;
    }
    pthread_mutex_unlock(&w->mtx);
    return rc;
}

void svc_worker_drain(svc_worker *w)
{
    pthread_mutex_lock(&w->mtx);
    w->draining = true;
    pthread_cond_broadcast(&w->wake);
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->mtx);
}

int svc_worker_wait_drained(svc_worker *w, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : ros_mono_ms() + timeout_ms;
    pthread_mutex_lock(&w->mtx);
    while (!(w->draining && w->qlen == 0 && w->running == 0 && w->sending == 0)) {
        if (deadline >= 0 && ros_mono_ms() >= deadline) {
            pthread_mutex_unlock(&w->mtx);
            return 1;
        }
        cond_wait_until(&w->changed, &w->mtx, deadline);
    }
    pthread_mutex_unlock(&w->mtx);
    return 0;
}

void svc_worker_status(svc_worker *w, svc_status *st)
{
    pthread_mutex_lock(&w->mtx);
    status_locked(w, st, false);
    pthread_mutex_unlock(&w->mtx);
}

uint64_t svc_worker_handler_calls(svc_worker *w)
{
    pthread_mutex_lock(&w->mtx);
    uint64_t n = w->calls;
    pthread_mutex_unlock(&w->mtx);
    return n;
}

uint64_t svc_worker_cache_hits(svc_worker *w)
{
    pthread_mutex_lock(&w->mtx);
    uint64_t n = w->cache_hits;
    pthread_mutex_unlock(&w->mtx);
    return n;
}

uint32_t svc_worker_lanes(svc_worker *w)
{
    pthread_mutex_lock(&w->mtx);
    uint32_t n = w->nlanes;
    pthread_mutex_unlock(&w->mtx);
    return n;
}

const char *svc_worker_url(const svc_worker *w)
{
    return w->url;
}

void svc_worker_stop(svc_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mtx);
    w->stopping = true;
    pthread_cond_broadcast(&w->wake);
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->mtx);
    if (w->threads) {
        pthread_join(w->exec_thread, NULL);
        pthread_join(w->start_thread, NULL); /* a handler's init cannot be interrupted */
    }
    worker_free(w);
}

/* ---------------------------------------------------------------- */
/* rosd worker */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rosd worker --handler SPEC --listen URL [options]\n"
            "  --handler SPEC         builtin:NAME or PATH.so:SYMBOL\n"
            "  --listen URL           nng URL to serve on (ipc://PATH, tcp://HOST:PORT)\n"
            "  --options TEXT         service options, \"key=value\" lines\n"
            "  --device N             -1 or cpu (default), a CUDA ordinal, or auto\n"
            "  --max-batch N          rows per handler call (default %d)\n"
            "  --max-delay-ms N       batching window in ms (default 0: no waiting)\n"
            "  --max-queue N          queued requests before BUSY (default %d)\n"
            "  --cache-entries N      cached answers (default 0: no cache)\n"
            "  --max-frame BYTES      largest frame (default %u)\n"
            "  --register CTL_URL     announce to the coordinator's control socket ...\n"
            "  --service NAME         ... as an instance of this service\n",
            DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, (unsigned)SVC_FRAME_DEFAULT_MAX);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static void log_error(const char *what, const ros_error *e)
{
    if (e->detail[0])
        fprintf(stderr, "rosd worker: %s%s (%s)\n", what, e->message, e->detail);
    else
        fprintf(stderr, "rosd worker: %s%s\n", what, e->message);
}

/* One text exchange with the coordinator's control socket.  Returns 0 when
 * it answered "ok"; otherwise -1 with why in reply. */
static int ctl_command(const char *ctl_url, const char *cmd, char *reply, size_t n)
{
    nng_socket s;
    int rv = nng_req0_open(&s);
    if (rv != 0) {
        snprintf(reply, n, "%s", nng_strerror(rv));
        return -1;
    }
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, CTL_TIMEOUT_MS);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, CTL_TIMEOUT_MS);
    char *buf = NULL;
    size_t len = 0;
    if ((rv = nng_dial(s, ctl_url, NULL, 0)) == 0 &&
        (rv = nng_send(s, (void *)cmd, strlen(cmd) + 1, 0)) == 0 &&
        (rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC)) == 0) {
        size_t k = len < n - 1 ? len : n - 1;
        memcpy(reply, buf, k);
        reply[k] = '\0';
        nng_free(buf, len);
    } else {
        snprintf(reply, n, "%s", nng_strerror(rv));
    }
    nng_close(s);
    return rv == 0 && strcmp(reply, "ok") == 0 ? 0 : -1;
}

/* A pending SIGTERM or SIGINT of set, waiting up to timeout_ms (-1 =
 * forever); 0 when none came. */
static int next_signal(const sigset_t *set, int timeout_ms)
{
    if (timeout_ms < 0) {
        int sig = 0;
        while (sigwait(set, &sig) != 0)
            ;
        return sig;
    }
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

int svc_worker_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"handler", required_argument, NULL, 'h'},      {"listen", required_argument, NULL, 'l'},
        {"options", required_argument, NULL, 'o'},      {"device", required_argument, NULL, 'd'},
        {"max-batch", required_argument, NULL, 'b'},    {"max-delay-ms", required_argument, NULL, 'w'},
        {"max-queue", required_argument, NULL, 'q'},    {"cache-entries", required_argument, NULL, 'c'},
        {"max-frame", required_argument, NULL, 'f'},    {"register", required_argument, NULL, 'r'},
        {"service", required_argument, NULL, 's'},      {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0}};
    svc_worker_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.device = -1;
    const char *ctl_url = NULL, *service = NULL;
    optind = 1;
    int ch, idx = 0;
    while ((ch = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        uint64_t v = 0;
        int bad = 0;
        switch (ch) {
        case 'h': cfg.handler = optarg; break;
        case 'l': cfg.listen = optarg; break;
        case 'o': cfg.options = optarg; break;
        case 'r': ctl_url = optarg; break;
        case 's': service = optarg; break;
        case 'd':
            if (strcmp(optarg, "cpu") == 0 || strcmp(optarg, "-1") == 0)
                cfg.device = -1;
            else if (strcmp(optarg, "auto") == 0)
                cfg.device = svc_gpu_count() > 0 ? 0 : -1;
            else if (!(bad = parse_u64(optarg, INT_MAX, &v)))
                cfg.device = (int)v;
            break;
        case 'b': bad = parse_u64(optarg, UINT32_MAX - 1, &v); cfg.max_batch = (uint32_t)v; break;
        case 'w': bad = parse_u64(optarg, 3600000, &v); cfg.max_delay_ms = (uint32_t)v; break;
        case 'q': bad = parse_u64(optarg, UINT32_MAX - EXTRA_CONTEXTS, &v); cfg.max_queue = (uint32_t)v; break;
        case 'c': bad = parse_u64(optarg, UINT32_MAX, &v); cfg.cache_entries = (uint32_t)v; break;
        case 'f': bad = parse_u64(optarg, SIZE_MAX / 4, &v); cfg.max_frame = (size_t)v; break;
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "rosd worker: invalid value \"%s\" for --%s\n", optarg, longopts[idx].name);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rosd worker: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!cfg.handler || !cfg.listen) {
        fprintf(stderr, "rosd worker: --handler and --listen are required\n");
        usage(stderr);
        return 2;
    }
    if (!ctl_url != !service) {
        fprintf(stderr, "rosd worker: --register and --service go together\n");
        return 2;
    }

    /* Frames up to 64 MiB are allocated and freed per request (received,
     * decoded, answered): serve them from the heap rather than fresh mmaps
     * whose page faults cost more than the copies (about 1.6x on 64 MiB
     * echo parts). */
    mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD);
    /* Outlive a coordinator that exits: a restarted one adopts us. */
    prctl(PR_SET_PDEATHSIG, 0);
    /* Signals are taken by sigwait below; blocked before any thread starts
     * so that every thread (ours and nng's) inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    ros_error err;
    ros_error_clear(&err);
    svc_worker *w = svc_worker_start(&cfg, &err);
    if (!w) {
        log_error("error: ", &err);
        return 1;
    }
    const char *url = svc_worker_url(w);
    fprintf(stderr, "rosd worker: listening on %s, starting handler %s\n", url, cfg.handler);
    int rc, sig = 0;
    int64_t t_start = ros_mono_ms();
    while ((rc = svc_worker_wait_ready(w, 100, &err)) == 1)
        if ((sig = next_signal(&sigs, 0)) != 0)
            break;
    if (sig) {
        fprintf(stderr, "rosd worker: %s (signal %d) while starting: stopping\n", strsignal(sig), sig);
        svc_worker_stop(w);
        return 0;
    }
    if (rc < 0) {
        svc_worker_stop(w);
        log_error("error: ", &err);
        return 1;
    }
    fprintf(stderr, "rosd worker: ready on %s (handler %s) after %lld ms of init and warm-up, at unix ms %lld\n", url,
            cfg.handler, (long long)(ros_mono_ms() - t_start), (long long)ros_unix_ms());

    char cmd[2048], reply[512];
    bool registered = false;
    if (ctl_url) {
        snprintf(cmd, sizeof cmd, "register %s %s", service, url);
        registered = ctl_command(ctl_url, cmd, reply, sizeof reply) == 0;
        if (registered)
            fprintf(stderr, "rosd worker: registered with %s as an instance of %s\n", ctl_url, service);
        else
            fprintf(stderr, "rosd worker: could not register with %s: %s (serving anyway)\n", ctl_url, reply);
    }

    /* when the first batch is computed for a caller (the scaling benchmark
     * reads it: how soon a new instance takes traffic) */
    uint64_t warm_calls = svc_worker_handler_calls(w);
    while ((sig = next_signal(&sigs, 5)) == 0)
        if (svc_worker_handler_calls(w) > warm_calls) {
            fprintf(stderr, "rosd worker: first batch computed at unix ms %lld\n", (long long)ros_unix_ms());
            break;
        }
    if (!sig)
        sig = next_signal(&sigs, -1);
    fprintf(stderr, "rosd worker: %s (signal %d): draining\n", strsignal(sig), sig);
    if (registered) {
        snprintf(cmd, sizeof cmd, "deregister %s %s", service, url);
        if (ctl_command(ctl_url, cmd, reply, sizeof reply) < 0)
            fprintf(stderr, "rosd worker: could not deregister from %s: %s\n", ctl_url, reply);
    }
    svc_worker_drain(w);
    bool forced = false;
    while (!forced && svc_worker_wait_drained(w, 100) == 1)
        if ((sig = next_signal(&sigs, 0)) != 0) {
            fprintf(stderr, "rosd worker: %s (signal %d) again: stopping without finishing the queue\n",
                    strsignal(sig), sig);
            forced = true;
        }
    /* Replies handed to nng are written by its threads: give them a moment
     * before the socket closes. */
    struct timespec linger = {0, 100 * 1000000L};
    nanosleep(&linger, NULL);
    svc_status st;
    svc_worker_status(w, &st);
    fprintf(stderr, "rosd worker: %s (%" PRIu64 " requests answered, %" PRIu64 " rows computed); exiting\n",
            forced ? "stopped" : "drained", st.requests, st.rows);
    svc_worker_stop(w);
    return 0;
}

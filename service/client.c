/*
 * client.c
 *    The service client: routing, in-flight limits, retries under a stable
 *    request id, splitting and reassembly, timeouts and push-based discovery
 *    (the contract is in client.h, the behaviour in service/README.md, "The
 *    client").
 *
 * Threads.  Every decision is made on the caller's thread, inside
 * svc_client_submit and svc_client_poll ("the pump"): routing a part, backing
 * off, retrying, completing, reassembling, applying a membership.  nng runs
 * three callbacks on its own threads, and they only record what happened,
 * under c->mu, and signal c->cv:
 *   flight_cb  a part's send or receive finished: the flight goes on
 *              c->events (a send that went out starts the receive first).
 *              An answer is decoded first, outside c->mu: decoding is pure
 *              work on the message and the flight's own fields, and doing
 *              it here spares the caller's thread, which also runs the
 *              query, the copy out of the message;
 *   pipe_cb    a member's connection came or went: its pipe set changes and,
 *              when one went, its outstanding flights are marked lost;
 *   sub_cb     a membership push: parsed and, when its version is newer,
 *              kept as c->pending for the caller's thread to apply.  Applying
 *              opens and closes sockets, and nng_close waits for callbacks,
 *              so it cannot run in a callback; handing it over also keeps the
 *              member array a caller-only structure.
 *
 * Locking.  c->mu guards what callbacks touch: the event list, the pending
 * membership and version, member pipe sets, member flight lists and the
 * fields of a flight marked "under mu".  The caller holds it only for short
 * steps and never across a call that waits for callbacks (nng_close,
 * nng_aio_stop/free, a blocking nng_dial) nor across encoding, decoding or
 * the first send of a part (nng writes the message to the socket on the
 * calling thread).  Calls made under c->mu (nng_ctx_recv, nng_aio_cancel)
 * only queue work: nng completes an aio the application started on its task
 * threads (nni_aio_finish dispatches), never inline, and runs no callback of
 * ours with one of its own locks held, so the two lock sets cannot deadlock.
 * The send-to-receive step of a flight and a cancel both happen under c->mu,
 * so a cancel cannot slip in between and be lost; the first send needs no
 * lock, because only the caller's thread cancels.
 *
 * Memory.  Answered messages are kept (a few; caller's thread) and the next
 * requests are encoded into them; the first client of a process also sets
 * glibc's mmap and trim thresholds (client_malloc_setup).
 *
 * Lifetimes.  A flight (one nng context and aio) carries one part to one
 * member; when its request finishes early (error, timeout) the flight is
 * orphaned and cancelled, and freed or pooled once its callback reported.
 * A removed member's socket is closed at once (its flights fail and are
 * re-sent elsewhere); the member itself is freed when its last flight came
 * back.  A standby member (withdrawn by a scale-in, "N~URL") stays open and
 * gets no new parts but preferred ones: the parts it has finish there.  nng_close returns only after the socket's pipe callbacks ran, so no
 * pipe callback outlives its member.
 */
#include "runtime/core/clock.h"
#include "service/client.h"
#include "service/lane.h"
#include "service/shm.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

/* ---------------------------------------------------------------- */
/* Constants */

#define DEFAULT_INFLIGHT 16
#define DEFAULT_TIMEOUT_MS 30000
#define BACKOFF_MIN_MS 10        /* first retry delay, doubled per failure */
#define BACKOFF_MAX_MS 1000
#define RECONNECT_MIN_MS 20      /* nng's dialer: retry a member not up yet */
#define RECONNECT_MAX_MS 1000
/* A preferred member that has not connected since it was added is waited
 * for this long (svc_client_submit_prefer); then the part goes elsewhere. */
#define PREFER_CONNECT_MS 500
#define MEMBER_PIPES 4           /* pipe ids tracked per member (one dialer: one pipe) */
#define IDLE_FLIGHTS_MAX 64      /* idle (context, aio) pairs kept per member */
#define CANCEL_WAIT_MS 100       /* the most close spends on CANCEL frames */
#define SUBSCRIBE_TIMEOUT_MS 2000
#define MEMBERS_MAX 4096         /* URLs in one membership message */
#define MEMBER_IDX_MAX 999999999 /* instance numbers in a membership message */
#define MEMBERSHIP_MSG_MAX (2u << 20)
#define RECV_SLACK 1024          /* protocol bytes on top of a frame */
/* Replies are decoded with at least this limit: the largest ERROR frame
 * (header, method, 24-byte body, three texts) fits, so a small max_frame
 * never turns an instance's error into a size error. */
#define REPLY_MIN_LIMIT 4096
#define NAME_MAX_LEN 200
/* Answers kept for reuse as request messages (see send_part): at most this
 * many per client, and this many bytes of them. */
#define SPARE_MSGS_MAX 8
#define SPARE_BYTES_MAX (64u << 20)
/* Process-wide malloc settings (see client_malloc_setup). */
#define MALLOC_MMAP_THRESHOLD (32u << 20)
#define MALLOC_TRIM_THRESHOLD (64u << 20)
#define LANE_OPEN_MS 1000        /* the most opening a doorbell lane waits */

#define URL_SIZE sizeof(((svc_member *)0)->url)

/* ---------------------------------------------------------------- */
/* Types */

typedef struct member member;
typedef struct flight flight;
typedef struct part part;
typedef struct request request;

typedef enum flight_phase {
    FL_IDLE,  /* pooled, no operation */
    FL_SEND,  /* request being handed to a pipe */
    FL_RECV,  /* waiting for the answer */
    FL_DONE   /* finished; on c->events until the pump takes it */
} flight_phase;

typedef enum part_state {
    PART_WAIT,   /* to be sent at send_at (first time, retry, after BUSY) */
    PART_FLIGHT, /* out on a flight */
    PART_DONE    /* answered, col holds its rows */
} part_state;

/* One request part in transit to one member: an nng context and its aio. */
struct flight {
    svc_client *c;       /* owner: the callback reaches c->mu through it */
    member *m;           /* the member whose socket ctx belongs to */
    nng_ctx ctx;         /* REQ context on m->sock */
    nng_aio *aio;        /* the send, then the receive */
    part *p;             /* caller thread: part carried, NULL when idle or orphaned */
    flight *prev, *next; /* under mu: in m->active or m->idle */
    /* under c->mu: */
    flight_phase phase;
    bool cancel;         /* the caller aborted it (orphaned, connection lost) */
    bool lost;           /* its member's connection closed while it was out */
    int rv;              /* FL_DONE: nng's result */
    nng_msg *reply;      /* FL_DONE with rv 0: the answer */
    int drc;             /* FL_DONE with rv 0: svc_frame_decode's result on reply */
    svc_frame f;         /* ... the decoded answer (drc 0) */
    ros_error derr;      /* ... why it did not decode (drc -1) */
    flight *next_event;  /* link in c->events */
    /* shared-memory lane (caller thread, read by flight_cb while out) */
    svc_shm_seg seg;     /* this flight's segment, empty until needed */
    bool via_shm;        /* the part out now was sent as a SHM envelope */
    svc_shm_ref ref;     /* ... naming this */
    size_t resp_want;    /* answer area to offer: the largest inline answer seen */
    bool on_lane;        /* the part out now was posted into its member's doorbell lane */
    uint64_t lane_tag;   /* ... under this tag */
};

/* A member's doorbell lane (service/lane.h). */
enum { LANE_NONE, LANE_OPEN, LANE_OFF };

/* One instance of the service: a REQ socket dialing its URL. */
struct member {
    svc_client *c;
    uint64_t id;              /* serial, never reused (part.avoid) */
    int idx;                  /* instance number (svc_member.idx) */
    bool standby;             /* svc_member.standby: only preferred parts go to it */
    char url[URL_SIZE];
    nng_socket sock;
    uint64_t opened_ms;       /* monotonic ms when its socket was opened */
    bool removed;             /* caller thread: left the membership, socket closed */
    bool shm;                 /* caller thread: local (ipc://) and shared memory works */
    int lane_state;           /* caller thread: LANE_NONE (not tried yet), LANE_OPEN, LANE_OFF */
    svc_lane lane;            /* caller thread: LANE_OPEN: its region in c->lanes */
    uint32_t lane_pipe;       /* ... the connection it was opened over */
    size_t resp_want;         /* caller thread: answer area a lane request must offer at least */
    bool shm_ok;              /* caller thread: it answered a request read from our memory */
    member *next_closing;     /* caller thread: in c->closing */
    /* under c->mu: */
    uint32_t pipes[MEMBER_PIPES]; /* ids of connected pipes */
    int npipes;
    bool connected_once;      /* some pipe came up since it was opened */
    flight *active;           /* flights out on this member */
    uint32_t nactive;
    flight *idle;             /* pooled flights */
    uint32_t nidle;
};

/* A row range of a request, sent and answered as one frame. */
struct part {
    request *r;
    uint32_t index;      /* part number */
    svc_row_range rows;  /* rows of the request */
    part_state state;
    uint64_t send_at;    /* PART_WAIT: not before this (monotonic ms) */
    uint32_t backoff_ms; /* delay after the next failure */
    uint64_t avoid;      /* member id the last attempt failed on, 0 = none */
    bool prefer;         /* not sent yet: goes to r->prefer when it can (route_part) */
    uint64_t prefer_until; /* waiting for r->prefer to connect: until then (monotonic ms) */
    flight *fl;          /* PART_FLIGHT */
    ros_vector col;      /* PART_DONE: the answered rows */
    bool reused;         /* PART_DONE: the answer carried SVC_FLAG_REUSED */
};

/* One submitted request, from svc_client_submit to svc_client_poll. */
struct request {
    request *prev, *next; /* in c->reqs (running) or c->done (finished) */
    uint64_t seq;
    void *tag;
    svc_frame_header h;   /* REQUEST header of every part: id, method, flags, deadline */
    ros_batch args;       /* kept until finished: retries encode from it */
    bool borrowed;        /* args are the caller's (svc_client_submit_rows): never freed */
    uint32_t first;       /* the request is rows [first, ...) of args */
    uint64_t deadline;    /* monotonic ms */
    part *parts;
    uint32_t nparts, ndone;
    uint32_t failures;    /* failed attempts re-sent (at most max_retries) */
    uint32_t resends;     /* every re-send: failures, BUSY, moves */
    bool sent;            /* some part reached an instance */
    int prefer;           /* idx of the member preferred for first sends, -1 none */
    int member_idx;       /* idx of the member part 0 was last sent to, -1 none */
    ros_error last;       /* the last failure */
    svc_result res;       /* the outcome, once finished */
};

/* A membership: a list of URLs with its version. */
typedef struct membership {
    uint64_t version;
    int n;
    svc_member *m;
} membership;

/* A list of requests. */
typedef struct req_list {
    request *head, *tail;
} req_list;

struct svc_client {
    svc_client_config cfg;  /* defaults applied; cfg.service points to name */
    bool adhoc;             /* cfg.job was drawn at random: requests carry SVC_FLAG_NO_STORE */
    char *name;
    size_t frame_limit;     /* max_frame with the default applied */
    size_t reply_limit;     /* limit for decoding replies (>= REPLY_MIN_LIMIT) */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* CLOCK_MONOTONIC */

    /* under mu, written by callbacks */
    bool kick;              /* something for the pump happened */
    flight *ev_head, *ev_tail; /* finished flights */
    bool lost;              /* some member lost a connection */
    membership *pending;    /* accepted push not applied yet */
    bool have_version;
    uint64_t version;       /* last accepted membership version */
    bool closing;           /* svc_client_close started: sub_cb stops */
    uint64_t bad_msgs, stale_msgs;

    /* caller thread */
    member **mem;           /* the membership */
    int nmem;
    member *closing_members; /* removed, flights still out */
    uint32_t rr;            /* round-robin cursor */
    uint64_t next_member_id;
    req_list reqs;          /* running */
    req_list done;          /* finished, not polled */
    uint32_t nout;          /* submitted, not yet returned by poll */
    uint64_t parts_sent, resends, busy, parts_shm, parts_lane;
    bool shm;               /* shared memory for local members (ROSQL_SVC_SHM not 0) */
    bool lanes_off;         /* no doorbell lanes (ROSQL_SVC_LANE=0, or the block failed) */
    svc_shm_seg lanes;      /* caller thread: the lane block, empty until a lane opens */
    uint32_t lanes_used;    /* caller thread: lane regions handed out (never reused) */
    uint64_t lane_tags;     /* caller thread: last tag given to a lane post */
    _Atomic uint32_t *bell; /* under mu (set once): the block's bell, NULL without one */
    _Atomic uint32_t *bell_waiting;
    nng_msg *spare[SPARE_MSGS_MAX]; /* answered messages kept for the next sends */
    int nspare;
    size_t spare_bytes;

    /* discovery */
    bool sub_open;
    nng_socket sub;
    nng_aio *sub_aio;
};

/* ---------------------------------------------------------------- */
/* Static prototypes */

static void lock(svc_client *c);
static void unlock(svc_client *c);
static void list_push(flight **head, flight *fl);
static void list_remove(flight **head, flight *fl);
static void req_append(req_list *l, request *r);
static void req_unlink(req_list *l, request *r);

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg);
static void flight_cb(void *arg);
static void sub_cb(void *arg);

static member *member_open(svc_client *c, const char *url, int idx, ros_error *err);
static void member_remove(svc_client *c, member *m);
static void member_free(member *m);
static void reap_closing(svc_client *c);
static int apply_membership(svc_client *c, const svc_member *ms, int n, bool strict, ros_error *err);
static member *route(svc_client *c, uint64_t avoid);
static member *route_part(svc_client *c, part *p, uint64_t now, bool *wait);

static flight *flight_get(svc_client *c, member *m, ros_error *err);
static void flight_put(svc_client *c, flight *fl);
static void flight_destroy(flight *fl);

static int send_part(svc_client *c, part *p, uint64_t now, ros_error *err);
static void on_flight_done(svc_client *c, flight *fl, uint64_t now);
static nng_msg *encode_part(svc_client *c, flight *fl, part *p, size_t size, ros_error *err);
static int decode_reply(svc_client *c, flight *fl, nng_msg *reply, svc_frame *f, ros_error *err);
static void on_answer(svc_client *c, part *p, member *m, nng_msg *reply, int drc, svc_frame *f,
                      const ros_error *derr, uint64_t now);
static void part_failed(svc_client *c, part *p, member *m, const ros_error *why, uint64_t now);
static void part_resend(part *p, uint64_t avoid, uint32_t delay_ms, uint64_t now);
static uint32_t next_backoff(part *p);
static void request_finish(svc_client *c, request *r);
static void request_fail(svc_client *c, request *r, const ros_error *why, int64_t row);
static void request_complete(svc_client *c, request *r);
static void request_free(request *r);
static int append_column(ros_vector *dst, const ros_vector *src, ros_error *err);
static void copy_bits_at(uint8_t *dst, uint32_t at, const uint8_t *src, uint32_t n);

static void kick_locked(svc_client *c);
static bool has_pipe(const member *m, uint32_t id);
static void lane_open(svc_client *c, member *m);
static void flight_done_locked(svc_client *c, flight *fl, int rv);
static void flight_cancel_locked(svc_client *c, flight *fl);
static void drain_lane(svc_client *c, member *m, uint64_t now);
static bool lanes_pending(svc_client *c);

static void pump(svc_client *c);
static void abort_member_lost(svc_client *c, member *m);
static void abort_lost(svc_client *c);
static void expire(svc_client *c, uint64_t now);
static void dispatch(svc_client *c, uint64_t now);
static uint64_t next_wake(svc_client *c, uint64_t now);

static int parse_membership(const char *name, const char *buf, size_t len, membership **out);
static bool accept_membership(svc_client *c, membership *mb);
static void membership_free(membership *mb);
static int ctl_members(svc_client *c, const char *ctl_url, membership **out, ros_error *err);
static void send_cancels(svc_client *c);
static nng_msg *msg_get(svc_client *c, size_t size);
static void msg_put(svc_client *c, nng_msg *m);
static void client_malloc_setup(void);

void (*svc_client_test_routed)(svc_client *c, const char *url);

/* ---------------------------------------------------------------- */
/* Small helpers */

static void lock(svc_client *c)
{
    pthread_mutex_lock(&c->mu);
}

static void unlock(svc_client *c)
{
    pthread_mutex_unlock(&c->mu);
}

/* Something for the pump happened: wakes the caller's thread, which waits
 * on the condition variable, or on the bell once it has doorbell lanes.
 * Caller holds c->mu. */
static void kick_locked(svc_client *c)
{
    c->kick = true;
    pthread_cond_signal(&c->cv);
    if (c->bell)
        svc_lane_bell_ring(c->bell, c->bell_waiting);
}

/* Doubly linked flight lists (m->active, m->idle); caller holds c->mu. */
static void list_push(flight **head, flight *fl)
{
    fl->prev = NULL;
    fl->next = *head;
    if (*head)
        (*head)->prev = fl;
    *head = fl;
}

static void list_remove(flight **head, flight *fl)
{
    if (fl->prev)
        fl->prev->next = fl->next;
    else
        *head = fl->next;
    if (fl->next)
        fl->next->prev = fl->prev;
    fl->prev = fl->next = NULL;
}

static void req_append(req_list *l, request *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
}

static void req_unlink(req_list *l, request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
}

/* ---------------------------------------------------------------- */
/* Callbacks (nng's threads): record, signal, nothing else */

/* A member's connection came up or went away. */
static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    member *m = arg;
    svc_client *c = m->c;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    lock(c);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        if (m->npipes < MEMBER_PIPES)
            m->pipes[m->npipes++] = id;
        m->connected_once = true;
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        for (int i = 0; i < m->npipes; i++) {
            if (m->pipes[i] != id)
                continue;
            m->pipes[i] = m->pipes[--m->npipes];
            /* The instance died or left: what it holds will not come back
             * on this connection.  The pump cancels these flights. */
            for (flight *fl = m->active; fl; fl = fl->next)
                fl->lost = true;
            c->lost = true;
            break;
        }
    }
    kick_locked(c);
    unlock(c);
}

/* A flight's send or receive finished. */
static void flight_cb(void *arg)
{
    flight *fl = arg;
    svc_client *c = fl->c;
    int rv = nng_aio_result(fl->aio);
    nng_msg *reply = NULL;
    /* The phase is only written by the caller before it starts an
     * operation and by this callback, so it can be read before locking.
     * An answer is decoded here, on nng's thread and outside c->mu: the
     * copy out of the message is the client's largest piece of work on the
     * receiving side, and the caller's thread (which also runs the query)
     * is spared it. */
    if (fl->phase == FL_RECV && rv == 0) {
        reply = nng_aio_get_msg(fl->aio);
        nng_aio_set_msg(fl->aio, NULL);
        ros_error_clear(&fl->derr);
        fl->drc = decode_reply(c, fl, reply, &fl->f, &fl->derr);
    }
    lock(c);
    if (fl->phase == FL_SEND) {
        if (rv != 0) {
            /* not sent: the message is ours again */
            nng_msg *msg = nng_aio_get_msg(fl->aio);
            nng_aio_set_msg(fl->aio, NULL);
            if (msg)
                nng_msg_free(msg);
        } else if (fl->cancel || fl->lost) {
            rv = NNG_ECANCELED;
        } else {
            /* Under c->mu, so a cancel is either seen above or comes after
             * the receive started and aborts it. */
            fl->phase = FL_RECV;
            nng_ctx_recv(fl->ctx, fl->aio);
            unlock(c);
            return;
        }
    } else if (fl->phase == FL_RECV) {
        fl->reply = reply; /* NULL unless rv is 0 */
    } else {
        unlock(c); /* no operation of ours was running (cannot happen) */
        return;
    }
    flight_done_locked(c, fl, rv);
    unlock(c);
}

/* Flight fl finished with rv (its reply, if any, set): queued for the
 * pump, which is woken.  Caller holds c->mu. */
static void flight_done_locked(svc_client *c, flight *fl, int rv)
{
    fl->rv = rv;
    fl->phase = FL_DONE;
    fl->next_event = NULL;
    if (c->ev_tail)
        c->ev_tail->next_event = fl;
    else
        c->ev_head = fl;
    c->ev_tail = fl;
    kick_locked(c);
}

/* A membership push arrived on the SUB socket. */
static void sub_cb(void *arg)
{
    svc_client *c = arg;
    int rv = nng_aio_result(c->sub_aio);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return; /* closing */
    if (rv == 0) {
        nng_msg *msg = nng_aio_get_msg(c->sub_aio);
        nng_aio_set_msg(c->sub_aio, NULL);
        membership *mb = NULL;
        int ok = parse_membership(c->name, nng_msg_body(msg), nng_msg_len(msg), &mb);
        nng_msg_free(msg);
        lock(c);
        if (ok < 0)
            c->bad_msgs++;
        else
            accept_membership(c, mb);
        unlock(c);
    }
    lock(c);
    bool closing = c->closing;
    unlock(c);
    /* Re-armed outside c->mu.  Close sets closing, then nng_aio_stop waits
     * for this callback and makes a later nng_recv_aio fail at once. */
    if (!closing)
        nng_recv_aio(c->sub, c->sub_aio);
}

/* ---------------------------------------------------------------- */
/* Members */

/* Opens a REQ socket dialing url in the background.  NULL with err set when
 * the socket cannot be made or the URL is invalid. */
static member *member_open(svc_client *c, const char *url, int idx, ros_error *err)
{
    member *m = calloc(1, sizeof *m);
    if (!m) {
        ros_error_oom(err);
        return NULL;
    }
    m->c = c;
    m->id = ++c->next_member_id;
    m->idx = idx;
    m->opened_ms = (uint64_t)ros_mono_ms();
    snprintf(m->url, sizeof m->url, "%s", url);
    m->shm = c->shm && strncmp(url, "ipc://", 6) == 0;
    int rv = nng_req0_open(&m->sock);
    if (rv != 0) {
        ros_error_set(err, ROS_ERR_CONNECTION, "could not open a socket for service \"%s\": %s",
                      c->name, nng_strerror(rv));
        free(m);
        return NULL;
    }
    /* The client retries itself, under the request id: no nng resends. */
    if ((rv = nng_socket_set_ms(m->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
        (rv = nng_socket_set_size(m->sock, NNG_OPT_RECVMAXSZ, c->reply_limit + RECV_SLACK)) != 0 ||
        (rv = nng_socket_set_ms(m->sock, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS)) != 0 ||
        (rv = nng_socket_set_ms(m->sock, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS)) != 0 ||
        (rv = nng_pipe_notify(m->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, m)) != 0 ||
        (rv = nng_pipe_notify(m->sock, NNG_PIPE_EV_REM_POST, pipe_cb, m)) != 0) {
        ros_error_set(err, ROS_ERR_CONNECTION, "could not set up a socket for service \"%s\": %s",
                      c->name, nng_strerror(rv));
        goto fail;
    }
    /* Non-blocking: an instance not up yet is dialed again in the background. */
    if ((rv = nng_dial(m->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid address \"%s\" for service \"%s\": %s",
                      url, c->name, nng_strerror(rv));
        goto fail;
    }
    return m;
fail:
    nng_close(m->sock);
    free(m);
    return NULL;
}

/* Takes m out of routing and closes its socket: its outstanding flights
 * fail (NNG_ECLOSED) and their parts are re-sent elsewhere.  m is freed by
 * reap_closing once they all came back.  (A scale-in first makes a member
 * standby, where its flights finish; see apply_membership.) */
static void member_remove(svc_client *c, member *m)
{
    m->removed = true;
    nng_close(m->sock); /* waits for its pipe callbacks: c->mu must be free */
    m->next_closing = c->closing_members;
    c->closing_members = m;
}

/* Frees a member whose socket is closed and whose flights are all idle. */
static void member_free(member *m)
{
    if (m->lane_state == LANE_OPEN)
        svc_lane_close(&m->lane);
    while (m->idle) {
        flight *fl = m->idle;
        m->idle = fl->next;
        flight_destroy(fl);
    }
    free(m);
}

static void reap_closing(svc_client *c)
{
    member **pp = &c->closing_members;
    while (*pp) {
        member *m = *pp;
        lock(c);
        bool busy = m->nactive > 0;
        unlock(c);
        if (busy) {
            pp = &m->next_closing;
            continue;
        }
        *pp = m->next_closing;
        member_free(m);
    }
}

/*
 * Replaces the membership with ms[0..n), diffing by URL: sockets of members
 * still present are kept, removed ones are closed, added ones opened.  In
 * strict mode a URL that cannot be dialed fails the whole change (-1, err
 * set, membership unchanged); otherwise it is skipped.
 */
static int apply_membership(svc_client *c, const svc_member *ms, int n, bool strict, ros_error *err)
{
    member **next = calloc((size_t)(n > 0 ? n : 1), sizeof *next);
    bool *kept = calloc((size_t)(c->nmem > 0 ? c->nmem : 1), sizeof *kept);
    bool *fresh = calloc((size_t)(n > 0 ? n : 1), sizeof *fresh);
    if (!next || !kept || !fresh) {
        free(next);
        free(kept);
        free(fresh);
        return ros_error_oom(err);
    }
    int nn = 0;
    for (int i = 0; i < n; i++) {
        const char *url = ms[i].url;
        if (!url[0] || !memchr(ms[i].url, '\0', URL_SIZE))
            continue;
        bool dup = false;
        for (int k = 0; k < nn && !dup; k++)
            dup = strcmp(next[k]->url, url) == 0;
        if (dup)
            continue;
        int found = -1;
        for (int j = 0; j < c->nmem && found < 0; j++)
            if (!kept[j] && strcmp(c->mem[j]->url, url) == 0)
                found = j;
        if (found >= 0) {
            kept[found] = true;
            c->mem[found]->idx = ms[i].idx;
            c->mem[found]->standby = ms[i].standby;
            next[nn++] = c->mem[found];
            continue;
        }
        ros_error e;
        ros_error_clear(&e);
        member *m = member_open(c, url, ms[i].idx, &e);
        if (!m) {
            if (!strict)
                continue;
            if (err)
                *err = e;
            for (int k = 0; k < nn; k++)
                if (fresh[k]) {
                    nng_close(next[k]->sock);
                    member_free(next[k]);
                }
            free(next);
            free(kept);
            free(fresh);
            return -1;
        }
        m->standby = ms[i].standby;
        fresh[nn] = true;
        next[nn++] = m;
    }
    member **old = c->mem;
    int nold = c->nmem;
    c->mem = next;
    c->nmem = nn;
    for (int j = 0; j < nold; j++)
        if (!kept[j])
            member_remove(c, old[j]);
    free(old);
    free(kept);
    free(fresh);
    reap_closing(c);
    return 0;
}

/*
 * The member for a part: fewest outstanding flights among members with a
 * connected pipe, ties broken round robin from c->rr; the member named
 * avoid only when no other has a pipe.  NULL when no member is connected.
 */
static member *route(svc_client *c, uint64_t avoid)
{
    if (c->nmem == 0)
        return NULL;
    member *best = NULL, *avoided = NULL;
    int best_at = -1, avoided_at = -1;
    uint32_t start = c->rr % (uint32_t)c->nmem;
    lock(c);
    for (int k = 0; k < c->nmem; k++) {
        int i = (int)((start + (uint32_t)k) % (uint32_t)c->nmem);
        member *m = c->mem[i];
        if (m->npipes == 0 || m->standby)
            continue;
        if (avoid && m->id == avoid) {
            avoided = m;
            avoided_at = i;
            continue;
        }
        if (!best || m->nactive < best->nactive) {
            best = m;
            best_at = i;
        }
    }
    unlock(c);
    if (!best) {
        best = avoided;
        best_at = avoided_at;
    }
    if (best)
        c->rr = (uint32_t)best_at + 1;
    return best;
}

/*
 * The member for part p: while p->prefer, the member of the request's
 * preferred idx when it is connected; when that member has not connected
 * since it was added and was added less than PREFER_CONNECT_MS ago, NULL
 * with *wait set (p waits, p->prefer_until says until when).  Otherwise, and
 * for parts without a preference, route().
 */
static member *route_part(svc_client *c, part *p, uint64_t now, bool *wait)
{
    *wait = false;
    if (p->prefer) {
        member *pm = NULL;
        for (int i = 0; i < c->nmem && !pm; i++)
            if (c->mem[i]->idx == p->r->prefer)
                pm = c->mem[i];
        if (pm) {
            lock(c);
            bool up = pm->npipes > 0, once = pm->connected_once;
            unlock(c);
            if (up)
                return pm;
            if (!once && now < pm->opened_ms + PREFER_CONNECT_MS) {
                p->prefer_until = pm->opened_ms + PREFER_CONNECT_MS;
                *wait = true;
                return NULL;
            }
        }
        p->prefer = false; /* gone, down or late: routed as any other */
    }
    p->prefer_until = 0;
    return route(c, p->avoid);
}

/* ---------------------------------------------------------------- */
/* Flights */

/* An idle flight of m, pooled or new.  NULL with err set on failure. */
static flight *flight_get(svc_client *c, member *m, ros_error *err)
{
    lock(c);
    flight *fl = m->idle;
    if (fl) {
        list_remove(&m->idle, fl);
        m->nidle--;
    }
    unlock(c);
    if (fl)
        return fl;
    fl = calloc(1, sizeof *fl);
    if (!fl) {
        ros_error_oom(err);
        return NULL;
    }
    fl->c = c;
    fl->m = m;
    fl->seg.fd = -1;
    int rv = nng_ctx_open(&fl->ctx, m->sock);
    if (rv != 0) {
        ros_error_set(err, ROS_ERR_CONNECTION, "could not open a context for service \"%s\": %s",
                      c->name, nng_strerror(rv));
        free(fl);
        return NULL;
    }
    nng_ctx_set_ms(fl->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if ((rv = nng_aio_alloc(&fl->aio, flight_cb, fl)) != 0) {
        nng_ctx_close(fl->ctx);
        free(fl);
        ros_error_oom(err);
        return NULL;
    }
    return fl;
}

/* Returns a finished flight to its member's pool, or frees it. */
static void flight_put(svc_client *c, flight *fl)
{
    member *m = fl->m;
    fl->p = NULL;
    if (!m->removed) {
        lock(c);
        bool pooled = m->nidle < IDLE_FLIGHTS_MAX;
        if (pooled) {
            fl->phase = FL_IDLE;
            list_push(&m->idle, fl);
            m->nidle++;
        }
        unlock(c);
        if (pooled)
            return;
    }
    flight_destroy(fl);
}

/* Frees a flight with no operation running (or a closed socket). */
static void flight_destroy(flight *fl)
{
    nng_aio_free(fl->aio); /* waits for a callback still returning */
    nng_ctx_close(fl->ctx); /* NNG_ECLOSED once the socket is gone: fine */
    svc_shm_seg_destroy(&fl->seg);
    if (fl->reply) {
        nng_msg_free(fl->reply);
        svc_frame_clear(&fl->f);
    }
    free(fl);
}

/* ---------------------------------------------------------------- */
/* Requests */

/*
 * Encodes part p straight into an nng message and sends it on a flight to
 * the member route_part() picks.  Returns 0 when sent, 1 when no member is
 * connected (p stays waiting), 2 when p waits for its preferred member, -1
 * with err set when p cannot be encoded.
 */
static int send_part(svc_client *c, part *p, uint64_t now, ros_error *err)
{
    request *r = p->r;
    bool wait;
    member *m = route_part(c, p, now, &wait);
    if (!m)
        return wait ? 2 : 1;
    svc_frame_set_part(&r->h, p->index, r->nparts);
    size_t payload = svc_frame_rows_size(&r->args, p->rows.start, p->rows.end);
    if (payload == SIZE_MAX)
        return ros_error_set(err, ROS_ERR_INTERNAL, "request batch cannot be encoded");
    size_t size = SVC_FRAME_HEADER_SIZE + (((size_t)r->h.method_len + 7) & ~(size_t)7) + payload;
    flight *fl;
    nng_msg *msg;
    for (int tries = 0;; tries++) {
        if (m->shm && m->shm_ok && m->lane_state == LANE_NONE)
            lane_open(c, m);
        fl = flight_get(c, m, err);
        if (!fl)
            return -1;
        if (!(msg = encode_part(c, fl, p, size, err))) {
            flight_put(c, fl);
            return -1;
        }
        if (svc_client_test_routed)
            svc_client_test_routed(c, m->url);
        lock(c);
        if (m->lane_state == LANE_OPEN && !has_pipe(m, m->lane_pipe)) {
            /* the lane's connection closed (the pump has not seen it yet):
             * this part goes over the socket, a new lane opens later */
            svc_lane_close(&m->lane);
            m->lane_state = LANE_NONE;
        }
        if (m->npipes > 0)
            break; /* c->mu stays held: the flight is recorded below */
        /* Its connection closed since routing looked.  The pipe event that
         * marks a member's flights lost has already run, so it would not
         * name this one, and nng would hold the message for a reconnect
         * that may never come (until the request timed out).  Route again:
         * m has no pipe now, so another member is chosen. */
        unlock(c);
        msg_put(c, msg);
        flight_put(c, fl);
        m = tries <= c->nmem ? route_part(c, p, now, &wait) : NULL;
        if (!m)
            return wait ? 2 : 1;
    }
    if (fl->via_shm)
        c->parts_shm++;
    fl->p = p;
    p->fl = fl;
    p->state = PART_FLIGHT;
    p->prefer = false; /* re-sends are routed as usual */
    if (p->index == 0)
        r->member_idx = m->idx;
    r->sent = true;
    c->parts_sent++;
    fl->phase = FL_SEND;
    fl->cancel = fl->lost = false;
    fl->rv = 0;
    fl->reply = NULL;
    fl->on_lane = false;
    list_push(&m->active, fl);
    m->nactive++;
    if (fl->via_shm && m->lane_state == LANE_OPEN) {
        /* The envelope goes into the lane; its answer comes back there
         * (drain_lanes).  The lane's connection is up (checked above): a
         * close from here on marks the flight lost like any other. */
        fl->lane_tag = ++c->lane_tags;
        if (svc_lane_post_request(&m->lane, fl->lane_tag, nng_msg_body(msg), nng_msg_len(msg)) == 0) {
            fl->on_lane = true;
            fl->phase = FL_RECV;
            c->parts_lane++;
            unlock(c);
            msg_put(c, msg);
            return 0;
        }
        /* its ring is full: over the socket this time */
    }
    unlock(c);
    /* Started outside c->mu: nng writes the message to the socket on this
     * thread, and the callbacks must not wait for that.  Only this thread
     * cancels flights, so none can slip in before the send starts; a
     * connection lost from here on marks the flight (it is in m->active),
     * and flight_cb or the pump's abort_lost sees that. */
    nng_aio_set_msg(fl->aio, msg);
    nng_ctx_send(fl->ctx, fl->aio);
    return 0;
}

/* Whether pipe id is one of m's connections now; caller holds c->mu. */
static bool has_pipe(const member *m, uint32_t id)
{
    for (int i = 0; i < m->npipes; i++)
        if (m->pipes[i] == id)
            return true;
    return false;
}

/*
 * Opens a doorbell lane to local member m (service/lane.h): a region of
 * the client's lane block, named to the instance by a LANE frame it answers
 * with PONG once its lane thread runs.  Waits at most LANE_OPEN_MS, once
 * per connection; on any failure m goes on over the socket (LANE_OFF).
 */
static void lane_open(svc_client *c, member *m)
{
    m->lane_state = LANE_OFF;
    if (c->lanes_off || c->lanes_used >= SVC_LANE_MAX)
        return;
    if (!c->lanes.base) {
        ros_error e;
        ros_error_clear(&e);
        if (svc_shm_seg_create(&c->lanes, SVC_LANE_BLOCK_BYTES, &e) < 0) {
            c->lanes_off = true;
            return;
        }
        lock(c);
        c->bell = (_Atomic uint32_t *)(void *)(c->lanes.base + SVC_LANE_BELL_OFF);
        c->bell_waiting = c->bell + 1;
        unlock(c);
    }
    size_t off = SVC_LANE_FIRST_OFF + (size_t)c->lanes_used++ * SVC_LANE_BYTES;
    svc_lane_view(&m->lane, c->lanes.base + off, c->lanes.base + SVC_LANE_BELL_OFF);
    svc_lane_init(&m->lane);
    svc_request_id id = {.job = c->cfg.job, .op = c->cfg.op, .seq = 0};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_LANE, &id);
    svc_shm_ref ref = {(uint32_t)c->lanes.fd, c->lanes.id, c->lanes.size, off, SVC_LANE_BYTES,
                       SVC_LANE_BELL_OFF, SVC_LANE_BELL_BYTES};
    nng_ctx ctx;
    nng_aio *aio = NULL;
    nng_msg *msg = NULL;
    if (nng_ctx_open(&ctx, m->sock) != 0)
        return;
    if (nng_aio_alloc(&aio, NULL, NULL) != 0 || nng_msg_alloc(&msg, SVC_FRAME_SHM_SIZE) != 0) {
        nng_aio_free(aio);
        nng_ctx_close(ctx);
        return;
    }
    svc_frame_write_lane(&h, &ref, nng_msg_body(msg));
    nng_aio_set_timeout(aio, LANE_OPEN_MS);
    nng_aio_set_msg(aio, msg);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    nng_msg *reply = NULL;
    if (nng_aio_result(aio) != 0) {
        nng_msg_free(nng_aio_get_msg(aio));
    } else {
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) == 0)
            reply = nng_aio_get_msg(aio);
    }
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    svc_frame f;
    ros_error e;
    ros_error_clear(&e);
    if (reply && svc_frame_decode(nng_msg_body(reply), nng_msg_len(reply), c->reply_limit, &f, &e) == 0) {
        if (f.h.kind == SVC_KIND_PONG) {
            m->lane_state = LANE_OPEN;
            m->lane_pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(reply));
        }
        svc_frame_clear(&f);
    }
    if (reply)
        nng_msg_free(reply);
    if (m->lane_state != LANE_OPEN)
        svc_lane_close(&m->lane); /* an instance that opened it late lets it go */
}

/* Cancels flight fl (its part is given up, or its connection closed);
 * caller holds c->mu. */
static void flight_cancel_locked(svc_client *c, flight *fl)
{
    fl->cancel = true;
    if (!fl->on_lane) {
        nng_aio_cancel(fl->aio);
    } else if (fl->phase == FL_RECV) {
        fl->reply = NULL; /* a lane flight out ends unanswered, as an nng one would */
        flight_done_locked(c, fl, fl->lost ? NNG_ECONNSHUT : NNG_ECANCELED);
    }
}

/* Takes the answers waiting in m's lane and reports each to its flight
 * (answers of flights given up meanwhile are dropped).  A corrupt lane is
 * closed: its flights end as lost and go elsewhere. */
static void drain_lane(svc_client *c, member *m, uint64_t now)
{
    if (m->lane_state != LANE_OPEN)
        return;
    uint8_t buf[SVC_LANE_RESP_MAX];
    for (;;) {
        uint64_t tag;
        size_t len;
        int rc = svc_lane_take_answer(&m->lane, &tag, buf, &len);
        if (rc == 0)
            return;
        if (rc < 0) {
            svc_lane_close(&m->lane);
            m->lane_state = LANE_OFF;
            lock(c);
            for (flight *fl = m->active; fl; fl = fl->next)
                if (fl->on_lane && fl->phase == FL_RECV) {
                    fl->lost = true;
                    flight_cancel_locked(c, fl);
                }
            unlock(c);
            return;
        }
        lock(c);
        flight *fl = m->active;
        while (fl && !(fl->on_lane && fl->lane_tag == tag && fl->phase == FL_RECV))
            fl = fl->next;
        unlock(c);
        if (!fl)
            continue; /* its flight was given up */
        nng_msg *reply = msg_get(c, len);
        fl->phase = FL_DONE;
        fl->reply = reply;
        fl->rv = reply ? 0 : NNG_ENOMEM;
        if (reply) {
            memcpy(nng_msg_body(reply), buf, len);
            ros_error_clear(&fl->derr);
            fl->drc = decode_reply(c, fl, reply, &fl->f, &fl->derr);
        }
        on_flight_done(c, fl, now);
    }
}

/* Whether some lane holds an answer not taken yet. */
static bool lanes_pending(svc_client *c)
{
    for (int i = 0; i < c->nmem; i++)
        if (c->mem[i]->lane_state == LANE_OPEN && svc_lane_has_answer(&c->mem[i]->lane))
            return true;
    for (member *m = c->closing_members; m; m = m->next_closing)
        if (m->lane_state == LANE_OPEN && svc_lane_has_answer(&m->lane))
            return true;
    return false;
}

/* Smallest request frame sent through shared memory: below it the socket
 * costs about what a segment's bookkeeping does. */
#define SHM_MIN_FRAME (32u << 10)

/*
 * Encodes part p (its frame is size bytes) for flight fl: into fl's
 * shared-memory segment, returning the SHM envelope naming it, when fl's
 * member is local and the frame is large enough; else into a message of its
 * own.  NULL with err set when the rows cannot be encoded or memory runs
 * out.  A segment that cannot be made turns the lane off for the member.
 */
static nng_msg *encode_part(svc_client *c, flight *fl, part *p, size_t size, ros_error *err)
{
    request *r = p->r;
    member *m = fl->m;
    svc_shm_ref ref = {0};
    fl->via_shm = false;
    if (m->shm && size >= SHM_MIN_FRAME && size <= c->frame_limit) {
        size_t req_room = (size + 63) & ~(size_t)63;
        size_t want = fl->resp_want > m->resp_want ? fl->resp_want : m->resp_want;
        size_t resp = ((want > size ? want : size) + 63) & ~(size_t)63;
        size_t need = SVC_SHM_SEG_HEADER + req_room + resp;
        if (fl->seg.base && fl->seg.size < need)
            svc_shm_seg_destroy(&fl->seg);
        ros_error serr;
        ros_error_clear(&serr);
        if (!fl->seg.base && svc_shm_seg_create(&fl->seg, need + need / 4, &serr) < 0) {
            m->shm = false; /* inline from now on */
        } else {
            ref = (svc_shm_ref){(uint32_t)fl->seg.fd, fl->seg.id, fl->seg.size, SVC_SHM_SEG_HEADER, size,
                                SVC_SHM_SEG_HEADER + req_room, fl->seg.size - SVC_SHM_SEG_HEADER - req_room};
            fl->via_shm = true;
        }
    }
    /* the frame goes into the segment (and the message is the envelope) or
     * into the message itself */
    nng_msg *msg = msg_get(c, fl->via_shm ? SVC_FRAME_SHM_SIZE : size);
    if (!msg) {
        fl->via_shm = false;
        ros_error_oom(err);
        return NULL;
    }
    uint8_t *dst = fl->via_shm ? fl->seg.base + SVC_SHM_SEG_HEADER : nng_msg_body(msg);
    if (svc_frame_write_rows(&r->h, &r->args, p->rows.start, p->rows.end, c->cfg.max_frame, dst, size,
                             err) < 0) {
        fl->via_shm = false;
        msg_put(c, msg);
        return NULL;
    }
    if (fl->via_shm) {
        svc_frame_write_shm(&r->h, &ref, nng_msg_body(msg));
        fl->ref = ref;
    }
    return msg;
}

/*
 * flight_cb's decode of a reply to fl: a SHM envelope is resolved to the
 * answer frame it names in fl's segment, which must lie in the area offered.
 */
static int decode_reply(svc_client *c, flight *fl, nng_msg *reply, svc_frame *f, ros_error *err)
{
    if (svc_frame_decode(nng_msg_body(reply), nng_msg_len(reply), c->reply_limit, f, err) < 0)
        return -1;
    if (f->h.kind != SVC_KIND_SHM) {
        if (fl->via_shm && f->h.kind == SVC_KIND_RESPONSE && nng_msg_len(reply) > fl->resp_want)
            fl->resp_want = nng_msg_len(reply); /* did not fit: offer room for it next time */
        return 0;
    }
    svc_shm_ref ref = f->shm;
    svc_frame_clear(f);
    if (!fl->via_shm || ref.seg_id != fl->seg.id || ref.seg_size != fl->seg.size ||
        ref.off != fl->ref.resp_off || ref.len > fl->ref.resp_cap)
        return ros_error_set(err, SVC_ERR_PROTOCOL_VIOLATION,
                             "malformed frame: an answer in shared memory outside the area offered");
    return svc_frame_decode(fl->seg.base + ref.off, (size_t)ref.len, c->reply_limit, f, err);
}

/* A flight reported: decide what its outcome means for its part. */
static void on_flight_done(svc_client *c, flight *fl, uint64_t now)
{
    member *m = fl->m;
    lock(c);
    list_remove(&m->active, fl);
    m->nactive--;
    int rv = fl->rv;
    bool lost = fl->lost;
    nng_msg *reply = fl->reply;
    fl->reply = NULL;
    unlock(c);
    /* the decoded answer moves out of the flight, which is pooled now */
    int drc = fl->drc;
    svc_frame f;
    ros_error derr;
    if (reply) {
        f = fl->f;
        derr = fl->derr;
        memset(&fl->f, 0, sizeof fl->f);
    }
    bool via_shm = fl->via_shm;
    fl->via_shm = false;
    if (via_shm && !reply)
        svc_shm_seg_destroy(&fl->seg); /* the instance may still write there */
    part *p = fl->p;
    flight_put(c, fl);
    if (!p) { /* orphan: its request is already finished */
        if (reply) {
            svc_frame_clear(&f);
            msg_put(c, reply);
        }
        return;
    }
    p->fl = NULL;
    if (rv == 0 && via_shm && drc == 0 && f.h.kind == SVC_KIND_ERROR &&
        strcmp(f.remote.code, SVC_ERR_SHM_UNAVAILABLE) == 0) {
        /* The instance cannot map our memory (another namespace, no /proc):
         * inline from now on, and this part again at once, uncounted. */
        m->shm = false;
        svc_frame_clear(&f);
        msg_put(c, reply);
        part_resend(p, 0, 0, now);
        return;
    }
    if (rv == 0 && via_shm && drc == 0 && f.h.kind == SVC_KIND_ERROR &&
        strcmp(f.remote.code, SVC_ERR_SHM_TOO_SMALL) == 0 && f.error_row > 0 &&
        (uint64_t)f.error_row > m->resp_want && (uint64_t)f.error_row <= c->reply_limit) {
        /* Over a lane, the answer was larger than the area offered: offer
         * that much from now on, and ask again at once, uncounted. */
        m->resp_want = (size_t)f.error_row;
        svc_frame_clear(&f);
        msg_put(c, reply);
        part_resend(p, 0, 0, now);
        return;
    }
    if (rv == 0) {
        if (via_shm && drc == 0 && f.h.kind == SVC_KIND_RESPONSE)
            m->shm_ok = true; /* it maps our memory: a lane may follow */
        on_answer(c, p, m, reply, drc, &f, &derr, now);
        return;
    }
    if (m->removed) {
        /* The instance left the membership: not the request's fault. */
        part_resend(p, m->id, 0, now);
        return;
    }
    ros_error why;
    ros_error_clear(&why);
    if (lost)
        ros_error_set(&why, ROS_ERR_CONNECTION, "service \"%s\": instance %s went away", c->name,
                      m->url);
    else
        ros_error_set(&why, ROS_ERR_CONNECTION, "service \"%s\": instance %s failed: %s", c->name,
                      m->url, nng_strerror(rv));
    part_failed(c, p, m, &why, now);
}

/* An answer to part p came back from member m: reply, which flight_cb
 * decoded into *fp (drc 0) or could not decode (drc -1, why in derr). */
static void on_answer(svc_client *c, part *p, member *m, nng_msg *reply, int drc, svc_frame *fp,
                      const ros_error *derr, uint64_t now)
{
    request *r = p->r;
    svc_frame f = *fp;
    ros_error e;
    ros_error_clear(&e);
    msg_put(c, reply); /* decoded into f: the message is free for a next request */
    if (drc < 0) {
        ros_error why;
        ros_error_clear(&why);
        ros_error_set(&why, derr->code, "service \"%s\": %s", c->name, derr->message);
        part_failed(c, p, m, &why, now);
        return;
    }
    if (f.h.id.job != c->cfg.job || f.h.id.op != c->cfg.op || f.h.id.seq != r->seq ||
        f.h.part_index != p->index) {
        ros_error_set(&e, SVC_ERR_PROTOCOL_VIOLATION,
                      "service \"%s\" answered request (%llu, %u, %llu) part %u, not (%llu, %u, %llu) "
                      "part %u",
                      c->name, (unsigned long long)f.h.id.job, f.h.id.op,
                      (unsigned long long)f.h.id.seq, f.h.part_index,
                      (unsigned long long)c->cfg.job, c->cfg.op, (unsigned long long)r->seq,
                      p->index);
        svc_frame_clear(&f);
        part_failed(c, p, m, &e, now);
        return;
    }
    uint32_t want = p->rows.end - p->rows.start;
    switch (f.h.kind) {
    case SVC_KIND_RESPONSE:
        if (f.batch.ncols != 1) {
            ros_error_set(&e, SVC_ERR_PROTOCOL_VIOLATION,
                          "service \"%s\" answered %u columns, expected 1", c->name, f.batch.ncols);
        } else if (f.batch.nrows != want) {
            ros_error_set(&e, SVC_ERR_PROTOCOL_VIOLATION, "service \"%s\" answered %u rows for %u",
                          c->name, f.batch.nrows, want);
            if (r->nparts > 1)
                ros_error_detail(&e, "Part %u of %u of request %llu.", p->index, r->nparts,
                                 (unsigned long long)r->seq);
        }
        if (e.set) {
            svc_frame_clear(&f);
            request_fail(c, r, &e, -1);
            return;
        }
        p->col = f.batch.cols[0];
        ros_vector_init(&f.batch.cols[0], p->col.type);
        if (p->index == 0)
            r->res.member = m->idx;
        p->reused = (f.h.flags & SVC_FLAG_REUSED) != 0; /* advisory: absent in older workers */
        svc_frame_clear(&f);
        p->state = PART_DONE;
        if (++r->ndone == r->nparts)
            request_complete(c, r);
        return;
    case SVC_KIND_ERROR: {
        ros_error_set(&e, f.remote.code, "service \"%s\": %s", c->name, f.remote.message);
        snprintf(e.detail, sizeof e.detail, "%s", f.remote.detail);
        snprintf(e.hint, sizeof e.hint, "%s", f.remote.hint);
        int64_t row = f.error_row >= 0 && f.error_row < want
                          ? (int64_t)(p->rows.start - r->first) + f.error_row
                                                              : -1;
        svc_frame_clear(&f);
        if (p->index == 0)
            r->res.member = m->idx;
        request_fail(c, r, &e, row);
        return;
    }
    case SVC_KIND_BUSY: {
        /* Not a failure: back off and ask again, maybe elsewhere. */
        uint32_t delay = f.status.retry_after_ms ? f.status.retry_after_ms : next_backoff(p);
        if (delay > BACKOFF_MAX_MS * 10)
            delay = BACKOFF_MAX_MS * 10;
        c->busy++;
        svc_frame_clear(&f);
        part_resend(p, m->id, delay, now);
        return;
    }
    default:
        ros_error_set(&e, SVC_ERR_PROTOCOL_VIOLATION, "service \"%s\" answered a %s frame", c->name,
                      svc_frame_kind_name(f.h.kind));
        svc_frame_clear(&f);
        part_failed(c, p, m, &e, now);
        return;
    }
}

/* A counted failure of part p on member m: re-send after a backoff, or fail
 * the request once max_retries re-sends are used up. */
static void part_failed(svc_client *c, part *p, member *m, const ros_error *why, uint64_t now)
{
    request *r = p->r;
    r->last = *why;
    if (r->failures >= c->cfg.max_retries) {
        request_fail(c, r, why, -1);
        return;
    }
    r->failures++;
    part_resend(p, m->id, next_backoff(p), now);
}

static void part_resend(part *p, uint64_t avoid, uint32_t delay_ms, uint64_t now)
{
    p->state = PART_WAIT;
    p->send_at = now + delay_ms;
    p->avoid = avoid;
    p->prefer = false;
    p->r->resends++;
}

static uint32_t next_backoff(part *p)
{
    uint32_t d = p->backoff_ms ? p->backoff_ms : BACKOFF_MIN_MS;
    p->backoff_ms = d >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : d * 2;
    return d;
}

/* Moves r to the finished list: flights still out are orphaned and
 * cancelled, the arguments and answered parts freed.  r->res is set. */
static void request_finish(svc_client *c, request *r)
{
    lock(c);
    for (uint32_t i = 0; i < r->nparts; i++) {
        flight *fl = r->parts[i].fl;
        if (!fl)
            continue;
        fl->p = NULL;
        flight_cancel_locked(c, fl);
        r->parts[i].fl = NULL;
    }
    unlock(c);
    for (uint32_t i = 0; i < r->nparts; i++)
        ros_vector_free(&r->parts[i].col);
    free(r->parts);
    r->parts = NULL;
    r->nparts = 0;
    if (!r->borrowed)
        svc_batch_free(&r->args);
    memset(&r->args, 0, sizeof r->args); /* borrowed: not touched again */
    r->res.seq = r->seq;
    r->res.tag = r->tag;
    r->res.retries = r->resends;
    c->resends += r->resends;
    req_unlink(&c->reqs, r);
    req_append(&c->done, r);
}

static void request_fail(svc_client *c, request *r, const ros_error *why, int64_t row)
{
    r->res.ok = 0;
    r->res.error = *why;
    r->res.error_row = row;
    request_finish(c, r);
}

/* Every part answered: the parts' columns, in order, make the result; it
 * was reused when every part's answer was. */
static void request_complete(svc_client *c, request *r)
{
    ros_error e;
    ros_error_clear(&e);
    bool reused = true;
    for (uint32_t i = 0; i < r->nparts; i++)
        reused = reused && r->parts[i].reused;
    ros_vector out = r->parts[0].col;
    ros_vector_init(&r->parts[0].col, out.type);
    for (uint32_t i = 1; i < r->nparts; i++) {
        ros_vector *v = &r->parts[i].col;
        if (v->type != out.type) {
            ros_error_set(&e, SVC_ERR_PROTOCOL_VIOLATION,
                          "service \"%s\" answered type %d in part %u after type %d", c->name,
                          (int)v->type, i, (int)out.type);
            break;
        }
        if (append_column(&out, v, &e) < 0)
            break;
        ros_vector_free(v);
    }
    if (e.set) {
        ros_vector_free(&out);
        request_fail(c, r, &e, -1);
        return;
    }
    r->res.ok = 1;
    r->res.out = out;
    r->res.error_row = -1;
    r->res.reused = reused;
    request_finish(c, r);
}

/* Frees a request in any state (close). */
static void request_free(request *r)
{
    for (uint32_t i = 0; i < r->nparts; i++)
        ros_vector_free(&r->parts[i].col);
    free(r->parts);
    if (!r->borrowed)
        svc_batch_free(&r->args);
    svc_result_clear(&r->res);
    free(r);
}

/* Copies n validity bits of src (NULL: all valid) to bits [at, at + n) of
 * dst, which has room for them.  Bits of dst below at are kept. */
static void copy_bits_at(uint8_t *dst, uint32_t at, const uint8_t *src, uint32_t n)
{
    uint32_t sh = at & 7;
    uint8_t *d = dst + at / 8;
    size_t nbytes = ((size_t)n + 7) / 8;
    if (sh == 0) {
        if (src)
            memcpy(d, src, nbytes);
        else
            memset(d, 0xff, nbytes);
        return;
    }
    d[0] &= (uint8_t)((1u << sh) - 1);
    for (size_t i = 0; i < nbytes; i++) {
        uint8_t b = src ? src[i] : 0xff;
        d[i] |= (uint8_t)(b << sh);
        if (8 * i + 8 - sh < n) /* some bit of b lands in the next byte */
            d[i + 1] = (uint8_t)(b >> (8 - sh));
    }
}

/*
 * Appends the rows of src to dst (same type) with one copy per buffer; the
 * buffers grow with realloc, which for large blocks remaps instead of
 * copying.  Returns 0, or -1 with err set (54000 past the row or byte
 * limits, 53200 out of memory); dst's rows are unchanged on failure.
 */
static int append_column(ros_vector *dst, const ros_vector *src, ros_error *err)
{
    uint32_t n0 = dst->len, n1 = src->len;
    uint64_t total = (uint64_t)n0 + n1;
    if (n1 == 0)
        return 0;
    if (total > UINT32_MAX - 1)
        return ros_error_set(err, SVC_ERR_PROGRAM_LIMIT, "result of %llu rows is too large",
                             (unsigned long long)total);
    bool varlen = ros_type_is_varlen(dst->type);
    size_t w = ros_type_width(dst->type);
    uint32_t add = 0, base = 0;
    if (varlen) {
        base = dst->offsets ? dst->offsets[n0] : 0;
        add = src->offsets[n1] - src->offsets[0];
        if ((uint64_t)base + add > UINT32_MAX)
            return ros_error_set(err, SVC_ERR_PROGRAM_LIMIT, "result would exceed 4 GB of data");
    }
    if (dst->validity || src->validity || dst->type == ROS_TYPE_NULL) {
        size_t nb = (size_t)(total + 7) / 8;
        uint8_t *v = realloc(dst->validity, nb);
        if (!v)
            return ros_error_oom(err);
        if (!dst->validity)
            memset(v, 0xff, nb); /* rows so far had no NULLs */
        dst->validity = v;
        /* a decoded null column always has its (all-zero) bitmap */
        copy_bits_at(v, n0, src->validity, n1);
    }
    if (varlen) {
        uint32_t *off = realloc(dst->offsets, ((size_t)total + 1) * sizeof *off);
        if (!off)
            return ros_error_oom(err);
        if (!dst->offsets)
            off[0] = 0;
        dst->offsets = off;
        if (add) {
            uint8_t *data = realloc(dst->data, (size_t)base + add);
            if (!data)
                return ros_error_oom(err);
            dst->data = data;
            memcpy(data + base, src->data + src->offsets[0], add);
        }
        for (uint32_t i = 1; i <= n1; i++)
            off[n0 + i] = base + (src->offsets[i] - src->offsets[0]);
        dst->data_len = dst->data_cap = base + add;
    } else if (w) {
        void *vals = realloc(dst->values, (size_t)total * w);
        if (!vals)
            return ros_error_oom(err);
        dst->values = vals;
        memcpy((uint8_t *)vals + (size_t)n0 * w, src->values, (size_t)n1 * w);
    }
    dst->len = dst->cap = (uint32_t)total;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Message reuse (caller's thread) */

/*
 * A message whose body is size bytes, to be written by the caller: a kept
 * answer with room enough, else a new one.  nng zeroes every buffer it
 * allocates and a fresh large buffer costs page faults on first touch, so
 * reusing the buffer of an answer (the same size as the next request for
 * most handlers) saves a pass over the frame's bytes.  NULL when out of
 * memory.
 */
static nng_msg *msg_get(svc_client *c, size_t size)
{
    for (int i = c->nspare - 1; i >= 0; i--) {
        nng_msg *m = c->spare[i];
        size_t cap = nng_msg_capacity(m);
        if (cap < size)
            continue;
        c->spare[i] = c->spare[--c->nspare];
        c->spare_bytes -= cap;
        nng_msg_header_clear(m); /* REQ put the answer's request id there */
        nng_msg_clear(m);
        if (nng_msg_realloc(m, size) != 0) { /* cannot allocate: size fits */
            nng_msg_free(m);
            break;
        }
        return m;
    }
    nng_msg *m;
    return nng_msg_alloc(&m, size) == 0 ? m : NULL;
}

/* Keeps m (an answer already decoded, or a request not sent) for msg_get,
 * or frees it when enough are kept. */
static void msg_put(svc_client *c, nng_msg *m)
{
    nng_msg_clear(m);
    size_t cap = nng_msg_capacity(m);
    if (c->nspare < SPARE_MSGS_MAX && c->nspare < (int)c->cfg.max_inflight &&
        c->spare_bytes + cap <= SPARE_BYTES_MAX) {
        c->spare[c->nspare++] = m;
        c->spare_bytes += cap;
        return;
    }
    nng_msg_free(m);
}

/*
 * Once per process: large blocks come from the heap and freed heap is kept
 * up to MALLOC_TRIM_THRESHOLD, instead of glibc's default of mapping each
 * block over 128 KiB afresh (and trimming the heap when its top frees up).
 * A proxy allocates and frees buffers of a request's size for every request
 * (staging, the answer's column, nng's messages); with fresh mappings each
 * of them costs its page faults and zeroing again, which made up a large
 * part of the query's time.  rosd worker sets the same for its process.
 */
static void client_malloc_setup(void)
{
    mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD);
}

/* ---------------------------------------------------------------- */
/* The pump (caller's thread) */

/* Applies what callbacks recorded, expires requests, sends what is due. */
static void pump(svc_client *c)
{
    lock(c);
    membership *pend = c->pending;
    c->pending = NULL;
    flight *ev = c->ev_head;
    c->ev_head = c->ev_tail = NULL;
    bool lost = c->lost;
    c->lost = false;
    c->kick = false;
    unlock(c);
    if (pend) {
        apply_membership(c, pend->m, pend->n, false, NULL);
        membership_free(pend);
    }
    uint64_t now = ((uint64_t)ros_mono_ms());
    while (ev) {
        flight *next = ev->next_event;
        on_flight_done(c, ev, now);
        ev = next;
    }
    for (int i = 0; i < c->nmem; i++)
        drain_lane(c, c->mem[i], now);
    for (member *m = c->closing_members; m; m = m->next_closing)
        drain_lane(c, m, now);
    if (lost)
        abort_lost(c);
    reap_closing(c);
    expire(c, now);
    dispatch(c, now);
}

/* Cancels m's flights whose connection closed; caller holds c->mu. */
static void abort_member_lost(svc_client *c, member *m)
{
    for (flight *fl = m->active; fl; fl = fl->next)
        if (fl->lost && !fl->cancel && fl->phase != FL_DONE)
            flight_cancel_locked(c, fl);
    if (m->lane_state == LANE_OPEN && !has_pipe(m, m->lane_pipe)) {
        /* its instance went away or reconnected: a new lane next time */
        svc_lane_close(&m->lane);
        m->lane_state = m->removed ? LANE_OFF : LANE_NONE;
    }
}

/* Cancels flights whose connection closed, so that they report a failure
 * and are re-sent (nng would otherwise hold them for a reconnect). */
static void abort_lost(svc_client *c)
{
    lock(c);
    for (int i = 0; i < c->nmem; i++)
        abort_member_lost(c, c->mem[i]);
    for (member *m = c->closing_members; m; m = m->next_closing)
        abort_member_lost(c, m);
    unlock(c);
}

/* Answers requests whose time is up. */
static void expire(svc_client *c, uint64_t now)
{
    request *r = c->reqs.head;
    while (r) {
        request *next = r->next;
        if (now >= r->deadline) {
            ros_error e;
            ros_error_clear(&e);
            if (r->sent) {
                ros_error_set(&e, ROS_ERR_CANCELED, "service \"%s\" did not answer within %u ms",
                              c->name, c->cfg.timeout_ms);
                if (r->last.set)
                    ros_error_detail(&e, "The last attempt failed: %s.", r->last.message);
            } else {
                ros_error_set(&e, ROS_ERR_CANNOT_CONNECT_NOW, "service \"%s\" has no ready instance",
                              c->name);
            }
            request_fail(c, r, &e, -1);
        }
        r = next;
    }
}

/* Sends every waiting part whose time has come, while a member is there. */
static void dispatch(svc_client *c, uint64_t now)
{
    request *r = c->reqs.head;
    while (r) {
        request *next = r->next;
        for (uint32_t i = 0; i < r->nparts; i++) {
            part *p = &r->parts[i];
            if (p->state != PART_WAIT || p->send_at > now)
                continue;
            ros_error e;
            ros_error_clear(&e);
            int rc = send_part(c, p, now, &e);
            if (rc == 1)
                return; /* no member connected: a pipe event wakes us */
            if (rc == 2)
                continue; /* its member's connection or next_wake wakes us */
            if (rc < 0) {
                request_fail(c, r, &e, -1);
                break;
            }
        }
        r = next;
    }
}

/* When the pump has work again without a callback: a deadline or a
 * backoff ending.  UINT64_MAX when only a callback can bring work. */
static uint64_t next_wake(svc_client *c, uint64_t now)
{
    uint64_t wake = UINT64_MAX;
    for (request *r = c->reqs.head; r; r = r->next) {
        if (r->deadline < wake)
            wake = r->deadline;
        for (uint32_t i = 0; i < r->nparts; i++) {
            const part *p = &r->parts[i];
            if (p->state == PART_WAIT && p->send_at > now && p->send_at < wake)
                wake = p->send_at;
            if (p->state == PART_WAIT && p->prefer && p->prefer_until > now && p->prefer_until < wake)
                wake = p->prefer_until;
        }
    }
    return wake;
}

/* ---------------------------------------------------------------- */
/* Public entry points */

svc_client *svc_client_open(const svc_client_config *cfg, ros_error *err)
{
    if (!cfg || !cfg->service || !cfg->service[0]) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "a service client needs a service name");
        return NULL;
    }
    size_t nl = strlen(cfg->service);
    bool bad = nl > NAME_MAX_LEN;
    for (size_t i = 0; i < nl && !bad; i++)
        bad = (unsigned char)cfg->service[i] <= ' ' || cfg->service[i] == 0x7f;
    if (bad) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid service name \"%.*s\"",
                      NAME_MAX_LEN, cfg->service);
        return NULL;
    }
    static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;
    pthread_once(&malloc_once, client_malloc_setup);
    svc_client *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(cfg->service))) {
        free(c);
        ros_error_oom(err);
        return NULL;
    }
    c->cfg = *cfg;
    c->cfg.service = c->name;
    if (!c->cfg.max_inflight)
        c->cfg.max_inflight = DEFAULT_INFLIGHT;
    if (!c->cfg.timeout_ms)
        c->cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
    c->frame_limit = c->cfg.max_frame ? c->cfg.max_frame : SVC_FRAME_DEFAULT_MAX;
    c->reply_limit = c->frame_limit > REPLY_MIN_LIMIT ? c->frame_limit : REPLY_MIN_LIMIT;
    const char *shm = getenv("ROSQL_SVC_SHM");
    c->shm = !(shm && strcmp(shm, "0") == 0);
    const char *lane = getenv("ROSQL_SVC_LANE");
    c->lanes_off = lane && strcmp(lane, "0") == 0;
    c->lanes.fd = -1;
    if (!c->cfg.job) {
        /* ad-hoc: a random job id, top bit set as for the proxy operator's.
         * Nobody asks under it again once answered: requests say so
         * (SVC_FLAG_NO_STORE), and instances keep their cache for others. */
        c->adhoc = true;
        if (getrandom(&c->cfg.job, sizeof c->cfg.job, 0) != sizeof c->cfg.job)
            c->cfg.job = ((uint64_t)ros_unix_ms()) ^ ((uint64_t)(uintptr_t)c << 16);
        c->cfg.job |= 1ull << 63;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

int svc_client_set_members(svc_client *c, const svc_member *m, int n, ros_error *err)
{
    if (n < 0 || (n > 0 && !m))
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid member list");
    for (int i = 0; i < n; i++)
        if (!memchr(m[i].url, '\0', URL_SIZE) || !m[i].url[0])
            return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                                 "member %d of service \"%s\" has no URL", i, c->name);
    return apply_membership(c, m, n, true, err);
}

int svc_client_submit(svc_client *c, uint64_t seq, const char *method, uint32_t flags,
                      ros_batch *args, void *tag, ros_error *err)
{
    return svc_client_submit_prefer(c, seq, method, flags, args, tag, -1, err);
}

/* Submits rows [first, last) of args (taken unless borrowed). */
static int submit(svc_client *c, uint64_t seq, const char *method, uint32_t flags, ros_batch *args,
                  uint32_t first, uint32_t last, bool borrowed, void *tag, int prefer_idx,
                  ros_error *err)
{
    if (!args)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "no arguments to send");
    if (flags & ~(SVC_FLAG_ORDERED | SVC_FLAG_VOLATILE | SVC_FLAG_ALONE))
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid request flags 0x%x", flags);
    if (c->nout >= c->cfg.max_inflight)
        return 1;
    request *r = calloc(1, sizeof *r);
    if (!r)
        return ros_error_oom(err);
    svc_request_id id = {.job = c->cfg.job, .op = c->cfg.op, .seq = seq};
    svc_frame_header_init(&r->h, SVC_KIND_REQUEST, &id);
    r->h.flags |= flags | (c->adhoc ? SVC_FLAG_NO_STORE : 0);
    r->h.attempt = c->cfg.attempt;
    r->h.deadline_ms = ((uint64_t)ros_unix_ms()) + c->cfg.timeout_ms;
    if (method && svc_frame_set_method(&r->h, method, strlen(method), err) < 0) {
        free(r);
        return -1;
    }
    svc_row_range *ranges;
    uint32_t nparts;
    if (svc_frame_split_rows(&r->h, args, first, last, c->cfg.max_frame, &ranges, &nparts, err) < 0) {
        free(r);
        return -1;
    }
    r->parts = calloc(nparts, sizeof *r->parts);
    if (!r->parts) {
        free(ranges);
        free(r);
        return ros_error_oom(err);
    }
    uint64_t now = ((uint64_t)ros_mono_ms());
    for (uint32_t i = 0; i < nparts; i++) {
        part *p = &r->parts[i];
        p->r = r;
        p->index = i;
        p->rows = ranges[i];
        p->state = PART_WAIT;
        p->send_at = now;
        p->prefer = prefer_idx >= 0;
    }
    free(ranges);
    r->nparts = nparts;
    r->seq = seq;
    r->tag = tag;
    r->deadline = now + c->cfg.timeout_ms;
    r->prefer = prefer_idx >= 0 ? prefer_idx : -1;
    r->member_idx = -1;
    r->res.error_row = -1;
    r->res.member = -1;
    r->args = *args;
    r->borrowed = borrowed;
    r->first = first;
    if (!borrowed)
        memset(args, 0, sizeof *args); /* taken: the caller's batch is left empty */
    req_append(&c->reqs, r);
    c->nout++;
    pump(c);
    return 0;
}

int svc_client_submit_prefer(svc_client *c, uint64_t seq, const char *method, uint32_t flags,
                             ros_batch *args, void *tag, int prefer_idx, ros_error *err)
{
    return submit(c, seq, method, flags, args, 0, args ? args->nrows : 0, false, tag, prefer_idx,
                  err);
}

int svc_client_submit_rows(svc_client *c, uint64_t seq, const char *method, uint32_t flags,
                           const ros_batch *args, uint32_t first, uint32_t last, void *tag,
                           int prefer_idx, ros_error *err)
{
    /* never written nor freed through: borrowed */
    return submit(c, seq, method, flags, (ros_batch *)args, first, last, true, tag, prefer_idx,
                  err);
}

int svc_client_poll(svc_client *c, int timeout_ms, svc_result *res)
{
    memset(res, 0, sizeof *res);
    res->error_row = -1;
    res->member = -1;
    uint64_t until = timeout_ms < 0 ? UINT64_MAX : ((uint64_t)ros_mono_ms()) + (uint64_t)timeout_ms;
    for (;;) {
        pump(c); /* also when idle: a pushed membership gets applied */
        if (c->nout == 0)
            return -1;
        request *r = c->done.head;
        if (r) {
            req_unlink(&c->done, r);
            *res = r->res;
            memset(&r->res, 0, sizeof r->res);
            request_free(r);
            c->nout--;
            return 1;
        }
        uint64_t now = ((uint64_t)ros_mono_ms());
        if (now >= until)
            return 0;
        uint64_t wake = next_wake(c, now);
        if (until < wake)
            wake = until;
        if (c->bell) {
            /* with lanes, the bell: rung by the instances' answers and by
             * kick_locked; read before looking, so nothing slips by */
            uint32_t seen = svc_lane_bell_read(c->bell);
            lock(c);
            bool kicked = c->kick;
            unlock(c);
            if (kicked || lanes_pending(c))
                continue;
            uint64_t t = ((uint64_t)ros_mono_ms());
            if (wake != UINT64_MAX && t >= wake)
                continue;
            int ms = wake == UINT64_MAX ? -1 : wake - t > INT32_MAX ? INT32_MAX : (int)(wake - t);
            svc_lane_bell_wait(c->bell, c->bell_waiting, seen, ms);
            continue;
        }
        lock(c);
        while (!c->kick) {
            if (wake == UINT64_MAX) {
                pthread_cond_wait(&c->cv, &c->mu);
                continue;
            }
            if (((uint64_t)ros_mono_ms()) >= wake)
                break;
            struct timespec ts = {.tv_sec = (time_t)(wake / 1000),
                                  .tv_nsec = (long)(wake % 1000) * 1000000L};
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        unlock(c);
    }
}

uint32_t svc_client_outstanding(const svc_client *c)
{
    return c->nout;
}

int svc_client_member_of(const svc_client *c, uint64_t seq)
{
    for (const request *r = c->reqs.head; r; r = r->next)
        if (r->seq == seq)
            return r->member_idx;
    for (const request *r = c->done.head; r; r = r->next)
        if (r->seq == seq)
            return r->member_idx;
    return -1;
}

void svc_client_set_max_inflight(svc_client *c, uint32_t max_inflight)
{
    c->cfg.max_inflight = max_inflight ? max_inflight : DEFAULT_INFLIGHT;
}

int svc_client_members(const svc_client *c)
{
    svc_client *mc = (svc_client *)c; /* the mutex, not the client, changes */
    lock(mc);
    int n = 0;
    if (c->pending) {
        for (int i = 0; i < c->pending->n; i++)
            n += !c->pending->m[i].standby;
    } else {
        for (int i = 0; i < c->nmem; i++)
            n += !c->mem[i]->standby;
    }
    unlock(mc);
    return n;
}

int svc_client_connected(const svc_client *c)
{
    svc_client *mc = (svc_client *)c;
    int n = 0;
    lock(mc);
    for (int i = 0; i < c->nmem; i++)
        n += c->mem[i]->npipes > 0 && !c->mem[i]->standby;
    unlock(mc);
    return n;
}

void svc_client_get_stats(const svc_client *c, svc_client_stats *st)
{
    svc_client *mc = (svc_client *)c;
    memset(st, 0, sizeof *st);
    lock(mc);
    st->version = c->have_version ? c->version : 0;
    st->bad_messages = c->bad_msgs;
    st->stale_messages = c->stale_msgs;
    unlock(mc);
    st->parts_sent = c->parts_sent;
    st->resends = c->resends;
    st->busy = c->busy;
    st->parts_shm = c->parts_shm;
    st->parts_lane = c->parts_lane;
}

void svc_result_clear(svc_result *r)
{
    ros_vector_free(&r->out);
    memset(r, 0, sizeof *r);
    r->error_row = -1;
    r->member = -1;
}

/* ---------------------------------------------------------------- */
/* Discovery */

static void membership_free(membership *mb)
{
    if (!mb)
        return;
    free(mb->m);
    free(mb);
}

/*
 * Parses "members NAME VERSION MEMBER..." (service/README.md, "Discovery and
 * control"), allowing one trailing NUL and one trailing newline.  A MEMBER
 * is N=URL (N the instance number) or a bare URL (its number is its
 * position); a URL starts with its scheme, never with a digit.  Strict: the
 * name must be ours, the version decimal digits within 64 bits, N decimal
 * digits up to MEMBER_IDX_MAX, members separated by single spaces, URLs
 * 1..255 bytes, no control characters.  Returns 0 with *out (free with
 * membership_free), or -1.
 */
static int parse_membership(const char *name, const char *buf, size_t len, membership **out)
{
    *out = NULL;
    if (len && buf[len - 1] == '\0')
        len--;
    if (len && buf[len - 1] == '\n')
        len--;
    if (len > MEMBERSHIP_MSG_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)buf[i] < ' ' || buf[i] == 0x7f)
            return -1;
    size_t nl = strlen(name);
    if (len < 8 + nl + 2 || memcmp(buf, "members ", 8) != 0 || memcmp(buf + 8, name, nl) != 0 ||
        buf[8 + nl] != ' ')
        return -1;
    size_t pos = 8 + nl + 1;
    uint64_t version = 0;
    size_t digits = 0;
    while (pos < len && buf[pos] >= '0' && buf[pos] <= '9') {
        unsigned d = (unsigned)(buf[pos] - '0');
        if (version > (UINT64_MAX - d) / 10)
            return -1;
        version = version * 10 + d;
        pos++;
        digits++;
    }
    if (digits == 0 || (pos < len && buf[pos] != ' '))
        return -1;
    membership *mb = calloc(1, sizeof *mb);
    if (!mb)
        return -1;
    mb->version = version;
    int cap = 0;
    while (pos < len) {
        pos++; /* the space */
        size_t start = pos;
        long idx = mb->n;
        bool standby = false;
        if (pos < len && buf[pos] >= '0' && buf[pos] <= '9') {
            idx = 0;
            while (pos < len && buf[pos] >= '0' && buf[pos] <= '9') {
                idx = idx * 10 + (buf[pos] - '0');
                if (idx > MEMBER_IDX_MAX)
                    goto bad;
                pos++;
            }
            if (pos >= len || (buf[pos] != '=' && buf[pos] != '~'))
                goto bad;
            standby = buf[pos] == '~';
            start = ++pos;
        }
        while (pos < len && buf[pos] != ' ')
            pos++;
        size_t ul = pos - start;
        if (ul == 0 || ul >= URL_SIZE || mb->n >= MEMBERS_MAX)
            goto bad;
        if (mb->n == cap) {
            int ncap = cap ? cap * 2 : 4;
            svc_member *nm = realloc(mb->m, (size_t)ncap * sizeof *nm);
            if (!nm)
                goto bad;
            mb->m = nm;
            cap = ncap;
        }
        svc_member *m = &mb->m[mb->n];
        memset(m, 0, sizeof *m);
        m->idx = (int)idx;
        m->standby = standby;
        mb->n++;
        memcpy(m->url, buf + start, ul);
    }
    *out = mb;
    return 0;
bad:
    membership_free(mb);
    return -1;
}

/* Keeps mb for the pump when its version is above the last accepted one
 * (takes mb either way).  Caller holds c->mu. */
static bool accept_membership(svc_client *c, membership *mb)
{
    if (c->have_version && mb->version <= c->version) {
        c->stale_msgs++;
        membership_free(mb);
        return false;
    }
    c->have_version = true;
    c->version = mb->version;
    membership_free(c->pending);
    c->pending = mb;
    kick_locked(c);
    return true;
}

/* Asks the coordinator at ctl_url for the membership, within 2 s. */
static int ctl_members(svc_client *c, const char *ctl_url, membership **out, ros_error *err)
{
    *out = NULL;
    uint64_t start = ((uint64_t)ros_mono_ms());
    nng_socket s;
    char *reply = NULL;
    size_t rlen = 0;
    int rv = nng_req0_open(&s);
    if (rv != 0)
        return ros_error_set(err, ROS_ERR_CONNECTION, "could not open a socket: %s",
                             nng_strerror(rv));
    char cmd[NAME_MAX_LEN + 16];
    int cl = snprintf(cmd, sizeof cmd, "members %s", c->name);
    if ((rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, SUBSCRIBE_TIMEOUT_MS)) != 0 ||
        (rv = nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
        (rv = nng_socket_set_ms(s, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS)) != 0 ||
        (rv = nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 200)) != 0 ||
        (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, MEMBERSHIP_MSG_MAX + 2)) != 0 ||
        (rv = nng_dial(s, ctl_url, NULL, NNG_FLAG_NONBLOCK)) != 0 ||
        (rv = nng_send(s, cmd, (size_t)cl + 1, 0)) != 0)
        goto fail;
    uint64_t spent = ((uint64_t)ros_mono_ms()) - start;
    nng_duration left = spent >= SUBSCRIBE_TIMEOUT_MS ? 1 : (nng_duration)(SUBSCRIBE_TIMEOUT_MS - spent);
    if ((rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, left)) != 0 ||
        (rv = nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC)) != 0)
        goto fail;
    nng_close(s);
    if (parse_membership(c->name, reply, rlen, out) < 0) {
        ros_error_set(err, SVC_ERR_PROTOCOL_VIOLATION,
                      "coordinator at \"%s\" answered \"%.*s\" to \"members %s\"", ctl_url,
                      (int)(rlen > 200 ? 200 : rlen), reply, c->name);
        nng_free(reply, rlen);
        return -1;
    }
    nng_free(reply, rlen);
    return 0;
fail:
    nng_close(s);
    return ros_error_set(err, ROS_ERR_CONNECTION, "could not reach the coordinator at \"%s\": %s",
                         ctl_url, nng_strerror(rv));
}

int svc_client_subscribe(svc_client *c, const char *pub_url, const char *ctl_url, ros_error *err)
{
    if (c->sub_open)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                             "client of service \"%s\" is already subscribed", c->name);
    if (!pub_url || !ctl_url)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "subscribe needs two URLs");
    /* The subscription comes first, so that no push falls between the
     * answer to "members" and the first push received. */
    char prefix[NAME_MAX_LEN + 16];
    int pl = snprintf(prefix, sizeof prefix, "members %s ", c->name);
    int rv = nng_sub0_open(&c->sub);
    if (rv != 0)
        return ros_error_set(err, ROS_ERR_CONNECTION, "could not open a socket: %s",
                             nng_strerror(rv));
    if ((rv = nng_aio_alloc(&c->sub_aio, sub_cb, c)) != 0) {
        nng_close(c->sub);
        return ros_error_oom(err);
    }
    if ((rv = nng_socket_set(c->sub, NNG_OPT_SUB_SUBSCRIBE, prefix, (size_t)pl)) != 0 ||
        (rv = nng_socket_set_size(c->sub, NNG_OPT_RECVMAXSZ, MEMBERSHIP_MSG_MAX + 2)) != 0 ||
        (rv = nng_socket_set_ms(c->sub, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS)) != 0 ||
        (rv = nng_socket_set_ms(c->sub, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS)) != 0 ||
        (rv = nng_dial(c->sub, pub_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        ros_error_set(err, ROS_ERR_CONNECTION, "could not subscribe to \"%s\": %s", pub_url,
                      nng_strerror(rv));
        goto fail;
    }
    c->sub_open = true;
    nng_recv_aio(c->sub, c->sub_aio);
    membership *mb;
    if (ctl_members(c, ctl_url, &mb, err) < 0)
        goto fail;
    lock(c);
    accept_membership(c, mb);
    unlock(c);
    pump(c); /* apply it now */
    return 0;
fail:
    lock(c);
    c->closing = true;
    unlock(c);
    nng_aio_stop(c->sub_aio);
    nng_close(c->sub);
    nng_aio_free(c->sub_aio);
    c->sub_aio = NULL;
    c->sub_open = false;
    lock(c);
    c->closing = false;
    unlock(c);
    return -1;
}

/* ---------------------------------------------------------------- */
/* Close */

/* Sends CANCEL (job, op, attempt) to every connected member that holds our
 * work and waits at most CANCEL_WAIT_MS for the sends and answers. */
static void send_cancels(svc_client *c)
{
    if (c->nmem == 0)
        return;
    typedef struct cancel_op {
        nng_ctx ctx;
        nng_aio *aio;
        bool sending, receiving;
    } cancel_op;
    cancel_op *ops = calloc((size_t)c->nmem, sizeof *ops);
    if (!ops)
        return;
    svc_request_id id = {.job = c->cfg.job, .op = c->cfg.op, .seq = 0};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_CANCEL, &id);
    h.attempt = c->cfg.attempt;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (svc_frame_encode(&h, NULL, 0, &buf, &len, NULL) < 0) {
        free(ops);
        return;
    }
    uint64_t until = ((uint64_t)ros_mono_ms()) + CANCEL_WAIT_MS;
    for (int i = 0; i < c->nmem; i++) {
        member *m = c->mem[i];
        lock(c);
        bool wanted = m->npipes > 0 && m->nactive > 0;
        unlock(c);
        nng_msg *msg;
        if (!wanted || nng_ctx_open(&ops[i].ctx, m->sock) != 0)
            continue;
        if (nng_aio_alloc(&ops[i].aio, NULL, NULL) != 0) {
            nng_ctx_close(ops[i].ctx);
            continue;
        }
        if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, buf, len) != 0) {
            nng_aio_free(ops[i].aio);
            ops[i].aio = NULL;
            nng_ctx_close(ops[i].ctx);
            continue;
        }
        nng_aio_set_timeout(ops[i].aio, CANCEL_WAIT_MS);
        nng_aio_set_msg(ops[i].aio, msg);
        nng_ctx_send(ops[i].ctx, ops[i].aio);
        ops[i].sending = true;
    }
    free(buf);
    /* The worker answers CANCEL (PONG); waiting for it means the frame was
     * read before the socket closes. */
    for (int i = 0; i < c->nmem; i++) {
        if (!ops[i].sending)
            continue;
        nng_aio_wait(ops[i].aio);
        if (nng_aio_result(ops[i].aio) != 0) {
            nng_msg *msg = nng_aio_get_msg(ops[i].aio);
            if (msg)
                nng_msg_free(msg);
            continue;
        }
        uint64_t now = ((uint64_t)ros_mono_ms());
        nng_aio_set_timeout(ops[i].aio, now >= until ? 1 : (nng_duration)(until - now));
        nng_ctx_recv(ops[i].ctx, ops[i].aio);
        ops[i].receiving = true;
    }
    for (int i = 0; i < c->nmem; i++) {
        if (ops[i].receiving) {
            nng_aio_wait(ops[i].aio);
            if (nng_aio_result(ops[i].aio) == 0)
                nng_msg_free(nng_aio_get_msg(ops[i].aio));
        }
        if (ops[i].aio) {
            nng_aio_free(ops[i].aio);
            nng_ctx_close(ops[i].ctx);
        }
    }
    free(ops);
}

void svc_client_close(svc_client *c)
{
    if (!c)
        return;
    /* 1. discovery: nothing new is handed over */
    if (c->sub_open) {
        lock(c);
        c->closing = true;
        unlock(c);
        nng_aio_stop(c->sub_aio);
        nng_close(c->sub);
        nng_aio_free(c->sub_aio);
    }
    /* 2. queued work of ours (orphans of timed-out requests included) is
     * dropped by the instances */
    send_cancels(c);
    /* 3. sockets: every flight still out fails with NNG_ECLOSED; from
     * here on every member is on the closing list.  Lanes end first: their
     * instances' threads let go of them. */
    for (int i = 0; i < c->nmem; i++)
        if (c->mem[i]->lane_state == LANE_OPEN) {
            svc_lane_close(&c->mem[i]->lane);
            c->mem[i]->lane_state = LANE_OFF;
        }
    for (int i = 0; i < c->nmem; i++)
        member_remove(c, c->mem[i]);
    c->nmem = 0;
    /* 4. wait for the flights' callbacks, then free everything */
    for (member *m = c->closing_members; m; m = m->next_closing)
        for (flight *fl = m->active; fl; fl = fl->next)
            nng_aio_stop(fl->aio);
    while (c->closing_members) {
        member *m = c->closing_members;
        c->closing_members = m->next_closing;
        while (m->active) {
            flight *fl = m->active;
            m->active = fl->next;
            flight_destroy(fl);
        }
        member_free(m);
    }
    free(c->mem);
    while (c->reqs.head) {
        request *r = c->reqs.head;
        req_unlink(&c->reqs, r);
        request_free(r);
    }
    while (c->done.head) {
        request *r = c->done.head;
        req_unlink(&c->done, r);
        request_free(r);
    }
    membership_free(c->pending);
    while (c->nspare > 0)
        nng_msg_free(c->spare[--c->nspare]);
    c->bell = c->bell_waiting = NULL;
    svc_shm_seg_destroy(&c->lanes); /* no callback rings the bell any more */
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->name);
    free(c);
}

/*
 * client.h
 *    The service client: used by proxy operators and, through
 *    include/rosql/client.h, by C functions (getRosClient).
 *
 * One client talks to the ready instances of one service.  It has one nng
 * REQ socket per instance (one dialer each) and sends every request part on
 * its own context, asynchronously; the caller collects answers with
 * svc_client_poll.  A client is used by one thread at a time (the nng
 * callbacks run on nng's threads and only touch state under its mutex).
 *
 * Routing: each request goes to the ready instance with the fewest
 * outstanding request parts (ties: round robin).  svc_client_submit_prefer
 * names an instance for a request's first send instead (sticky routing: a
 * job restored from a checkpoint re-sends its requests to the instances
 * that computed, and cached, them); svc_client_member_of says where a
 * request went.
 *
 * Membership: svc_client_set_members replaces the set of instances (tests,
 * static endpoints); svc_client_subscribe applies the coordinator's pushes
 * (see "Discovery" in service/README.md) without restarting anything.
 * Added instances take traffic at once; requests outstanding on a removed
 * instance are re-sent elsewhere.
 *
 * Failures and retries: when the instance of an outstanding request dies
 * (its pipe closes), leaves the membership, or answers BUSY, the request is
 * re-sent to another instance after an exponential backoff (10 ms doubling,
 * at most 1 s; BUSY honours retry_after_ms) under the same request id
 * (job, op, seq): the instance may answer it from its result cache.  A
 * request that fails max_retries times (BUSY answers do not count) gets the
 * last error.  An ERROR answer (the handler failed) is not retried.  With no
 * ready instance a request waits for one.  Whatever happens, a request is
 * answered within timeout_ms of its submission: with its result, its error,
 * or 57014 `service "s" did not answer within N ms` (57P03 `service "s" has
 * no ready instance` when none was ever available during that time).
 *
 * Large batches are split into parts that fit max_frame
 * (svc_frame_split) and reassembled; the caller sees one result per
 * request.
 */
#ifndef SVC_CLIENT_H
#define SVC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rosql/vector.h>

#include "runtime/core/error.h"
#include "service/frame.h"

typedef struct svc_client_config {
    const char *service;      /* service name: messages, discovery topic */
    uint32_t max_inflight;    /* requests outstanding at once; 0 = 16 */
    uint32_t timeout_ms;      /* per request, from submission; 0 = 30000 */
    uint32_t max_retries;     /* re-sends after failures; default when config zeroed: 0 = none */
    size_t max_frame;         /* 0 = SVC_FRAME_DEFAULT_MAX */
    uint64_t job;             /* request id: job (0 for ad-hoc queries: use a random id) */
    uint32_t op;              /* request id: operator */
    uint32_t attempt;         /* sender's attempt (scope of CANCEL) */
} svc_client_config;

/* One instance of the service. */
typedef struct svc_member {
    int idx;                  /* instance number: the coordinator's N (service/README.md,
                                 "Discovery"), stable across restarts of the instance and of
                                 the client's process; a membership line without numbers
                                 gives the position in the line */
    char url[256];            /* nng URL of its REP socket */
    bool standby;             /* withdrawn by a scale-in, not yet released ("N~URL"):
                                 routed nothing but the restored requests that
                                 prefer it (svc_client_submit_prefer) */
} svc_member;

/* One finished request (svc_client_poll). */
typedef struct svc_result {
    uint64_t seq;             /* the request's seq */
    void *tag;                /* what the caller passed to svc_client_submit */
    int ok;                   /* 1: out holds nrows results; 0: error */
    ros_vector out;           /* ok: the result column (caller frees with ros_vector_free) */
    ros_error error;          /* !ok: why (remote errors keep their SQLSTATE) */
    int64_t error_row;        /* !ok: failing row of the request, -1 when none */
    uint32_t retries;         /* times it was re-sent */
    bool reused;              /* ok: every part's answer was reused by the instance (its
                                 result cache, or a duplicate already queued or running:
                                 SVC_FLAG_REUSED), not computed for this submission */
    int member;               /* instance number (svc_member.idx) that answered the first
                                 part (RESPONSE or ERROR); -1 when none did */
} svc_result;

typedef struct svc_client svc_client;

/* Creates a client with no members.  cfg's strings are copied. */
svc_client *svc_client_open(const svc_client_config *cfg, ros_error *err);

/* Replaces the membership with m[0..n). */
int svc_client_set_members(svc_client *c, const svc_member *m, int n, ros_error *err);

/*
 * Subscribes to the coordinator's membership pushes on pub_url (nng SUB) and
 * asks ctl_url (nng REQ) once for the current membership; from then on
 * every push for this service replaces the membership (a push with a version
 * not above the last applied one is ignored).  Returns 0, or -1 with err set
 * when the coordinator cannot be reached within 2 s.
 */
int svc_client_subscribe(svc_client *c, const char *pub_url, const char *ctl_url, ros_error *err);

/*
 * Sends a request: seq names it (with the config's job and op), method may
 * be NULL, flags are SVC_FLAG_ORDERED / SVC_FLAG_VOLATILE.  The client takes
 * args (it is left empty).  Returns 0 when sent or queued for sending, 1
 * when max_inflight requests are outstanding (nothing taken: poll first),
 * -1 with err set (e.g. a row over max_frame; nothing taken either).
 */
int svc_client_submit(svc_client *c, uint64_t seq, const char *method, uint32_t flags,
                      ros_batch *args, void *tag, ros_error *err);

/*
 * svc_client_submit, preferring an instance: the first send of each part
 * goes to the member whose idx is prefer_idx when it is in the membership
 * and connected.  A member that is in the membership but has not connected
 * since it was added (a client just opened: its connections come up in the
 * background) is waited for up to 500 ms.  Otherwise (absent, its
 * connection lost, or the wait over) the part is routed as usual, and so
 * are re-sends after a failure, BUSY or a move.  prefer_idx -1: no
 * preference (svc_client_submit).
 */
int svc_client_submit_prefer(svc_client *c, uint64_t seq, const char *method, uint32_t flags,
                             ros_batch *args, void *tag, int prefer_idx, ros_error *err);

/*
 * svc_client_submit_prefer for rows [first, last) of args, which the client
 * borrows instead of taking: the request is those rows (part ranges, a
 * result of last - first rows, error_row counted from first), encoded from
 * args whenever a part is sent or re-sent.  args (its columns and buffers)
 * must stay alive and unchanged until the request is returned by
 * svc_client_poll or the client is closed; the client never writes or frees
 * it.  This spares the caller a copy of rows it keeps anyway (a proxy's
 * staged rows).  Returns as svc_client_submit_prefer.
 */
int svc_client_submit_rows(svc_client *c, uint64_t seq, const char *method, uint32_t flags,
                           const ros_batch *args, uint32_t first, uint32_t last, void *tag,
                           int prefer_idx, ros_error *err);

/*
 * Changes the config's max_inflight (0 = the default).  Lowering it takes
 * nothing back: requests already outstanding finish; svc_client_submit
 * returns 1 until fewer than the new limit are.
 */
void svc_client_set_max_inflight(svc_client *c, uint32_t max_inflight);

/*
 * The instance number (svc_member.idx) that the outstanding request seq (its
 * first part) was last sent to; -1 when it was not sent yet, or seq is not
 * outstanding (never submitted, or already returned by svc_client_poll).
 */
int svc_client_member_of(const svc_client *c, uint64_t seq);

/*
 * Waits up to timeout_ms (0 = do not wait, -1 = until one is done) for a
 * finished request and moves it into *res.  Returns 1 when *res is filled,
 * 0 on timeout, -1 when nothing is outstanding.  Completion order (not
 * submission order): ordering is the caller's business.  Even with nothing
 * outstanding it applies a membership pushed since the last call.
 */
int svc_client_poll(svc_client *c, int timeout_ms, svc_result *res);

/* Requests outstanding (submitted, not yet returned by poll). */
uint32_t svc_client_outstanding(const svc_client *c);

/* Ready members now: the size of the latest membership (one accepted from
 * the coordinator but not applied yet counts). */
int svc_client_members(const svc_client *c);

/* Members with a live connection now (a member not up yet, or whose
 * instance died, has none and gets no traffic while another has one). */
int svc_client_connected(const svc_client *c);

/* Counters, for diagnostics and tests. */
typedef struct svc_client_stats {
    uint64_t version;         /* last membership version accepted, 0 = none */
    uint64_t bad_messages;    /* membership pushes ignored as malformed */
    uint64_t stale_messages;  /* pushes ignored: version not above the last one */
    uint64_t parts_sent;      /* request parts handed to an instance, re-sends included */
    uint64_t resends;         /* re-sends of finished requests (failures, BUSY, moves) */
    uint64_t busy;            /* BUSY answers */
    uint64_t parts_shm;       /* parts sent through shared memory (service/shm.h) */
    uint64_t parts_lane;      /* ... of them, posted into a doorbell lane (service/lane.h) */
} svc_client_stats;

void svc_client_get_stats(const svc_client *c, svc_client_stats *st);

/* For tests only (NULL otherwise): called on the caller's thread after a
 * request part was routed to the member at url and before it is sent, the
 * window in which that member's connection can close unnoticed. */
extern void (*svc_client_test_routed)(svc_client *c, const char *url);

/* Abandons outstanding requests (sends CANCEL to every member) and frees c. */
void svc_client_close(svc_client *c);

/* Frees what a result holds. */
void svc_result_clear(svc_result *r);

/* ---------------------------------------------------------------- */
/* The C-function API (include/rosql/client.h) over a client; for hosts
 * implementing ros_host_api.get_client.  client_api.c. */

typedef struct ros_client ros_client;

/*
 * Wraps c for C functions.  The wrapper owns c from now on (its seq numbers
 * start at 1; nobody else may submit on c).  NULL when out of memory (c is
 * then still the caller's).
 */
ros_client *svc_ros_client_wrap(svc_client *c);

/* Closes the client (svc_client_close) and frees every ros_call still
 * alive: the host calls it when no function can use the client any more. */
void svc_ros_client_free(ros_client *rc);

#endif /* SVC_CLIENT_H */

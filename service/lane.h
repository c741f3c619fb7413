/*
 * lane.h
 *    Doorbell lane: request and answer envelopes between a service client
 *    and a local worker through rings in the client's shared memory, with a
 *    futex as the doorbell, instead of an nng round trip per request part.
 *
 * The shared-memory lane (shm.h) already keeps the batches out of the
 * socket; what was left on the socket was a 120-byte SHM envelope each way,
 * and every envelope crossed nng's poll and task threads on both sides
 * (some 13 context switches per request part).  Over a doorbell lane the
 * client writes the envelope into a request ring and wakes the worker's
 * lane thread only when that thread sleeps; the worker writes its answer
 * envelope into the answer ring and bumps the client's bell, a futex word
 * the client's thread waits on.  The frames and everything about them
 * (ids, attempts, deadlines, BUSY, cache, duplicates) are unchanged.
 *
 * The client owns one lane block (a memfd, svc_shm_seg) with a bell at
 * SVC_LANE_BELL_OFF and up to SVC_LANE_MAX lane regions of SVC_LANE_BYTES,
 * one per local instance it talks to.  A lane is opened with a LANE frame
 * over nng (service/README.md, "Doorbell lane"); its worker maps the block
 * as it maps request segments (through /proc/PID/fd of the ipc peer).
 * Liveness stays with nng: a closed connection ends the lane on both sides.
 *
 * Everything read from the rings is validated (indices, lengths) and the
 * envelopes are decoded like frames off the socket, so a corrupt lane is an
 * error, never a crash.  Indices are free-running uint32 counters.
 */
#ifndef SVC_LANE_H
#define SVC_LANE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SVC_LANE_MAGIC 0x454e414cu /* "LANE" little-endian */
#define SVC_LANE_VERSION 1u

#define SVC_LANE_REQ_SLOTS 64u   /* requests posted and not yet taken, at most */
#define SVC_LANE_RESP_SLOTS 128u /* answers posted and not yet taken, at most */
#define SVC_LANE_REQ_MAX 120u    /* bytes of a request envelope (SVC_FRAME_SHM_SIZE) */
#define SVC_LANE_RESP_MAX 2032u  /* bytes of an answer frame in a slot (an ERROR fits) */

#define SVC_LANE_REQ_SLOT 128u   /* tag (8), envelope (120) */
#define SVC_LANE_RESP_SLOT 2048u /* tag (8), length (4), reserved (4), frame */
#define SVC_LANE_CTRL 448u       /* control words, one 64-byte line each */
#define SVC_LANE_BYTES                                                                             \
    (SVC_LANE_CTRL + SVC_LANE_REQ_SLOTS * SVC_LANE_REQ_SLOT + SVC_LANE_RESP_SLOTS * SVC_LANE_RESP_SLOT)

/* The lane block: segment header (64 bytes), bell line, lanes from 4096. */
#define SVC_LANE_BELL_OFF 64u
#define SVC_LANE_BELL_BYTES 64u
#define SVC_LANE_FIRST_OFF 4096u
#define SVC_LANE_MAX 32u
#define SVC_LANE_BLOCK_BYTES (SVC_LANE_FIRST_OFF + SVC_LANE_MAX * (size_t)SVC_LANE_BYTES)

/* A view of one lane region and the bell of its block (both mapped). */
typedef struct svc_lane {
    uint8_t *base;                 /* the region, SVC_LANE_BYTES */
    _Atomic uint32_t *bell;        /* the block's bell: bumped per answer */
    _Atomic uint32_t *bell_waiting; /* the client sleeps on the bell */
} svc_lane;

/* Views the region at base with the bell line at bell (both in one mapping
 * of a lane block). */
void svc_lane_view(svc_lane *l, uint8_t *base, uint8_t *bell);

/* Client: writes a fresh region's control words (magic, version, zeros). */
void svc_lane_init(svc_lane *l);

/* Worker: whether the region carries this version's magic. */
bool svc_lane_valid(const svc_lane *l);

/* Client: posts envelope env (len <= SVC_LANE_REQ_MAX) under tag and wakes
 * the worker when it sleeps.  -1 when the request ring is full. */
int svc_lane_post_request(svc_lane *l, uint64_t tag, const uint8_t *env, size_t len);

/* Worker: takes the next request into env (SVC_LANE_REQ_MAX bytes; *len
 * set).  1 taken, 0 none, -1 the indices are corrupt. */
int svc_lane_take_request(svc_lane *l, uint64_t *tag, uint8_t *env, size_t *len);

/* Worker: sleeps until a request is posted, the lane is closed or woken, or
 * timeout_ms passes. */
void svc_lane_wait_request(svc_lane *l, int timeout_ms);

/* Wakes the worker's lane thread (a close, or a stop on the worker's side). */
void svc_lane_wake_worker(svc_lane *l);

/* Client: marks the lane closed (the worker's thread then ends). */
void svc_lane_close(svc_lane *l);
bool svc_lane_closed(const svc_lane *l);

/* Worker: posts answer frame (len <= SVC_LANE_RESP_MAX) under tag, bumps
 * the bell and wakes the client when it sleeps.  -1 when the answer ring is
 * full or the indices are corrupt (the answer is dropped: the client's
 * timeout retries it).  Callers serialise posts to one lane. */
int svc_lane_post_answer(svc_lane *l, uint64_t tag, const uint8_t *frame, size_t len);

/* Client: takes the next answer into frame (SVC_LANE_RESP_MAX bytes).  1
 * taken, 0 none, -1 the indices or the length are corrupt. */
int svc_lane_take_answer(svc_lane *l, uint64_t *tag, uint8_t *frame, size_t *len);

/* Client: whether an answer is waiting. */
bool svc_lane_has_answer(const svc_lane *l);

/* The bell (client side), without a lane: read, bump and wake, sleep. */
uint32_t svc_lane_bell_read(_Atomic uint32_t *bell);
void svc_lane_bell_ring(_Atomic uint32_t *bell, _Atomic uint32_t *waiting);
/* Sleeps while the bell still reads seen, at most timeout_ms (< 0: no
 * limit). */
void svc_lane_bell_wait(_Atomic uint32_t *bell, _Atomic uint32_t *waiting, uint32_t seen, int timeout_ms);

#endif /* SVC_LANE_H */

/*
 * lane.c
 *    Rings and doorbells of a lane region (see lane.h).
 *
 * Region layout (offsets from its start, each control word on a 64-byte
 * line of its own so the two processes do not share a written line):
 *   0     uint32 magic "LANE", uint32 version
 *   64    req_head        written by the client
 *   128   req_tail        written by the worker
 *   192   worker_waiting  the worker's lane thread sleeps on req_head
 *   256   resp_head       written by the worker
 *   320   resp_tail       written by the client
 *   384   closed          set by the client
 *   448   request ring:  SVC_LANE_REQ_SLOTS x 128: uint64 tag, envelope
 *   ...   answer ring:   SVC_LANE_RESP_SLOTS x 2048: uint64 tag, uint32
 *         length, uint32 reserved, frame
 * Ordering: a slot is written before its ring's head is stored (release)
 * and read after the head is loaded (acquire); the waiting flags and the
 * counters they guard are sequentially consistent (a Dekker pair), so a
 * post either is seen by the sleeper's last check or changes the futex
 * word before it sleeps.
 */
#include "service/lane.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define OFF_REQ_HEAD 64
#define OFF_REQ_TAIL 128
#define OFF_WORKER_WAITING 192
#define OFF_RESP_HEAD 256
#define OFF_RESP_TAIL 320
#define OFF_CLOSED 384
#define OFF_REQ_RING SVC_LANE_CTRL
#define OFF_RESP_RING (SVC_LANE_CTRL + SVC_LANE_REQ_SLOTS * SVC_LANE_REQ_SLOT)

_Static_assert(OFF_CLOSED + 64 == SVC_LANE_CTRL, "control lines");
_Static_assert(SVC_LANE_REQ_MAX + 8 <= SVC_LANE_REQ_SLOT, "request slot");
_Static_assert(SVC_LANE_RESP_MAX + 16 <= SVC_LANE_RESP_SLOT, "answer slot");
_Static_assert(SVC_LANE_BYTES % 64 == 0, "region alignment");

static _Atomic uint32_t *word(const svc_lane *l, size_t off)
{
    return (_Atomic uint32_t *)(void *)(l->base + off);
}

/* Slot i (a free-running index) of a request (req) or answer ring. */
static uint8_t *slot(const svc_lane *l, bool req, uint32_t i)
{
    return req ? l->base + OFF_REQ_RING + (size_t)(i % SVC_LANE_REQ_SLOTS) * SVC_LANE_REQ_SLOT
               : l->base + OFF_RESP_RING + (size_t)(i % SVC_LANE_RESP_SLOTS) * SVC_LANE_RESP_SLOT;
}

/* Futex on a word of a shared mapping (not FUTEX_PRIVATE: two processes). */
static void futex_wait(_Atomic uint32_t *w, uint32_t seen, int timeout_ms)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    /* EAGAIN (the word changed), EINTR, ETIMEDOUT: all mean "look again" */
    (void)syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, seen, tp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    (void)syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void svc_lane_view(svc_lane *l, uint8_t *base, uint8_t *bell)
{
    l->base = base;
    l->bell = (_Atomic uint32_t *)(void *)bell;
    l->bell_waiting = (_Atomic uint32_t *)(void *)(bell + 4);
}

void svc_lane_init(svc_lane *l)
{
    memset(l->base, 0, SVC_LANE_CTRL);
    uint32_t mv[2] = {SVC_LANE_MAGIC, SVC_LANE_VERSION};
    memcpy(l->base, mv, sizeof mv);
}

bool svc_lane_valid(const svc_lane *l)
{
    uint32_t mv[2];
    memcpy(mv, l->base, sizeof mv);
    return mv[0] == SVC_LANE_MAGIC && mv[1] == SVC_LANE_VERSION;
}

int svc_lane_post_request(svc_lane *l, uint64_t tag, const uint8_t *env, size_t len)
{
    if (len > SVC_LANE_REQ_MAX)
        return -1;
    uint32_t head = atomic_load_explicit(word(l, OFF_REQ_HEAD), memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(word(l, OFF_REQ_TAIL), memory_order_acquire);
    if (head - tail >= SVC_LANE_REQ_SLOTS)
        return -1;
    uint8_t *s = slot(l, true, head);
    memcpy(s, &tag, 8);
    memcpy(s + 8, env, len);
    if (len < SVC_LANE_REQ_MAX)
        memset(s + 8 + len, 0, SVC_LANE_REQ_MAX - len);
    atomic_store(word(l, OFF_REQ_HEAD), head + 1);
    if (atomic_load(word(l, OFF_WORKER_WAITING)))
        futex_wake(word(l, OFF_REQ_HEAD));
    return 0;
}

int svc_lane_take_request(svc_lane *l, uint64_t *tag, uint8_t *env, size_t *len)
{
    uint32_t tail = atomic_load_explicit(word(l, OFF_REQ_TAIL), memory_order_relaxed);
    uint32_t head = atomic_load_explicit(word(l, OFF_REQ_HEAD), memory_order_acquire);
    if (head == tail)
        return 0;
    if (head - tail > SVC_LANE_REQ_SLOTS)
        return -1;
    const uint8_t *s = slot(l, true, tail);
    memcpy(tag, s, 8);
    memcpy(env, s + 8, SVC_LANE_REQ_MAX);
    *len = SVC_LANE_REQ_MAX;
    atomic_store_explicit(word(l, OFF_REQ_TAIL), tail + 1, memory_order_release);
    return 1;
}

void svc_lane_wait_request(svc_lane *l, int timeout_ms)
{
    uint32_t tail = atomic_load_explicit(word(l, OFF_REQ_TAIL), memory_order_relaxed);
    atomic_store(word(l, OFF_WORKER_WAITING), 1);
    uint32_t head = atomic_load(word(l, OFF_REQ_HEAD));
    if (head == tail && !svc_lane_closed(l))
        futex_wait(word(l, OFF_REQ_HEAD), head, timeout_ms);
    atomic_store(word(l, OFF_WORKER_WAITING), 0);
}

void svc_lane_wake_worker(svc_lane *l)
{
    futex_wake(word(l, OFF_REQ_HEAD));
}

void svc_lane_close(svc_lane *l)
{
    atomic_store(word(l, OFF_CLOSED), 1);
    futex_wake(word(l, OFF_REQ_HEAD));
}

bool svc_lane_closed(const svc_lane *l)
{
    return atomic_load(word(l, OFF_CLOSED)) != 0;
}

int svc_lane_post_answer(svc_lane *l, uint64_t tag, const uint8_t *frame, size_t len)
{
    if (len > SVC_LANE_RESP_MAX)
        return -1;
    uint32_t head = atomic_load_explicit(word(l, OFF_RESP_HEAD), memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(word(l, OFF_RESP_TAIL), memory_order_acquire);
    if (head - tail >= SVC_LANE_RESP_SLOTS)
        return -1; /* full, or a tail the client corrupted */
    uint8_t *s = slot(l, false, head);
    uint32_t n = (uint32_t)len, zero = 0;
    memcpy(s, &tag, 8);
    memcpy(s + 8, &n, 4);
    memcpy(s + 12, &zero, 4);
    memcpy(s + 16, frame, len);
    atomic_store(word(l, OFF_RESP_HEAD), head + 1);
    svc_lane_bell_ring(l->bell, l->bell_waiting);
    return 0;
}

int svc_lane_take_answer(svc_lane *l, uint64_t *tag, uint8_t *frame, size_t *len)
{
    uint32_t tail = atomic_load_explicit(word(l, OFF_RESP_TAIL), memory_order_relaxed);
    uint32_t head = atomic_load_explicit(word(l, OFF_RESP_HEAD), memory_order_acquire);
    if (head == tail)
        return 0;
    if (head - tail > SVC_LANE_RESP_SLOTS)
        return -1;
    const uint8_t *s = slot(l, false, tail);
    uint32_t n;
    memcpy(tag, s, 8);
    memcpy(&n, s + 8, 4);
    if (n > SVC_LANE_RESP_MAX)
        return -1;
    memcpy(frame, s + 16, n);
    *len = n;
    atomic_store_explicit(word(l, OFF_RESP_TAIL), tail + 1, memory_order_release);
    return 1;
}

bool svc_lane_has_answer(const svc_lane *l)
{
    return atomic_load_explicit(word(l, OFF_RESP_HEAD), memory_order_acquire) !=
           atomic_load_explicit(word(l, OFF_RESP_TAIL), memory_order_relaxed);
}

uint32_t svc_lane_bell_read(_Atomic uint32_t *bell)
{
    return atomic_load(bell);
}

void svc_lane_bell_ring(_Atomic uint32_t *bell, _Atomic uint32_t *waiting)
{
    atomic_fetch_add(bell, 1);
    if (atomic_load(waiting))
        futex_wake(bell);
}

void svc_lane_bell_wait(_Atomic uint32_t *bell, _Atomic uint32_t *waiting, uint32_t seen, int timeout_ms)
{
    atomic_store(waiting, 1);
    if (atomic_load(bell) == seen)
        futex_wait(bell, seen, timeout_ms);
    atomic_store(waiting, 0);
}

/*
 * shm.h
 *    Shared-memory lane between a service client and a local worker.
 *
 * Over ipc:// the batches of a large request part need not travel through
 * the socket: the client writes the request frame into a segment of its
 * own (a memfd, freed by the kernel when the last process holding it
 * exits), sends a 120-byte SHM envelope (service/frame.h) naming where it
 * lies and where the answer may go, and the worker maps the segment, reads
 * the batch in place and writes its answer frame there.  Two socket copies
 * and one decode copy on each side are saved per part; the frames
 * themselves are unchanged.
 *
 * The worker opens /proc/PID/fd/FD with PID the peer the kernel reports for
 * the ipc connection (SO_PEERCRED), so a caller can only name its own
 * memory, and checks the segment's header (magic and the random id of the
 * envelope) before it reads anything.  A worker that cannot map it (another
 * pid namespace, no /proc) answers SVC_ERR_SHM_UNAVAILABLE and the client
 * sends inline from then on.  See service/README.md, "Shared memory".
 */
#ifndef SVC_SHM_H
#define SVC_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/core/error.h"
#include "service/frame.h"

/* SQLSTATE of a worker that cannot map the caller's segment (system_error):
 * the caller falls back to frames inline. */
#define SVC_ERR_SHM_UNAVAILABLE "58000"

/* SQLSTATE of an answer that does not fit the answer area a request over a
 * doorbell lane offered (service/lane.h); the ERROR's row field carries the
 * bytes it needs, and the caller asks again with that much room. */
#define SVC_ERR_SHM_TOO_SMALL "58R01"

/* Bytes of a segment's own header; frames start after it. */
#define SVC_SHM_SEG_HEADER 64

/* ---------------------------------------------------------------- */
/* The client's side: a segment it owns */

typedef struct svc_shm_seg {
    int fd;        /* memfd, -1 when none */
    uint64_t id;   /* random, repeated in the segment's header */
    uint8_t *base; /* mapping, read/write */
    size_t size;
} svc_shm_seg;

/* Creates a segment of at least size bytes (rounded up to pages) and writes
 * its header.  Returns 0, or -1 with err set; s is left empty on failure. */
int svc_shm_seg_create(svc_shm_seg *s, size_t size, ros_error *err);

/* Unmaps and closes s (nothing when empty) and leaves it empty. */
void svc_shm_seg_destroy(svc_shm_seg *s);

/* ---------------------------------------------------------------- */
/* The worker's side: segments of callers, mapped once and kept */

typedef struct svc_shm_maps svc_shm_maps;
typedef struct svc_shm_map svc_shm_map;

/* A cache of at most cap mappings (the least recently used one without a
 * user is unmapped to make room).  NULL when out of memory. */
svc_shm_maps *svc_shm_maps_new(unsigned cap);

/* Unmaps everything (no mapping may be in use) and frees ms. */
void svc_shm_maps_free(svc_shm_maps *ms);

/*
 * The mapping of the segment ref names in process pid, mapped now or found
 * in the cache, with one more user.  Checks that the descriptor is a
 * regular file of ref->seg_size bytes whose header carries ref->seg_id.
 * NULL with err set (SVC_ERR_SHM_UNAVAILABLE) otherwise.  Thread-safe.
 */
svc_shm_map *svc_shm_attach(svc_shm_maps *ms, pid_t pid, const svc_shm_ref *ref, ros_error *err);

/* Start of a mapping (its size is the reference's seg_size). */
uint8_t *svc_shm_base(const svc_shm_map *m);

/* One more user of m (held by the caller already).  Thread-safe. */
void svc_shm_retain(svc_shm_maps *ms, svc_shm_map *m);

/* Drops a user taken by svc_shm_attach or svc_shm_retain.  Thread-safe. */
void svc_shm_release(svc_shm_maps *ms, svc_shm_map *m);

/* Unmaps the unused mappings of callers that exited or that went unused
 * for a while (the worker calls it every few seconds while idle), so that a
 * caller's memory is not kept alive by the worker.  Thread-safe. */
void svc_shm_sweep(svc_shm_maps *ms);

/* Mappings held now (for tests and diagnostics). */
unsigned svc_shm_mapped(svc_shm_maps *ms);

#endif /* SVC_SHM_H */

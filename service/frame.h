/*
 * frame.h
 *    The versioned binary frame of RpcOperator services: a fixed 64-byte
 *    header (magic, version, kind, flags, request id, part, deadline) and a
 *    payload holding a column batch in the layout of include/rosql/vector.h.
 *
 * The byte layout is specified in service/README.md ("Wire frame"); the
 * offsets below and that table must agree.  Everything is little-endian and
 * every buffer of a batch starts on an 8-byte boundary of the frame, so a
 * float column can be handed to a handler (or a GPU copy) in place.
 *
 * Decoding validates the whole frame before it allocates anything and never
 * reads outside [buf, buf + len): a malformed frame is an error with SQLSTATE
 * SVC_ERR_PROTOCOL_VIOLATION, a frame over the size limit one with
 * SVC_ERR_PROGRAM_LIMIT, so a worker can count them apart and answer both
 * with an ERROR frame (svc_frame_encode_error) and keep serving.
 */
#ifndef SVC_FRAME_H
#define SVC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rosql/vector.h>

#include "runtime/core/error.h"

/* ---------------------------------------------------------------- */
/* Constants of the wire format (version 1) */

#define SVC_FRAME_MAGIC "ROSF"            /* bytes 0..3 */
#define SVC_FRAME_VERSION 1               /* the only version this build speaks */
#define SVC_FRAME_HEADER_SIZE 64          /* fixed header, method string follows */
#define SVC_FRAME_METHOD_MAX 1024         /* longest method/argument string, bytes */
#define SVC_FRAME_TEXT_MAX 511            /* longest message/detail/hint of an ERROR */
#define SVC_FRAME_DEFAULT_MAX (64u << 20) /* limit used when max_frame is 0 */
#define SVC_FRAME_ROW_NONE (-1)           /* ERROR frame names no failing row */

/* SQLSTATEs of frame errors (PostgreSQL's values). */
#define SVC_ERR_PROTOCOL_VIOLATION "08P01" /* malformed frame */
#define SVC_ERR_PROGRAM_LIMIT "54000"      /* frame or row over the size limit */

/* What a frame is.  Numbers are part of the wire format: never renumber. */
typedef enum svc_frame_kind {
    SVC_KIND_NONE = 0,     /* never on the wire; "no header" after a failed decode */
    SVC_KIND_REQUEST = 1,  /* batch of arguments for a handler */
    SVC_KIND_RESPONSE = 2, /* batch of results, same rows as the request part */
    SVC_KIND_ERROR = 3,    /* SQLSTATE, message, detail, hint, failing row */
    SVC_KIND_BUSY = 4,     /* queue full: status (queue depth, retry hint) */
    SVC_KIND_CANCEL = 5,   /* drop queued requests of (job, op, attempt) */
    SVC_KIND_PING = 6,     /* readiness probe */
    SVC_KIND_PONG = 7,     /* answer to PING: status (state, queue depth) */
    SVC_KIND_SHM = 8,      /* envelope: the REQUEST or RESPONSE it stands for lies in the
                              caller's shared memory (svc_shm_ref; service/shm.h) */
    SVC_KIND_LANE = 9      /* open a doorbell lane: the svc_shm_ref names its region
                              [off, +len) and the bell line [resp_off, +resp_cap) in the
                              caller's lane block (service/lane.h); answered by PONG */
} svc_frame_kind;

#define SVC_KIND_MAX 9

/* Payload of a SHM envelope: 56 bytes. */
#define SVC_FRAME_SHM_REF_SIZE 56
/* The whole envelope (header, no method, reference). */
#define SVC_FRAME_SHM_SIZE (SVC_FRAME_HEADER_SIZE + SVC_FRAME_SHM_REF_SIZE)

/*
 * Where a frame lies in a shared-memory segment of the caller (a memfd the
 * worker opens through /proc/PID/fd/FD, PID being the ipc peer the kernel
 * names, so a caller can only point at its own memory).  A request's
 * envelope names the request frame [off, off + len) and the area
 * [resp_off, resp_off + resp_cap) where the answer may be written; the
 * answer's envelope names the answer frame [off, off + len) (fd and the
 * resp fields 0).  Offsets are multiples of 8; both ranges lie within
 * seg_size and do not overlap.
 */
typedef struct svc_shm_ref {
    uint32_t fd;       /* descriptor number in the caller's process */
    uint64_t seg_id;   /* random id the segment's own header repeats */
    uint64_t seg_size; /* bytes of the segment */
    uint64_t off;      /* the frame */
    uint64_t len;
    uint64_t resp_off; /* room for the answer (requests only) */
    uint64_t resp_cap;
} svc_shm_ref;

/*
 * Flags.  Bits 0..15 must be understood: a frame with an unknown one is
 * rejected.  Bits 16..31 are advisory: unknown ones are ignored, so a later
 * version can add hints old workers may skip.
 */
#define SVC_FLAG_ORDERED (1u << 0)   /* results must keep the request's row order */
#define SVC_FLAG_VOLATILE (1u << 1)  /* not cacheable: never answer from the result cache */
#define SVC_FLAG_LAST_PART (1u << 2) /* last part of a (possibly split) batch */
#define SVC_FLAG_ALONE (1u << 3)     /* run in a handler call of its own, never batched
                                        with other requests (isolating a failing row) */
#define SVC_FLAGS_REQUIRED_MASK 0x0000ffffu
#define SVC_FLAGS_KNOWN (SVC_FLAG_ORDERED | SVC_FLAG_VOLATILE | SVC_FLAG_LAST_PART | SVC_FLAG_ALONE)

/* Advisory flags (bits 16..31). */
#define SVC_FLAG_REUSED (1u << 16) /* RESPONSE: not computed for this request: answered from
                                      the result cache, or by a request of the same id and
                                      content already queued or running when it arrived */
#define SVC_FLAG_NO_STORE (1u << 17) /* REQUEST: the asker will not ask for this answer again
                                        once it has it (an ad-hoc query: its job id is drawn
                                        at random), so the worker need not keep it in its
                                        result cache; lookups and duplicates are unchanged.
                                        Its asker never sends other rows under the same id,
                                        so the worker hashes its content only to compare it
                                        with an answer or request of that id it holds */

/*
 * Name of a question.  seq does not depend on the attempt, so a retry, a
 * replay after restore or a reroute asks under the same name and a service
 * may answer it from its cache (keyed by id plus part index plus a digest of
 * the part's content, svc_frame_digest: after a restore the same name may
 * carry other rows, which must be computed afresh).
 */
typedef struct svc_request_id {
    uint64_t job; /* job id (catalog) */
    uint32_t op;  /* operator id within the job's plan */
    uint64_t seq; /* per-operator sequence, stable across attempts */
} svc_request_id;

/* The decoded header. */
typedef struct svc_frame_header {
    uint16_t version;     /* SVC_FRAME_VERSION */
    uint16_t kind;        /* svc_frame_kind */
    uint32_t flags;       /* SVC_FLAG_* */
    svc_request_id id;    /* the question's name */
    uint32_t attempt;     /* sender's attempt number: CANCEL scope, diagnostics; not part of id */
    uint32_t part_index;  /* this part of a split batch, 0-based */
    uint32_t part_count;  /* parts in all, 0 = not known yet (LAST_PART ends) */
    uint64_t deadline_ms; /* unix time in ms after which the answer is useless, 0 = none */
    uint32_t method_len;  /* bytes of method, at most SVC_FRAME_METHOD_MAX */
    char method[SVC_FRAME_METHOD_MAX + 1]; /* handler/method argument, NUL-terminated, no NUL inside */
    uint64_t payload_len; /* payload bytes; set by encode and decode */
} svc_frame_header;

/* Row range [start, end) of a batch. */
typedef struct svc_row_range {
    uint32_t start; /* first row */
    uint32_t end;   /* one past the last row */
} svc_row_range;

/* Worker state carried by PONG (and BUSY). Wire numbers: never renumber. */
typedef enum svc_state {
    SVC_STATE_UNKNOWN = 0,
    SVC_STATE_STARTING = 1, /* loading the handler */
    SVC_STATE_WARMING = 2,  /* running warm-up batches */
    SVC_STATE_READY = 3,    /* serving */
    SVC_STATE_DRAINING = 4  /* finishing queued work, accepting none */
} svc_state;

#define SVC_STATE_MAX 4

/* Payload of BUSY and PONG frames. */
typedef struct svc_status {
    uint32_t state;          /* svc_state */
    uint32_t queue_depth;    /* requests queued now */
    uint32_t queue_capacity; /* bound of the queue, 0 = unbounded or unknown */
    uint32_t retry_after_ms; /* BUSY: suggested back-off, 0 = none */
    uint64_t requests;       /* request parts answered since start */
    uint64_t rows;           /* rows computed since start */
    uint32_t inflight;       /* request parts being computed now */
    uint32_t malformed;      /* malformed or oversized frames received since start */
} svc_status;

/* A decoded frame of any kind. */
typedef struct svc_frame {
    svc_frame_header h; /* header; h.kind says which member below is meaningful */
    ros_batch batch;    /* REQUEST, RESPONSE: the batch (empty otherwise) */
    bool borrowed;      /* batch buffers point into the received buffer (view) */
    svc_status status;  /* BUSY, PONG */
    ros_error remote;   /* ERROR: code, message, detail, hint of the remote failure */
    int64_t error_row;  /* ERROR: failing row of the request part, SVC_FRAME_ROW_NONE if none */
    svc_shm_ref shm;    /* SHM: where the frame it stands for lies */
} svc_frame;

/* ---------------------------------------------------------------- */
/* Headers */

/*
 * Initialises h for a frame of the given kind answering/asking id (id may be
 * NULL: all zero): version 1, single part (index 0 of 1, LAST_PART), no
 * deadline, no method.  Cannot fail.
 */
void svc_frame_header_init(svc_frame_header *h, svc_frame_kind kind, const svc_request_id *id);

/*
 * Initialises out as the header of a reply of the given kind to req: same
 * request id, attempt and part, LAST_PART and ORDERED copied, no method, no
 * deadline.  Cannot fail.
 */
void svc_frame_reply_header(svc_frame_header *out, const svc_frame_header *req, svc_frame_kind kind);

/*
 * Sets the method string (len bytes of s, no NUL inside).  Returns 0, or -1
 * with err set (22023) when it is too long or holds a NUL; h is unchanged on
 * failure.
 */
int svc_frame_set_method(svc_frame_header *h, const char *s, size_t len, ros_error *err);

/* Sets part_index/part_count and the LAST_PART flag to match.  Cannot fail. */
void svc_frame_set_part(svc_frame_header *h, uint32_t index, uint32_t count);

/* ---------------------------------------------------------------- */
/* Sizes and splitting */

/*
 * Returns the payload bytes that rows [start, end) of b encode to (a
 * column's validity bitmap is sent only when a row of the range is NULL), or
 * SIZE_MAX when b cannot be encoded (unknown type, a column shorter than the
 * batch, missing buffers) or the range is out of bounds.
 */
size_t svc_frame_rows_size(const ros_batch *b, uint32_t start, uint32_t end);

/* Same, for the whole batch. */
size_t svc_frame_batch_size(const ros_batch *b);

/*
 * Returns the exact size of the whole frame (header, method, payload) that
 * svc_frame_encode(h, b, ...) produces; b may be NULL for kinds without a
 * batch.  SIZE_MAX when b cannot be encoded.
 */
size_t svc_frame_size(const svc_frame_header *h, const ros_batch *b);

/*
 * Cuts b into consecutive row ranges whose frames (with h's method) each fit
 * in max_frame bytes (0 = SVC_FRAME_DEFAULT_MAX), greedily taking as many
 * rows as fit.  A batch of zero rows gives one empty range.  On success
 * returns 0 and *parts (malloc'd, the caller frees) with *nparts entries.
 * Fails with -1, err set and *parts NULL when a single row does not fit
 * (54000, naming the row), b cannot be encoded (XX000) or memory runs out.
 */
int svc_frame_split(const svc_frame_header *h, const ros_batch *b, size_t max_frame,
                    svc_row_range **parts, uint32_t *nparts, ros_error *err);

/*
 * svc_frame_split for rows [first, last) of b: the ranges returned are rows
 * of b (the first starts at first, the last ends at last; first == last
 * gives one empty range), and a row that does not fit is named by its place
 * in the range (row - first).  Fails as svc_frame_split does, and with XX000
 * when the range is not within b.
 */
int svc_frame_split_rows(const svc_frame_header *h, const ros_batch *b, uint32_t first,
                         uint32_t last, size_t max_frame, svc_row_range **parts,
                         uint32_t *nparts, ros_error *err);

/* ---------------------------------------------------------------- */
/* Encoding.  All return 0 on success, -1 with err set; *out is NULL and
 * *outlen 0 on failure.  Output is malloc'd (free it) and at least 8-byte
 * aligned.  The frame's payload_len is computed, h->payload_len is ignored. */

/*
 * Encodes a frame of kind REQUEST or RESPONSE with rows [start, end) of b, or
 * CANCEL or PING (b must be NULL).  Errors: header fields out of range
 * (22023), b not encodable (XX000), the frame over max_frame (54000, "frame
 * of N bytes exceeds the limit of M bytes"), out of memory.
 */
int svc_frame_encode_rows(const svc_frame_header *h, const ros_batch *b, uint32_t start,
                          uint32_t end, size_t max_frame, uint8_t **out, size_t *outlen,
                          ros_error *err);

/* Same, for every row of b (b may be NULL for CANCEL and PING). */
int svc_frame_encode(const svc_frame_header *h, const ros_batch *b, size_t max_frame,
                     uint8_t **out, size_t *outlen, ros_error *err);

/*
 * Writes the frame of svc_frame_encode_rows into buf, which must hold exactly
 * size == svc_frame_size bytes of it (use for an nng_msg body).  Same errors,
 * buf contents undefined on failure.
 */
int svc_frame_write_rows(const svc_frame_header *h, const ros_batch *b, uint32_t start,
                         uint32_t end, size_t max_frame, uint8_t *buf, size_t size,
                         ros_error *err);

/*
 * Encodes an ERROR frame (h->kind must be SVC_KIND_ERROR) carrying remote's
 * code, message, detail and hint (each cut to SVC_FRAME_TEXT_MAX bytes) and
 * the failing row (SVC_FRAME_ROW_NONE or 0..UINT32_MAX-1).  A remote without
 * an error set is sent as XX000 "unknown error".
 */
int svc_frame_encode_error(const svc_frame_header *h, const ros_error *remote, int64_t row,
                           size_t max_frame, uint8_t **out, size_t *outlen, ros_error *err);

/*
 * Writes the SHM envelope standing for the frame of header h (its id,
 * attempt, part and flags are copied; kind SHM, no method) with reference
 * ref into buf, which holds SVC_FRAME_SHM_SIZE bytes.  Cannot fail: the
 * caller built ref (svc_frame_decode checks it on the other side).
 */
void svc_frame_write_shm(const svc_frame_header *h, const svc_shm_ref *ref, uint8_t *buf);

/* The same for a LANE frame (kind LANE, the reference naming a lane). */
void svc_frame_write_lane(const svc_frame_header *h, const svc_shm_ref *ref, uint8_t *buf);

/* Encodes a BUSY or PONG frame (h->kind) carrying st. */
int svc_frame_encode_status(const svc_frame_header *h, const svc_status *st, size_t max_frame,
                            uint8_t **out, size_t *outlen, ros_error *err);

/* ---------------------------------------------------------------- */
/* Decoding */

/*
 * Validates and decodes a frame of len bytes.  The batch of REQUEST and
 * RESPONSE frames is copied into ros_vectors owned by f (free with
 * svc_frame_clear).  Returns 0, or -1 with err set:
 *   54000  len or the header's total exceeds max_frame (0 = default);
 *   08P01  anything malformed: truncation, bad magic, unknown version, kind,
 *          required flag, type or column flag, nonzero reserved fields,
 *          inconsistent part fields or lengths, offsets not starting at 0,
 *          decreasing or not ending at the data length, real[] rows not a
 *          whole number of floats, bool bytes other than 0/1, a NULL-typed
 *          column with a non-NULL row, trailing bytes;
 *   53200  out of memory.
 * On failure f holds no allocation (batch empty); f->h is filled (kind not
 * SVC_KIND_NONE) when the header itself was valid, so a worker can answer
 * under the request's id, and is all zero otherwise.
 */
int svc_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, svc_frame *f,
                     ros_error *err);

/*
 * Like svc_frame_decode, but when buf is 8-byte aligned the batch's vectors
 * point into buf instead of owning copies (f->borrowed is true): buf must
 * outlive f and the vectors must not be written, grown or freed one by one.
 * When buf is not aligned this copies, as svc_frame_decode does.
 */
int svc_frame_decode_view(const uint8_t *buf, size_t len, size_t max_frame, svc_frame *f,
                          ros_error *err);

/* Frees what a decode allocated and leaves f empty. Safe on an empty f. */
void svc_frame_clear(svc_frame *f);

/*
 * The content digest of a request part: svc_hash64 of its payload (the
 * encoded batch, bytes as received) seeded with svc_hash64 of its method
 * string.  buf and len are a frame that decoded with header h (the payload
 * is its last h->payload_len bytes).  Two parts whose method and batch bytes
 * are equal have equal digests; any other two, equal ones with a chance of
 * about 2^-64.  The worker keys its result cache and duplicates by request
 * id, part index and this digest.
 */
uint64_t svc_frame_digest(const svc_frame_header *h, const uint8_t *buf, size_t len);

/*
 * A 64-bit hash of len bytes at data (any alignment) with a seed: 64 bytes
 * per step in four independent lanes of 128-bit multiplications, memory
 * speed on large buffers (about 20 GB/s), the same value on every host.
 * Well mixed but not cryptographic: not meant to resist crafted input.
 */
uint64_t svc_hash64(const void *data, size_t len, uint64_t seed);

/* Name of a kind ("request", ...), "unknown" for other numbers. */
const char *svc_frame_kind_name(uint16_t kind);

/* ---------------------------------------------------------------- */
/* Batches (reassembly of split parts) */

/*
 * Appends every row of src to dst.  dst must have src's column count and
 * types, or be empty (ncols 0, nrows 0: it takes src's columns).  Each
 * buffer is copied with one memcpy (validity bits shifted into place; src
 * columns without a bitmap count as all valid) and dst's columns grow
 * geometrically and keep a validity bitmap, so many small appends copy each
 * row O(1) times.  Values of NULL rows are copied as they are.  Returns 0,
 * or -1 with err set (42804 on a shape mismatch, 54000 past 2^32-2 rows or
 * bytes, 53200 out of memory); dst's row count is unchanged on failure.
 */
int svc_batch_append(ros_batch *dst, const ros_batch *src, ros_error *err);

/* Frees the columns of b and leaves it empty. */
void svc_batch_free(ros_batch *b);

#endif /* SVC_FRAME_H */

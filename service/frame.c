/*
 * frame.c
 *    Encoding, validation and decoding of the service wire frame.
 *
 * The layout is specified in service/README.md.  Encoding writes into a
 * buffer sized exactly by the same functions that predict sizes, so the
 * prediction cannot drift from the output.  Decoding is two passes: a pure
 * validation of the whole buffer (bounds, arithmetic in uint64_t checked
 * against the remaining length before every step) and then materialisation,
 * which can only fail for memory.
 */
#include "frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the service frame stores columns in host order and assumes a little-endian host"
#endif

/* ---------------------------------------------------------------- */
/* Header field offsets (service/README.md, "Header") */

#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_KIND 6
#define OFF_FLAGS 8
#define OFF_METHOD_LEN 12
#define OFF_JOB 16
#define OFF_SEQ 24
#define OFF_OP 32
#define OFF_ATTEMPT 36
#define OFF_PART_INDEX 40
#define OFF_PART_COUNT 44
#define OFF_DEADLINE 48
#define OFF_PAYLOAD_LEN 56

/* Batch payload: ncols, nrows, then one 8-byte descriptor per column. */
#define BATCH_HEAD 8
#define COLDESC_SIZE 8
#define COLFLAG_VALIDITY 1u

/* ERROR payload: code[5] + 3 zero bytes, row, three text lengths. */
#define ERROR_HEAD 24
#define ERROR_ROW_NONE 0xffffffffu

/* BUSY and PONG payload: four uint32. */
#define STATUS_SIZE 40

/* Most rows a batch may hold: offsets need nrows + 1 uint32 entries. */
#define MAX_ROWS (UINT32_MAX - 1)

/* svc_batch_append grows columns x4 below this many rows, x2 above. */
#define GROW_FAST_ROWS 65536

/* One column as validation found it: where its buffers are in the payload. */
typedef struct col_layout {
    ros_type type;
    bool has_validity;
    uint32_t data_len;   /* varlen data bytes */
    uint64_t validity;   /* payload offsets of the buffers */
    uint64_t values;     /* fixed values or varlen offsets */
    uint64_t data;       /* varlen data */
} col_layout;

static inline uint64_t pad8(uint64_t n);
static inline void put16(uint8_t *p, uint16_t v);
static inline void put32(uint8_t *p, uint32_t v);
static inline void put64(uint8_t *p, uint64_t v);
static inline uint16_t get16(const uint8_t *p);
static inline uint32_t get32(const uint8_t *p);
static inline uint64_t get64(const uint8_t *p);
static size_t frame_limit(size_t max_frame);
static uint64_t header_bytes(const svc_frame_header *h);
static int check_batch(const ros_batch *b, ros_error *err);
static bool bits_all_set(const uint8_t *v, uint32_t start, uint32_t end);
static bool col_has_validity(const ros_vector *v, uint32_t start, uint32_t end);
static uint64_t rows_payload(const ros_batch *b, uint32_t start, uint32_t end);
static int check_header_out(const svc_frame_header *h, ros_error *err);
static int check_limit(uint64_t total, size_t max_frame, ros_error *err);
static void write_header(uint8_t *p, const svc_frame_header *h, uint64_t payload_len);
static void write_rows(uint8_t *p, const ros_batch *b, uint32_t start, uint32_t end);
static void copy_bits(uint8_t *dst, const uint8_t *src, uint32_t start, uint32_t n);
static int alloc_frame(uint64_t total, uint8_t **out, size_t *outlen, ros_error *err);
static int malformed(ros_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int read_header(const uint8_t *buf, size_t len, size_t max_frame, svc_frame_header *h,
                       ros_error *err);
static int validate_batch(const uint8_t *p, uint64_t n, col_layout **cols, ros_error *err);
static int materialise_batch(const uint8_t *p, uint64_t n, const col_layout *cols, bool view,
                             ros_batch *out, ros_error *err);
static int decode_error_body(const uint8_t *p, uint64_t n, svc_frame *f, ros_error *err);
static int decode_status_body(const uint8_t *p, uint64_t n, svc_frame *f, ros_error *err);
static int decode(const uint8_t *buf, size_t len, size_t max_frame, bool view, svc_frame *f,
                  ros_error *err);
static bool valid_sqlstate(const uint8_t *c);
static size_t text_len(const char *s);

/* ---------------------------------------------------------------- */
/* Little helpers */

static inline uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

static size_t frame_limit(size_t max_frame)
{
    return max_frame ? max_frame : SVC_FRAME_DEFAULT_MAX;
}

/* Header plus the method string padded to 8. */
static uint64_t header_bytes(const svc_frame_header *h)
{
    return SVC_FRAME_HEADER_SIZE + pad8(h->method_len);
}

const char *svc_frame_kind_name(uint16_t kind)
{
    static const char *const names[] = {"none", "request", "response", "error",
                                        "busy", "cancel", "ping", "pong", "shm", "lane"};
    return kind <= SVC_KIND_MAX ? names[kind] : "unknown";
}

static int malformed(ros_error *err, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ros_error_set(err, SVC_ERR_PROTOCOL_VIOLATION, "malformed frame: %s", what);
}

static bool valid_sqlstate(const uint8_t *c)
{
    for (int i = 0; i < 5; i++)
        if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'A' && c[i] <= 'Z')))
            return false;
    return true;
}

/* strlen cut to SVC_FRAME_TEXT_MAX. */
static size_t text_len(const char *s)
{
    size_t n = strnlen(s, SVC_FRAME_TEXT_MAX + 1);
    return n > SVC_FRAME_TEXT_MAX ? SVC_FRAME_TEXT_MAX : n;
}

/* ---------------------------------------------------------------- */
/* Headers */

void svc_frame_header_init(svc_frame_header *h, svc_frame_kind kind, const svc_request_id *id)
{
    memset(h, 0, sizeof *h);
    h->version = SVC_FRAME_VERSION;
    h->kind = (uint16_t)kind;
    if (id)
        h->id = *id;
    h->part_count = 1;
    h->flags = SVC_FLAG_LAST_PART;
}

void svc_frame_reply_header(svc_frame_header *out, const svc_frame_header *req, svc_frame_kind kind)
{
    svc_frame_header_init(out, kind, &req->id);
    out->attempt = req->attempt;
    out->part_index = req->part_index;
    out->part_count = req->part_count;
    out->flags = req->flags & (SVC_FLAG_LAST_PART | SVC_FLAG_ORDERED);
}

int svc_frame_set_method(svc_frame_header *h, const char *s, size_t len, ros_error *err)
{
    if (len > SVC_FRAME_METHOD_MAX)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                             "method string of %zu bytes exceeds the limit of %d bytes", len,
                             SVC_FRAME_METHOD_MAX);
    if (len && memchr(s, '\0', len))
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "method string contains a zero byte");
    if (len)
        memcpy(h->method, s, len);
    h->method[len] = '\0';
    h->method_len = (uint32_t)len;
    return 0;
}

void svc_frame_set_part(svc_frame_header *h, uint32_t index, uint32_t count)
{
    h->part_index = index;
    h->part_count = count;
    if (count && index + 1 == count)
        h->flags |= SVC_FLAG_LAST_PART;
    else
        h->flags &= ~SVC_FLAG_LAST_PART;
}

/* The checks decode applies, applied before encoding so that what we send
 * is always accepted. */
static int check_header_out(const svc_frame_header *h, ros_error *err)
{
    if (h->kind == SVC_KIND_NONE || h->kind > SVC_KIND_MAX)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid frame kind %u", h->kind);
    if ((h->flags & SVC_FLAGS_REQUIRED_MASK) & ~SVC_FLAGS_KNOWN)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "unknown frame flags 0x%x",
                             (unsigned)(h->flags & SVC_FLAGS_REQUIRED_MASK & ~SVC_FLAGS_KNOWN));
    if (h->method_len > SVC_FRAME_METHOD_MAX || memchr(h->method, '\0', h->method_len))
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid method string");
    if (h->part_count && h->part_index >= h->part_count)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "part %u of %u does not exist",
                             h->part_index, h->part_count);
    if (h->part_count &&
        ((h->flags & SVC_FLAG_LAST_PART) != 0) != (h->part_index + 1 == h->part_count))
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                             "LAST_PART flag disagrees with part %u of %u", h->part_index,
                             h->part_count);
    return 0;
}

static int check_limit(uint64_t total, size_t max_frame, ros_error *err)
{
    size_t lim = frame_limit(max_frame);
    if (total > lim)
        return ros_error_set(err, SVC_ERR_PROGRAM_LIMIT,
                             "frame of %llu bytes exceeds the limit of %zu bytes",
                             (unsigned long long)total, lim);
    return 0;
}

static void write_header(uint8_t *p, const svc_frame_header *h, uint64_t payload_len)
{
    memset(p, 0, header_bytes(h));
    memcpy(p + OFF_MAGIC, SVC_FRAME_MAGIC, 4);
    put16(p + OFF_VERSION, SVC_FRAME_VERSION);
    put16(p + OFF_KIND, h->kind);
    put32(p + OFF_FLAGS, h->flags);
    put32(p + OFF_METHOD_LEN, h->method_len);
    put64(p + OFF_JOB, h->id.job);
    put64(p + OFF_SEQ, h->id.seq);
    put32(p + OFF_OP, h->id.op);
    put32(p + OFF_ATTEMPT, h->attempt);
    put32(p + OFF_PART_INDEX, h->part_index);
    put32(p + OFF_PART_COUNT, h->part_count);
    put64(p + OFF_DEADLINE, h->deadline_ms);
    put64(p + OFF_PAYLOAD_LEN, payload_len);
    if (h->method_len)
        memcpy(p + SVC_FRAME_HEADER_SIZE, h->method, h->method_len);
}

static int alloc_frame(uint64_t total, uint8_t **out, size_t *outlen, ros_error *err)
{
    /* malloc's alignment (16 on the platforms we build for) keeps every
     * buffer of the frame 8-byte aligned. */
    uint8_t *p = malloc((size_t)total);
    if (!p)
        return ros_error_oom(err);
    *out = p;
    *outlen = (size_t)total;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Batch sizes */

/* True when bits [start, end) of the bitmap v are all set. */
static bool bits_all_set(const uint8_t *v, uint32_t start, uint32_t end)
{
    uint32_t i = start;
    for (; i < end && (i & 7); i++) /* up to a byte boundary */
        if (!(v[i >> 3] & (1u << (i & 7))))
            return false;
    const uint8_t *p = v + (i >> 3);
    uint32_t nbytes = (end - i) / 8;
    uint32_t k = 0;
    for (; k + 8 <= nbytes; k += 8) {
        uint64_t word;
        memcpy(&word, p + k, 8);
        if (word != UINT64_MAX)
            return false;
    }
    for (; k < nbytes; k++)
        if (p[k] != 0xff)
            return false;
    for (i += 8 * nbytes; i < end; i++)
        if (!(v[i >> 3] & (1u << (i & 7))))
            return false;
    return true;
}

/* Whether rows [start, end) of v travel with a validity bitmap: only when
 * one of them is NULL, so a column without NULLs costs nothing for its
 * bitmap on either side.  NULL-typed columns always carry their (all-zero)
 * bitmap: it keeps what a decoder allocates proportional to the frame's
 * size. */
static bool col_has_validity(const ros_vector *v, uint32_t start, uint32_t end)
{
    if (v->type == ROS_TYPE_NULL)
        return true;
    return v->validity != NULL && !bits_all_set(v->validity, start, end);
}

/* What encoding needs of a batch: known types, columns as long as the batch
 * and their buffers present. */
static int check_batch(const ros_batch *b, ros_error *err)
{
    if (b->nrows > MAX_ROWS)
        return ros_error_set(err, ROS_ERR_INTERNAL, "batch of %u rows is too large to send",
                             b->nrows);
    if (b->ncols && !b->cols)
        return ros_error_set(err, ROS_ERR_INTERNAL, "batch has %u columns but no column array",
                             b->ncols);
    for (uint32_t c = 0; c < b->ncols; c++) {
        const ros_vector *v = &b->cols[c];
        if ((unsigned)v->type >= ROS_TYPE_COUNT)
            return ros_error_set(err, ROS_ERR_INTERNAL, "column %u has unknown type %d", c,
                                 (int)v->type);
        if (v->len < b->nrows)
            return ros_error_set(err, ROS_ERR_INTERNAL, "column %u has %u rows, the batch %u", c,
                                 v->len, b->nrows);
        if (b->nrows == 0 || v->type == ROS_TYPE_NULL)
            continue;
        if (ros_type_is_varlen(v->type) ? !v->offsets : !v->values)
            return ros_error_set(err, ROS_ERR_INTERNAL, "column %u has no value buffer", c);
        if (ros_type_is_varlen(v->type) && v->offsets[b->nrows] > v->offsets[0] && !v->data)
            return ros_error_set(err, ROS_ERR_INTERNAL, "column %u has no data buffer", c);
    }
    return 0;
}

/* Payload bytes of rows [start, end); the batch has passed check_batch. */
static uint64_t rows_payload(const ros_batch *b, uint32_t start, uint32_t end)
{
    uint64_t n = end - start;
    uint64_t size = BATCH_HEAD + (uint64_t)b->ncols * COLDESC_SIZE;
    for (uint32_t c = 0; c < b->ncols; c++) {
        const ros_vector *v = &b->cols[c];
        if (col_has_validity(v, start, end))
            size += pad8((n + 7) / 8);
        if (ros_type_is_varlen(v->type)) {
            size += pad8((n + 1) * 4);
            if (n)
                size += pad8(v->offsets[end] - v->offsets[start]);
        } else {
            size += pad8(n * ros_type_width(v->type));
        }
    }
    return size;
}

size_t svc_frame_rows_size(const ros_batch *b, uint32_t start, uint32_t end)
{
    if (!b || start > end || end > b->nrows || check_batch(b, NULL) < 0)
        return SIZE_MAX;
    uint64_t s = rows_payload(b, start, end);
    return s > SIZE_MAX - 1 ? SIZE_MAX : (size_t)s;
}

size_t svc_frame_batch_size(const ros_batch *b)
{
    return b ? svc_frame_rows_size(b, 0, b->nrows) : SIZE_MAX;
}

size_t svc_frame_size(const svc_frame_header *h, const ros_batch *b)
{
    uint64_t payload = 0;
    if (b) {
        size_t s = svc_frame_batch_size(b);
        if (s == SIZE_MAX)
            return SIZE_MAX;
        payload = s;
    }
    return (size_t)(header_bytes(h) + payload);
}

int svc_frame_split(const svc_frame_header *h, const ros_batch *b, size_t max_frame,
                    svc_row_range **parts, uint32_t *nparts, ros_error *err)
{
    return svc_frame_split_rows(h, b, 0, b->nrows, max_frame, parts, nparts, err);
}

int svc_frame_split_rows(const svc_frame_header *h, const ros_batch *b, uint32_t first,
                         uint32_t last, size_t max_frame, svc_row_range **parts,
                         uint32_t *nparts, ros_error *err)
{
    *parts = NULL;
    *nparts = 0;
    if (check_batch(b, err) < 0)
        return -1;
    if (first > last || last > b->nrows)
        return ros_error_set(err, ROS_ERR_INTERNAL, "rows %u..%u are not in a batch of %u rows",
                             first, last, b->nrows);
    uint64_t lim = frame_limit(max_frame);
    uint64_t fixed = header_bytes(h);
    if (fixed + rows_payload(b, first, first) > lim)
        return ros_error_set(err, SVC_ERR_PROGRAM_LIMIT,
                             "frame of %llu bytes exceeds the limit of %llu bytes",
                             (unsigned long long)(fixed + rows_payload(b, first, first)),
                             (unsigned long long)lim);
    uint32_t cap = 4, n = 0;
    svc_row_range *r = malloc(cap * sizeof *r);
    if (!r)
        return ros_error_oom(err);
    if (fixed + rows_payload(b, first, last) <= lim) { /* the common case: it fits */
        r[0].start = first;
        r[0].end = last;
        *parts = r;
        *nparts = 1;
        return 0;
    }
    uint32_t start = first;
    do {
        if (last > first && fixed + rows_payload(b, start, start + 1) > lim) {
            ros_error_set(err, SVC_ERR_PROGRAM_LIMIT,
                          "row %u needs a frame of %llu bytes, over the limit of %llu bytes",
                          start - first,
                          (unsigned long long)(fixed + rows_payload(b, start, start + 1)),
                          (unsigned long long)lim);
            free(r);
            return -1;
        }
        /* Largest end with a fitting frame: the size grows with end. */
        uint32_t lo = last > first ? start + 1 : first, hi = last;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo + 1) / 2;
            if (fixed + rows_payload(b, start, mid) <= lim)
                lo = mid;
            else
                hi = mid - 1;
        }
        if (n == cap) {
            svc_row_range *nr = realloc(r, (size_t)cap * 2 * sizeof *r);
            if (!nr) {
                free(r);
                return ros_error_oom(err);
            }
            r = nr;
            cap *= 2;
        }
        r[n].start = start;
        r[n].end = lo;
        n++;
        start = lo;
    } while (start < last);
    *parts = r;
    *nparts = n;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Encoding */

/* Copies bits [start, start + n) of src to bits [0, n) of dst (zeroed). */
static void copy_bits(uint8_t *dst, const uint8_t *src, uint32_t start, uint32_t n)
{
    if ((start & 7) == 0) {
        memcpy(dst, src + start / 8, (n + 7) / 8);
        if (n & 7)
            dst[n / 8] &= (uint8_t)((1u << (n & 7)) - 1); /* no stray bits past n */
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = start + i;
        if (src[j >> 3] & (1u << (j & 7)))
            dst[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}

/* Zeroes the padding after len bytes of a buffer padded to 8. */
static inline void zero_pad(uint8_t *p, uint64_t len)
{
    uint64_t padded = pad8(len);
    if (padded > len)
        memset(p + len, 0, (size_t)(padded - len));
}

/* Writes the batch payload of rows [start, end) at p, exactly
 * rows_payload(b, start, end) bytes.  Every byte is written once: values
 * are copied, padding and bitmaps zeroed where they lie. */
static void write_rows(uint8_t *p, const ros_batch *b, uint32_t start, uint32_t end)
{
    uint32_t n = end - start;
    put32(p, b->ncols);
    put32(p + 4, n);
    uint64_t pos = BATCH_HEAD + (uint64_t)b->ncols * COLDESC_SIZE;
    for (uint32_t c = 0; c < b->ncols; c++) {
        const ros_vector *v = &b->cols[c];
        uint8_t *d = p + BATCH_HEAD + (uint64_t)c * COLDESC_SIZE;
        bool varlen = ros_type_is_varlen(v->type);
        bool validity = col_has_validity(v, start, end);
        uint32_t data_len = varlen && n ? v->offsets[end] - v->offsets[start] : 0;
        put16(d, (uint16_t)v->type);
        put16(d + 2, validity ? COLFLAG_VALIDITY : 0);
        put32(d + 4, data_len);
        if (validity) {
            uint64_t vb = pad8(((uint64_t)n + 7) / 8);
            memset(p + pos, 0, (size_t)vb);
            if (v->validity && v->type != ROS_TYPE_NULL)
                copy_bits(p + pos, v->validity, start, n);
            pos += vb;
        }
        if (varlen) {
            /* the buffer need not be aligned (an nng message body): no
             * uint32_t stores through it */
            uint8_t *off = p + pos;
            uint64_t olen = ((uint64_t)n + 1) * 4;
            if (n == 0) {
                put32(off, 0);
            } else {
                uint32_t base = v->offsets[start];
                if (base == 0)
                    memcpy(off, v->offsets + start, (size_t)olen);
                else
                    for (uint32_t i = 0; i <= n; i++)
                        put32(off + 4 * (uint64_t)i, v->offsets[start + i] - base);
            }
            zero_pad(p + pos, olen);
            pos += pad8(olen);
            if (data_len)
                memcpy(p + pos, v->data + v->offsets[start], data_len);
            zero_pad(p + pos, data_len);
            pos += pad8(data_len);
        } else {
            size_t w = ros_type_width(v->type);
            uint64_t vlen = (uint64_t)n * w;
            if (v->type == ROS_TYPE_BOOL) {
                const uint8_t *src = (const uint8_t *)v->values + start;
                for (uint32_t i = 0; i < n; i++)
                    p[pos + i] = src[i] != 0;
            } else if (vlen) {
                memcpy(p + pos, (const uint8_t *)v->values + (size_t)start * w, (size_t)vlen);
            }
            zero_pad(p + pos, vlen);
            pos += pad8(vlen);
        }
    }
}

int svc_frame_write_rows(const svc_frame_header *h, const ros_batch *b, uint32_t start,
                         uint32_t end, size_t max_frame, uint8_t *buf, size_t size,
                         ros_error *err)
{
    if (check_header_out(h, err) < 0)
        return -1;
    bool batch_kind = h->kind == SVC_KIND_REQUEST || h->kind == SVC_KIND_RESPONSE;
    bool empty_kind = h->kind == SVC_KIND_CANCEL || h->kind == SVC_KIND_PING;
    if (!batch_kind && !empty_kind)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                             "%s frames are encoded by their own function",
                             svc_frame_kind_name(h->kind));
    if (batch_kind && !b)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "%s frame needs a batch",
                             svc_frame_kind_name(h->kind));
    if (empty_kind && b)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "%s frame carries no batch",
                             svc_frame_kind_name(h->kind));
    uint64_t payload = 0;
    if (b) {
        if (check_batch(b, err) < 0)
            return -1;
        if (start > end || end > b->nrows)
            return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                                 "rows %u..%u are outside a batch of %u rows", start, end,
                                 b->nrows);
        payload = rows_payload(b, start, end);
    }
    uint64_t total = header_bytes(h) + payload;
    if (check_limit(total, max_frame, err) < 0)
        return -1;
    if (total != size)
        return ros_error_set(err, ROS_ERR_INTERNAL, "frame buffer of %zu bytes, frame of %llu",
                             size, (unsigned long long)total);
    write_header(buf, h, payload);
    if (b)
        write_rows(buf + header_bytes(h), b, start, end);
    return 0;
}

int svc_frame_encode_rows(const svc_frame_header *h, const ros_batch *b, uint32_t start,
                          uint32_t end, size_t max_frame, uint8_t **out, size_t *outlen,
                          ros_error *err)
{
    *out = NULL;
    *outlen = 0;
    /* A dry run settles every error but memory before we allocate. */
    uint64_t total = header_bytes(h);
    if (b && check_batch(b, NULL) == 0 && start <= end && end <= b->nrows)
        total += rows_payload(b, start, end);
    if (check_header_out(h, err) < 0)
        return -1;
    if (check_limit(total, max_frame, err) < 0)
        return -1;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (alloc_frame(total, &buf, &len, err) < 0)
        return -1;
    if (svc_frame_write_rows(h, b, start, end, max_frame, buf, len, err) < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

int svc_frame_encode(const svc_frame_header *h, const ros_batch *b, size_t max_frame,
                     uint8_t **out, size_t *outlen, ros_error *err)
{
    return svc_frame_encode_rows(h, b, 0, b ? b->nrows : 0, max_frame, out, outlen, err);
}

int svc_frame_encode_error(const svc_frame_header *h, const ros_error *remote, int64_t row,
                           size_t max_frame, uint8_t **out, size_t *outlen, ros_error *err)
{
    *out = NULL;
    *outlen = 0;
    if (h->kind != SVC_KIND_ERROR)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "not an error frame header");
    if (check_header_out(h, err) < 0)
        return -1;
    if (row < SVC_FRAME_ROW_NONE || row >= (int64_t)ERROR_ROW_NONE)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "row %lld cannot be named",
                             (long long)row);
    bool set = remote && remote->set;
    const char *code = set ? remote->code : ROS_ERR_INTERNAL;
    if (strlen(code) != 5 || !valid_sqlstate((const uint8_t *)code))
        code = ROS_ERR_INTERNAL;
    const char *msg = set ? remote->message : "unknown error";
    const char *detail = set ? remote->detail : "";
    const char *hint = set ? remote->hint : "";
    size_t ml = text_len(msg), dl = text_len(detail), hl = text_len(hint);
    uint64_t payload = pad8(ERROR_HEAD + ml + dl + hl);
    uint64_t total = header_bytes(h) + payload;
    if (check_limit(total, max_frame, err) < 0 || alloc_frame(total, out, outlen, err) < 0)
        return -1;
    uint8_t *p = *out;
    write_header(p, h, payload);
    p += header_bytes(h);
    memset(p, 0, payload);
    memcpy(p, code, 5);
    put32(p + 8, row == SVC_FRAME_ROW_NONE ? ERROR_ROW_NONE : (uint32_t)row);
    put32(p + 12, (uint32_t)ml);
    put32(p + 16, (uint32_t)dl);
    put32(p + 20, (uint32_t)hl);
    memcpy(p + ERROR_HEAD, msg, ml);
    memcpy(p + ERROR_HEAD + ml, detail, dl);
    memcpy(p + ERROR_HEAD + ml + dl, hint, hl);
    return 0;
}

static void write_ref(const svc_frame_header *h, uint16_t kind, const svc_shm_ref *ref, uint8_t *buf)
{
    svc_frame_header e = *h;
    e.kind = kind;
    e.method_len = 0;
    write_header(buf, &e, SVC_FRAME_SHM_REF_SIZE);
    uint8_t *p = buf + SVC_FRAME_HEADER_SIZE;
    put32(p, ref->fd);
    put32(p + 4, 0);
    put64(p + 8, ref->seg_id);
    put64(p + 16, ref->seg_size);
    put64(p + 24, ref->off);
    put64(p + 32, ref->len);
    put64(p + 40, ref->resp_off);
    put64(p + 48, ref->resp_cap);
}

void svc_frame_write_shm(const svc_frame_header *h, const svc_shm_ref *ref, uint8_t *buf)
{
    write_ref(h, SVC_KIND_SHM, ref, buf);
}

void svc_frame_write_lane(const svc_frame_header *h, const svc_shm_ref *ref, uint8_t *buf)
{
    write_ref(h, SVC_KIND_LANE, ref, buf);
}

int svc_frame_encode_status(const svc_frame_header *h, const svc_status *st, size_t max_frame,
                            uint8_t **out, size_t *outlen, ros_error *err)
{
    *out = NULL;
    *outlen = 0;
    if (h->kind != SVC_KIND_BUSY && h->kind != SVC_KIND_PONG)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "not a busy or pong frame header");
    if (check_header_out(h, err) < 0)
        return -1;
    if (st->state > SVC_STATE_MAX)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid service state %u",
                             st->state);
    uint64_t total = header_bytes(h) + STATUS_SIZE;
    if (check_limit(total, max_frame, err) < 0 || alloc_frame(total, out, outlen, err) < 0)
        return -1;
    uint8_t *p = *out;
    write_header(p, h, STATUS_SIZE);
    p += header_bytes(h);
    put32(p, st->state);
    put32(p + 4, st->queue_depth);
    put32(p + 8, st->queue_capacity);
    put32(p + 12, st->retry_after_ms);
    put64(p + 16, st->requests);
    put64(p + 24, st->rows);
    put32(p + 32, st->inflight);
    put32(p + 36, st->malformed);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Decoding */

/* Reads and checks the fixed header, the method and the total length. */
static int read_header(const uint8_t *buf, size_t len, size_t max_frame, svc_frame_header *h,
                       ros_error *err)
{
    svc_frame_header x;
    memset(&x, 0, sizeof x);
    if (len < SVC_FRAME_HEADER_SIZE)
        return malformed(err, "%zu bytes, shorter than the %d-byte header", len,
                         SVC_FRAME_HEADER_SIZE);
    if (memcmp(buf + OFF_MAGIC, SVC_FRAME_MAGIC, 4) != 0)
        return malformed(err, "bad magic");
    x.version = get16(buf + OFF_VERSION);
    if (x.version != SVC_FRAME_VERSION) {
        malformed(err, "unsupported version %u", x.version);
        ros_error_detail(err, "This build speaks version %d.", SVC_FRAME_VERSION);
        return -1;
    }
    x.kind = get16(buf + OFF_KIND);
    if (x.kind == SVC_KIND_NONE || x.kind > SVC_KIND_MAX)
        return malformed(err, "unknown kind %u", x.kind);
    x.flags = get32(buf + OFF_FLAGS);
    if (x.flags & SVC_FLAGS_REQUIRED_MASK & ~SVC_FLAGS_KNOWN)
        return malformed(err, "unknown required flags 0x%x",
                         (unsigned)(x.flags & SVC_FLAGS_REQUIRED_MASK & ~SVC_FLAGS_KNOWN));
    x.method_len = get32(buf + OFF_METHOD_LEN);
    x.id.job = get64(buf + OFF_JOB);
    x.id.seq = get64(buf + OFF_SEQ);
    x.id.op = get32(buf + OFF_OP);
    x.attempt = get32(buf + OFF_ATTEMPT);
    x.part_index = get32(buf + OFF_PART_INDEX);
    x.part_count = get32(buf + OFF_PART_COUNT);
    x.deadline_ms = get64(buf + OFF_DEADLINE);
    x.payload_len = get64(buf + OFF_PAYLOAD_LEN);
    if (x.part_count && x.part_index >= x.part_count)
        return malformed(err, "part index %u is not below the part count %u", x.part_index,
                         x.part_count);
    if (x.part_count &&
        ((x.flags & SVC_FLAG_LAST_PART) != 0) != (x.part_index + 1 == x.part_count))
        return malformed(err, "LAST_PART flag disagrees with part %u of %u", x.part_index,
                         x.part_count);
    if (x.method_len > SVC_FRAME_METHOD_MAX)
        return malformed(err, "method string of %u bytes", x.method_len);

    /* The header is sane: from here on a failure can be answered by id. */
    x.method[0] = '\0';
    *h = x;
    size_t lim = frame_limit(max_frame);
    if (len > lim)
        return check_limit(len, max_frame, err);
    /* header_bytes is at most 64 + 1024, so the sum cannot wrap after this. */
    if (x.payload_len > UINT64_MAX - header_bytes(&x))
        return malformed(err, "payload length %llu", (unsigned long long)x.payload_len);
    uint64_t total = header_bytes(&x) + x.payload_len;
    if (check_limit(total, max_frame, err) < 0)
        return -1;
    if (total != len)
        return malformed(err, "%zu bytes, the header says %llu", len, (unsigned long long)total);
    if (x.payload_len % 8)
        return malformed(err, "payload of %llu bytes is not a multiple of 8",
                         (unsigned long long)x.payload_len);
    const uint8_t *m = buf + SVC_FRAME_HEADER_SIZE;
    if (x.method_len && memchr(m, '\0', x.method_len))
        return malformed(err, "method string contains a zero byte");
    memcpy(h->method, m, x.method_len);
    h->method[x.method_len] = '\0';
    return 0;
}

/*
 * Checks the batch payload p[0..n) completely and returns where each
 * column's buffers are (*cols, malloc'd, NULL for zero columns).  Touches no
 * byte outside p[0..n): every offset is compared with n before it is used,
 * in uint64_t where the values cannot overflow (each step adds at most about
 * 2^35 to a position already <= n).
 */
static int validate_batch(const uint8_t *p, uint64_t n, col_layout **cols, ros_error *err)
{
    *cols = NULL;
    if (n < BATCH_HEAD)
        return malformed(err, "batch payload of %llu bytes", (unsigned long long)n);
    uint32_t ncols = get32(p), nrows = get32(p + 4);
    if (nrows > MAX_ROWS)
        return malformed(err, "%u rows", nrows);
    if ((uint64_t)ncols > (n - BATCH_HEAD) / COLDESC_SIZE)
        return malformed(err, "%u columns do not fit in %llu bytes", ncols,
                         (unsigned long long)n);
    if (ncols == 0) {
        if (n != BATCH_HEAD)
            return malformed(err, "%llu bytes after the batch", (unsigned long long)(n - BATCH_HEAD));
        return 0;
    }
    col_layout *cl = calloc(ncols, sizeof *cl);
    if (!cl)
        return ros_error_oom(err);
    uint64_t pos = BATCH_HEAD + (uint64_t)ncols * COLDESC_SIZE;
    uint64_t vbytes = ((uint64_t)nrows + 7) / 8;
    for (uint32_t c = 0; c < ncols; c++) {
        const uint8_t *d = p + BATCH_HEAD + (uint64_t)c * COLDESC_SIZE;
        uint16_t type = get16(d), flags = get16(d + 2);
        uint32_t data_len = get32(d + 4);
        col_layout *L = &cl[c];
        if (type >= ROS_TYPE_COUNT) {
            malformed(err, "column %u has unknown type %u", c, type);
            goto fail;
        }
        if (flags & ~COLFLAG_VALIDITY) {
            malformed(err, "column %u has unknown flags 0x%x", c, flags);
            goto fail;
        }
        L->type = (ros_type)type;
        L->has_validity = flags & COLFLAG_VALIDITY;
        L->data_len = data_len;
        bool varlen = ros_type_is_varlen(L->type);
        if (type == ROS_TYPE_NULL && !L->has_validity) {
            malformed(err, "null column %u has no validity bitmap", c);
            goto fail;
        }
        if (!varlen && data_len) {
            malformed(err, "fixed-width column %u has a data length", c);
            goto fail;
        }
        if (L->has_validity) {
            L->validity = pos;
            pos += pad8(vbytes);
            if (pos > n)
                goto truncated;
        }
        L->values = pos;
        if (varlen) {
            pos += pad8(((uint64_t)nrows + 1) * 4);
            if (pos > n)
                goto truncated;
            L->data = pos;
            pos += pad8(data_len);
        } else {
            pos += pad8((uint64_t)nrows * ros_type_width(L->type));
        }
        if (pos > n)
            goto truncated;
    }
    if (pos != n) {
        malformed(err, "%llu bytes after the batch", (unsigned long long)(n - pos));
        goto fail;
    }

    /* Contents: offsets, real[] row lengths, bools, null columns. */
    for (uint32_t c = 0; c < ncols; c++) {
        const col_layout *L = &cl[c];
        if (ros_type_is_varlen(L->type)) {
            const uint8_t *o = p + L->values;
            uint32_t prev = get32(o);
            if (prev != 0) {
                malformed(err, "column %u: first offset is %u, not 0", c, prev);
                goto fail;
            }
            for (uint32_t i = 1; i <= nrows; i++) {
                uint32_t cur = get32(o + 4 * (uint64_t)i);
                if (cur < prev || cur > L->data_len) {
                    malformed(err, "column %u: offsets[%u] is %u, outside %u..%u", c, i, cur,
                              prev, L->data_len);
                    goto fail;
                }
                if (L->type == ROS_TYPE_FLOAT32_ARRAY && (cur - prev) % sizeof(float)) {
                    malformed(err, "column %u: real[] row %u has %u bytes", c, i - 1, cur - prev);
                    goto fail;
                }
                prev = cur;
            }
            if (prev != L->data_len) {
                malformed(err, "column %u: offsets end at %u, data has %u bytes", c, prev,
                          L->data_len);
                goto fail;
            }
        } else if (L->type == ROS_TYPE_BOOL) {
            const uint8_t *v = p + L->values;
            for (uint32_t i = 0; i < nrows; i++)
                if (v[i] > 1) {
                    malformed(err, "column %u: bool row %u is %u", c, i, v[i]);
                    goto fail;
                }
        } else if (L->type == ROS_TYPE_NULL) {
            const uint8_t *v = p + L->validity;
            for (uint32_t i = 0; i < nrows; i++)
                if (v[i >> 3] & (1u << (i & 7))) {
                    malformed(err, "null column %u: row %u is not null", c, i);
                    goto fail;
                }
        }
    }
    *cols = cl;
    return 0;

truncated:
    malformed(err, "column buffers need more than the %llu payload bytes",
              (unsigned long long)n);
fail:
    free(cl);
    return -1;
}

/* Builds the batch from a validated payload; only memory can fail. */
static int materialise_batch(const uint8_t *p, uint64_t n, const col_layout *cols, bool view,
                             ros_batch *out, ros_error *err)
{
    uint32_t ncols = get32(p), nrows = get32(p + 4);
    memset(out, 0, sizeof *out);
    (void)n;
    if (ncols == 0) {
        out->nrows = nrows;
        return 0;
    }
    out->cols = calloc(ncols, sizeof *out->cols);
    if (!out->cols)
        return ros_error_oom(err);
    out->ncols = ncols;
    out->nrows = nrows;
    size_t vbytes = ((size_t)nrows + 7) / 8;
    for (uint32_t c = 0; c < ncols; c++) {
        const col_layout *L = &cols[c];
        ros_vector *v = &out->cols[c];
        ros_vector_init(v, L->type);
        v->len = v->cap = nrows;
        v->data_len = v->data_cap = L->data_len;
        bool varlen = ros_type_is_varlen(L->type);
        size_t vsize = varlen ? ((size_t)nrows + 1) * 4 : (size_t)nrows * ros_type_width(L->type);
        if (view) {
            /* Frame buffers are 8-byte aligned and the caller's buffer is:
             * every pointer below is aligned for its type. */
            if (L->has_validity)
                v->validity = (uint8_t *)(p + L->validity);
            if (varlen) {
                v->offsets = (uint32_t *)(void *)(p + L->values);
                v->data = (uint8_t *)(p + L->data);
            } else if (vsize) {
                v->values = (void *)(p + L->values);
            }
            continue;
        }
        if (nrows == 0 && !varlen) {
            v->len = v->cap = 0;
            continue;
        }
        if (vbytes) {
            /* an owned vector always has its bitmap (appends set bits in
             * it); a column sent without one is all valid */
            if (!(v->validity = malloc(vbytes)))
                goto oom;
            if (L->has_validity)
                memcpy(v->validity, p + L->validity, vbytes);
            else
                memset(v->validity, 0xff, vbytes);
        }
        if (vsize) {
            void *dst = malloc(vsize);
            if (!dst)
                goto oom;
            memcpy(dst, p + L->values, vsize);
            if (varlen)
                v->offsets = dst;
            else
                v->values = dst;
        }
        if (L->data_len) {
            if (!(v->data = malloc(L->data_len)))
                goto oom;
            memcpy(v->data, p + L->data, L->data_len);
        }
    }
    return 0;

oom:
    svc_batch_free(out);
    return ros_error_oom(err);
}

static int decode_error_body(const uint8_t *p, uint64_t n, svc_frame *f, ros_error *err)
{
    if (n < ERROR_HEAD)
        return malformed(err, "error payload of %llu bytes", (unsigned long long)n);
    if (!valid_sqlstate(p) || p[5] || p[6] || p[7])
        return malformed(err, "error frame with an invalid SQLSTATE");
    uint32_t row = get32(p + 8);
    uint32_t ml = get32(p + 12), dl = get32(p + 16), hl = get32(p + 20);
    if (ml > SVC_FRAME_TEXT_MAX || dl > SVC_FRAME_TEXT_MAX || hl > SVC_FRAME_TEXT_MAX)
        return malformed(err, "error text over %d bytes", SVC_FRAME_TEXT_MAX);
    if (pad8((uint64_t)ERROR_HEAD + ml + dl + hl) != n)
        return malformed(err, "error payload of %llu bytes for %u text bytes",
                         (unsigned long long)n, ml + dl + hl);
    const uint8_t *t = p + ERROR_HEAD;
    if (memchr(t, '\0', (size_t)ml + dl + hl))
        return malformed(err, "error text contains a zero byte");
    ros_error *r = &f->remote;
    memset(r, 0, sizeof *r);
    r->set = true;
    memcpy(r->code, p, 5);
    memcpy(r->message, t, ml);
    memcpy(r->detail, t + ml, dl);
    memcpy(r->hint, t + ml + dl, hl);
    f->error_row = row == ERROR_ROW_NONE ? SVC_FRAME_ROW_NONE : (int64_t)row;
    return 0;
}

static int decode_status_body(const uint8_t *p, uint64_t n, svc_frame *f, ros_error *err)
{
    if (n != STATUS_SIZE)
        return malformed(err, "status payload of %llu bytes", (unsigned long long)n);
    svc_status st = {get32(p),      get32(p + 4),  get32(p + 8),  get32(p + 12),
                     get64(p + 16), get64(p + 24), get32(p + 32), get32(p + 36)};
    if (st.state > SVC_STATE_MAX)
        return malformed(err, "unknown service state %u", st.state);
    f->status = st;
    return 0;
}

/* The reference of a SHM envelope: every range within the segment, on
 * 8-byte offsets, the frame at least a header long, the two not
 * overlapping. */
static int decode_shm_body(const uint8_t *p, uint64_t n, svc_frame *f, ros_error *err)
{
    if (n != SVC_FRAME_SHM_REF_SIZE)
        return malformed(err, "shm payload of %llu bytes", (unsigned long long)n);
    svc_shm_ref r = {get32(p),      get64(p + 8),  get64(p + 16), get64(p + 24),
                     get64(p + 32), get64(p + 40), get64(p + 48)};
    if (get32(p + 4) != 0)
        return malformed(err, "nonzero reserved field in a shm reference");
    if (r.off % 8 || r.resp_off % 8)
        return malformed(err, "shm offsets not multiples of 8");
    if (r.len < SVC_FRAME_HEADER_SIZE || r.off > r.seg_size || r.len > r.seg_size - r.off)
        return malformed(err, "shm frame [%llu, +%llu) outside a segment of %llu bytes",
                         (unsigned long long)r.off, (unsigned long long)r.len,
                         (unsigned long long)r.seg_size);
    if (r.resp_off > r.seg_size || r.resp_cap > r.seg_size - r.resp_off)
        return malformed(err, "shm answer area outside the segment");
    if (r.resp_cap && r.resp_off < r.off + r.len && r.off < r.resp_off + r.resp_cap)
        return malformed(err, "shm answer area overlaps the frame");
    f->shm = r;
    return 0;
}

static int decode(const uint8_t *buf, size_t len, size_t max_frame, bool view, svc_frame *f,
                  ros_error *err)
{
    memset(f, 0, sizeof *f);
    f->error_row = SVC_FRAME_ROW_NONE;
    if (!buf) {
        len = 0;
        buf = (const uint8_t *)"";
    }
    if (read_header(buf, len, max_frame, &f->h, err) < 0)
        return -1;
    const uint8_t *p = buf + header_bytes(&f->h);
    uint64_t n = f->h.payload_len;
    switch (f->h.kind) {
    case SVC_KIND_REQUEST:
    case SVC_KIND_RESPONSE: {
        col_layout *cols;
        if (validate_batch(p, n, &cols, err) < 0)
            return -1;
        view = view && ((uintptr_t)buf & 7) == 0;
        int rc = materialise_batch(p, n, cols, view, &f->batch, err);
        free(cols);
        if (rc < 0)
            return -1;
        f->borrowed = view;
        return 0;
    }
    case SVC_KIND_ERROR:
        return decode_error_body(p, n, f, err);
    case SVC_KIND_BUSY:
    case SVC_KIND_PONG:
        return decode_status_body(p, n, f, err);
    case SVC_KIND_SHM:
    case SVC_KIND_LANE:
        return decode_shm_body(p, n, f, err);
    default: /* CANCEL, PING */
        if (n != 0)
            return malformed(err, "%s frame with a payload", svc_frame_kind_name(f->h.kind));
        return 0;
    }
}

int svc_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, svc_frame *f,
                     ros_error *err)
{
    return decode(buf, len, max_frame, false, f, err);
}

int svc_frame_decode_view(const uint8_t *buf, size_t len, size_t max_frame, svc_frame *f,
                          ros_error *err)
{
    return decode(buf, len, max_frame, true, f, err);
}

void svc_frame_clear(svc_frame *f)
{
    if (f->borrowed)
        free(f->batch.cols);
    else
        svc_batch_free(&f->batch);
    memset(f, 0, sizeof *f);
    f->error_row = SVC_FRAME_ROW_NONE;
}

/* ---------------------------------------------------------------- */
/* Content digest */

/* Odd constants with well spread bits (wyhash's secret). */
#define HK0 0xa0761d6478bd642full
#define HK1 0xe7037ed1a0b428dbull
#define HK2 0x8ebc6af09c88c6e3ull
#define HK3 0x589965cc75374cc3ull
#define HK4 0x1d8e4e27c47d124full

/* Seed of svc_frame_digest (any constant: it only has to stay the same). */
#define DIGEST_SEED 0x524f5346u /* "ROSF" */

/* The 128-bit product of a and b folded to 64 bits: every input bit reaches
 * every output bit. */
static inline uint64_t hmix(uint64_t a, uint64_t b)
{
    __extension__ unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* one unaligned load; little-endian host */
    return v;
}

/* n < 8 bytes at p, zero-extended. */
static inline uint64_t load_tail(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    if (n)
        memcpy(&v, p, n);
    return v;
}

/*
 * Four lanes each take 16 bytes of every 64-byte block: lane = lane ^
 * mix(word ^ Ki, word ^ lane), a chain per lane (order within the lane
 * matters) with a constant per lane (moving words between lanes matters);
 * the lanes' multiplications are independent, so they overlap.  XORing the
 * product into the lane keeps its state should a word cancel its constant.
 * The rest (under 64 bytes) goes 16 bytes at a time through one chain; the
 * length enters at the start and the end, so zero bytes at the end count.
 */
uint64_t svc_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    size_t n = len;
    uint64_t h = seed ^ hmix(seed ^ HK0, (uint64_t)len ^ HK1);
    if (n >= 64) {
        uint64_t s0 = h, s1 = h, s2 = h, s3 = h;
        for (; n >= 64; n -= 64, p += 64) {
            s0 ^= hmix(load64(p) ^ HK0, load64(p + 8) ^ s0);
            s1 ^= hmix(load64(p + 16) ^ HK1, load64(p + 24) ^ s1);
            s2 ^= hmix(load64(p + 32) ^ HK2, load64(p + 40) ^ s2);
            s3 ^= hmix(load64(p + 48) ^ HK3, load64(p + 56) ^ s3);
        }
        h = hmix(s0 ^ HK1, s1 ^ HK2) ^ hmix(s2 ^ HK3, s3 ^ HK4);
    }
    for (; n >= 16; n -= 16, p += 16)
        h ^= hmix(load64(p) ^ HK1, load64(p + 8) ^ h);
    uint64_t a, b;
    if (n >= 8) {
        a = load64(p);
        b = load_tail(p + 8, n - 8);
    } else {
        a = load_tail(p, n);
        b = 0;
    }
    h ^= hmix(a ^ HK2, b ^ h ^ HK3);
    return hmix(h ^ HK4, (uint64_t)len ^ HK0);
}

uint64_t svc_frame_digest(const svc_frame_header *h, const uint8_t *buf, size_t len)
{
    uint64_t payload = h->payload_len <= len ? h->payload_len : len;
    uint64_t seed = svc_hash64(h->method, h->method_len, DIGEST_SEED);
    return svc_hash64(buf + (len - payload), (size_t)payload, seed);
}

/* ---------------------------------------------------------------- */
/* Batches */

void svc_batch_free(ros_batch *b)
{
    for (uint32_t c = 0; b->cols && c < b->ncols; c++)
        ros_vector_free(&b->cols[c]);
    free(b->cols);
    memset(b, 0, sizeof *b);
}

/*
 * Writes bits [0, n) of src (NULL: every bit equal to fill's) to bits
 * [at, at + n) of dst, which has room for them.  Bits of dst below at are
 * kept; bits past at + n in the last byte written are not (they lie past the
 * vector's length).
 */
static void put_bits(uint8_t *dst, uint32_t at, const uint8_t *src, uint8_t fill, uint32_t n)
{
    if (n == 0)
        return;
    uint32_t sh = at & 7;
    uint8_t *d = dst + at / 8;
    size_t nbytes = ((size_t)n + 7) / 8;
    if (sh == 0) {
        if (src)
            memcpy(d, src, nbytes);
        else
            memset(d, fill, nbytes);
        return;
    }
    d[0] &= (uint8_t)((1u << sh) - 1);
    for (size_t i = 0; i < nbytes; i++) {
        uint8_t b = src ? src[i] : fill;
        d[i] |= (uint8_t)(b << sh);
        if (8 * i + 8 - sh < n) /* some bit of b lands in the next byte */
            d[i + 1] = (uint8_t)(b >> (8 - sh));
    }
}

/*
 * Makes room in d for rows rows, with a validity bitmap (a vector that grows
 * by appends keeps one, as ros_vector_reserve does): capacity grows
 * geometrically, so appending many small batches copies each row O(1) times.
 * Returns 0 or -1 (out of memory; d's rows are unchanged).
 */
static int grow_col(ros_vector *d, uint32_t rows)
{
    bool varlen = ros_type_is_varlen(d->type);
    uint64_t cap = d->cap;
    if (rows > cap) {
        /* x4 while small, so that a batch built from many small ones is
         * copied by realloc about a third of a time, not once more */
        uint64_t grown = cap < GROW_FAST_ROWS ? cap * 4 : cap * 2;
        cap = grown > rows ? grown : rows;
        if (cap > MAX_ROWS)
            cap = MAX_ROWS;
    }
    if (cap == 0)
        cap = 1;
    if (cap == d->cap && d->validity && (varlen ? d->offsets != NULL : d->values != NULL))
        return 0;
    size_t vb_new = ((size_t)cap + 7) / 8, vb_old = ((size_t)d->cap + 7) / 8;
    uint8_t *val = realloc(d->validity, vb_new);
    if (!val)
        return -1;
    if (!d->validity)
        memset(val, 0xff, vb_new); /* no NULLs so far */
    else if (vb_new > vb_old)
        memset(val + vb_old, 0xff, vb_new - vb_old);
    d->validity = val;
    if (varlen) {
        uint32_t *off = realloc(d->offsets, ((size_t)cap + 1) * sizeof *off);
        if (!off)
            return -1;
        if (!d->offsets)
            off[0] = 0;
        d->offsets = off;
    } else {
        size_t w = ros_type_width(d->type);
        void *nv = realloc(d->values, (size_t)cap * (w ? w : 1)); /* NULL type: a dummy byte a row */
        if (!nv)
            return -1;
        d->values = nv;
    }
    d->cap = (uint32_t)cap;
    return 0;
}

int svc_batch_append(ros_batch *dst, const ros_batch *src, ros_error *err)
{
    if (check_batch(src, err) < 0)
        return -1;
    if (dst->ncols == 0 && dst->nrows == 0 && src->ncols > 0) {
        ros_vector *cols = calloc(src->ncols, sizeof *cols);
        if (!cols)
            return ros_error_oom(err);
        for (uint32_t c = 0; c < src->ncols; c++)
            ros_vector_init(&cols[c], src->cols[c].type);
        free(dst->cols);
        dst->cols = cols;
        dst->ncols = src->ncols;
    }
    if (dst->ncols != src->ncols)
        return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH,
                             "batch of %u columns cannot be appended to one of %u", src->ncols,
                             dst->ncols);
    for (uint32_t c = 0; c < src->ncols; c++)
        if (dst->cols[c].type != src->cols[c].type)
            return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH,
                                 "column %u: %d cannot be appended to %d", c,
                                 (int)src->cols[c].type, (int)dst->cols[c].type);
    uint64_t rows = (uint64_t)dst->nrows + src->nrows;
    if (rows > MAX_ROWS)
        return ros_error_set(err, SVC_ERR_PROGRAM_LIMIT, "batch of %llu rows is too large",
                             (unsigned long long)rows);
    /* Reserve everything first so the copies below cannot fail halfway. */
    for (uint32_t c = 0; c < src->ncols; c++) {
        ros_vector *d = &dst->cols[c];
        const ros_vector *s = &src->cols[c];
        if (d->len != dst->nrows)
            return ros_error_set(err, ROS_ERR_INTERNAL, "column %u has %u rows, the batch %u", c,
                                 d->len, dst->nrows);
        if (grow_col(d, (uint32_t)rows) < 0)
            return ros_error_oom(err);
        if (ros_type_is_varlen(s->type) && src->nrows) {
            uint32_t add = s->offsets[src->nrows] - s->offsets[0];
            if ((uint64_t)d->data_len + add > UINT32_MAX)
                return ros_error_set(err, SVC_ERR_PROGRAM_LIMIT,
                                     "column %u would exceed 4 GB of data", c);
            if (ros_vector_reserve_data(d, add) < 0)
                return ros_error_oom(err);
        }
    }
    /* One copy per buffer. */
    uint32_t n0 = dst->nrows, n1 = src->nrows;
    for (uint32_t c = 0; c < src->ncols && n1; c++) {
        ros_vector *d = &dst->cols[c];
        const ros_vector *s = &src->cols[c];
        if (s->type == ROS_TYPE_NULL)
            put_bits(d->validity, n0, NULL, 0x00, n1);
        else
            put_bits(d->validity, n0, s->validity, 0xff, n1);
        if (ros_type_is_varlen(s->type)) {
            uint32_t s0 = s->offsets[0], add = s->offsets[n1] - s0, base = d->data_len;
            if (add)
                memcpy(d->data + base, s->data + s0, add);
            d->offsets[n0] = base;
            for (uint32_t i = 1; i <= n1; i++)
                d->offsets[n0 + i] = base + (s->offsets[i] - s0);
            d->data_len = base + add;
        } else {
            size_t w = ros_type_width(s->type);
            if (w)
                memcpy((uint8_t *)d->values + (size_t)n0 * w, s->values, (size_t)n1 * w);
            else
                memset((uint8_t *)d->values + n0, 0, n1); /* NULL type: dummy bytes */
        }
        d->len = (uint32_t)rows;
    }
    dst->nrows = (uint32_t)rows;
    return 0;
}

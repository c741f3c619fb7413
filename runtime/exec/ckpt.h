/*
 * ckpt.h
 *    Byte buffers for checkpoint state (ckpt.c): what a job's operators
 *    write when a checkpoint is taken and read back on restore.
 *
 * The encoding is little-endian and positional; each operator writes its
 * part in plan order (rt_op_snapshot in exec.h).  Batches are stored as
 * service frames (service/frame.h), the same columnar layout as on the
 * wire.  A reader never reads past its end: a short or corrupt buffer sets
 * `bad` and every later read returns zeros, so callers check once.
 */
#ifndef RT_CKPT_H
#define RT_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rosql/vector.h>

#include "runtime/core/error.h"

#define RT_CKPT_MAGIC 0x4b435152u /* "RQCK" */
/* 2: a proxy's unanswered request carries the instance it was sent to.
 * A reader takes only its own version. */
#define RT_CKPT_VERSION 2

typedef struct rt_wbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;          /* an append failed: the contents are incomplete */
} rt_wbuf;

void rt_w_bytes(rt_wbuf *w, const void *p, size_t n);
void rt_w_u8(rt_wbuf *w, uint8_t v);
void rt_w_u32(rt_wbuf *w, uint32_t v);
void rt_w_u64(rt_wbuf *w, uint64_t v);
void rt_w_i64(rt_wbuf *w, int64_t v);
/* A batch (any row count, any columns, zero columns included). */
int rt_w_batch(rt_wbuf *w, const ros_batch *b, ros_error *err);
/* One column. */
int rt_w_vector(rt_wbuf *w, const ros_vector *v, ros_error *err);
void rt_wbuf_free(rt_wbuf *w);

typedef struct rt_rbuf {
    const uint8_t *p;
    size_t len, pos;
    bool bad;          /* read past the end or malformed */
} rt_rbuf;

const uint8_t *rt_r_bytes(rt_rbuf *r, size_t n);
uint8_t rt_r_u8(rt_rbuf *r);
uint32_t rt_r_u32(rt_rbuf *r);
uint64_t rt_r_u64(rt_rbuf *r);
int64_t rt_r_i64(rt_rbuf *r);
/* Reads a batch written by rt_w_batch into *out (owned columns; free with
 * svc_batch_free).  -1 with err set when malformed. */
int rt_r_batch(rt_rbuf *r, ros_batch *out, ros_error *err);
/* Reads a column written by rt_w_vector into *out (initialised here). */
int rt_r_vector(rt_rbuf *r, ros_vector *out, ros_error *err);

#endif /* RT_CKPT_H */

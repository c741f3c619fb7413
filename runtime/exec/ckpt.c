/*
 * ckpt.c
 *    Checkpoint state buffers (ckpt.h).
 */
#include "runtime/exec/ckpt.h"

#include <stdlib.h>
#include <string.h>

#include "service/frame.h"

void rt_w_bytes(rt_wbuf *w, const void *p, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *q = realloc(w->p, cap);
        if (!q) {
            w->oom = true;
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    if (n)
        memcpy(w->p + w->len, p, n);
    w->len += n;
}

void rt_w_u8(rt_wbuf *w, uint8_t v) { rt_w_bytes(w, &v, 1); }

void rt_w_u32(rt_wbuf *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    rt_w_bytes(w, b, 4);
}

void rt_w_u64(rt_wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    rt_w_bytes(w, b, 8);
}

void rt_w_i64(rt_wbuf *w, int64_t v) { rt_w_u64(w, (uint64_t)v); }

int rt_w_batch(rt_wbuf *w, const ros_batch *b, ros_error *err)
{
    rt_w_u32(w, b->ncols);
    rt_w_u32(w, b->nrows);
    if (b->ncols == 0)
        return w->oom ? ros_error_oom(err) : 0;
    svc_frame_header h;
    svc_request_id id = {0, 0, 0};
    svc_frame_header_init(&h, SVC_KIND_RESPONSE, &id);
    uint8_t *buf;
    size_t len;
    if (svc_frame_encode(&h, b, SIZE_MAX, &buf, &len, err) < 0)
        return -1;
    rt_w_u64(w, len);
    rt_w_bytes(w, buf, len);
    free(buf);
    return w->oom ? ros_error_oom(err) : 0;
}

int rt_w_vector(rt_wbuf *w, const ros_vector *v, ros_error *err)
{
    ros_batch b = {1, v->len, (ros_vector *)v};
    return rt_w_batch(w, &b, err);
}

void rt_wbuf_free(rt_wbuf *w)
{
    free(w->p);
    memset(w, 0, sizeof *w);
}

const uint8_t *rt_r_bytes(rt_rbuf *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint8_t rt_r_u8(rt_rbuf *r)
{
    const uint8_t *p = rt_r_bytes(r, 1);
    return p ? p[0] : 0;
}

uint32_t rt_r_u32(rt_rbuf *r)
{
    const uint8_t *p = rt_r_bytes(r, 4);
    uint32_t v = 0;
    for (int i = 0; p && i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

uint64_t rt_r_u64(rt_rbuf *r)
{
    const uint8_t *p = rt_r_bytes(r, 8);
    uint64_t v = 0;
    for (int i = 0; p && i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int64_t rt_r_i64(rt_rbuf *r) { return (int64_t)rt_r_u64(r); }

static int malformed(ros_error *err)
{
    return ros_error_set(err, ROS_ERR_DATA_CORRUPTED, "checkpoint state is malformed");
}

int rt_r_batch(rt_rbuf *r, ros_batch *out, ros_error *err)
{
    memset(out, 0, sizeof *out);
    uint32_t ncols = rt_r_u32(r), nrows = rt_r_u32(r);
    if (r->bad)
        return malformed(err);
    if (ncols == 0) {
        out->nrows = nrows;
        return 0;
    }
    uint64_t len = rt_r_u64(r);
    const uint8_t *p = r->bad || len > r->len - r->pos ? NULL : rt_r_bytes(r, (size_t)len);
    if (!p)
        return malformed(err);
    /* decode needs an aligned buffer to be safe for every column type */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return ros_error_oom(err);
    memcpy(copy, p, len);
    svc_frame f;
    int rc = svc_frame_decode(copy, (size_t)len, SIZE_MAX, &f, err);
    free(copy);
    if (rc < 0)
        return malformed(err);
    if (f.batch.ncols != ncols || f.batch.nrows != nrows) {
        svc_frame_clear(&f);
        return malformed(err);
    }
    *out = f.batch;
    memset(&f.batch, 0, sizeof f.batch);
    svc_frame_clear(&f);
    return 0;
}

int rt_r_vector(rt_rbuf *r, ros_vector *out, ros_error *err)
{
    ros_batch b;
    if (rt_r_batch(r, &b, err) < 0)
        return -1;
    if (b.ncols != 1) {
        svc_batch_free(&b);
        return malformed(err);
    }
    *out = b.cols[0];
    free(b.cols);
    return 0;
}

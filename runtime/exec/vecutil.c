/*
 * vecutil.c
 *    Batch and vector helpers shared by the operators: gather, copy,
 *    comparison, key encoding and hashing.
 */
#include "runtime/exec/exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int rt_batch_init(ros_batch *b, int ncols, const ros_type *types)
{
    b->ncols = (uint32_t)ncols;
    b->nrows = 0;
    b->cols = calloc(ncols > 0 ? (size_t)ncols : 1, sizeof(ros_vector));
    if (!b->cols)
        return -1;
    for (int i = 0; i < ncols; i++)
        ros_vector_init(&b->cols[i], types[i]);
    return 0;
}

void rt_batch_free(ros_batch *b)
{
    if (b->cols)
        for (uint32_t i = 0; i < b->ncols; i++)
            ros_vector_free(&b->cols[i]);
    free(b->cols);
    b->cols = NULL;
    b->ncols = b->nrows = 0;
}

void rt_batch_reset(ros_batch *b)
{
    for (uint32_t i = 0; i < b->ncols; i++)
        ros_vector_reset(&b->cols[i]);
    b->nrows = 0;
}

int rt_vector_append_row(ros_vector *dst, const ros_vector *src, uint32_t i)
{
    if (ros_vector_is_null(src, i))
        return ros_vector_append_null(dst);
    if (ros_type_is_varlen(src->type)) {
        uint32_t n;
        const uint8_t *p = ros_vector_bytes(src, i, &n);
        return ros_vector_append_bytes(dst, p, n);
    }
    size_t w = ros_type_width(src->type);
    if (w == 0)
        return ros_vector_append_null(dst);
    return ros_vector_append_fixed(dst, (const uint8_t *)src->values + (size_t)i * w);
}

int rt_vector_gather(ros_vector *dst, const ros_vector *src, const uint32_t *sel, uint32_t n)
{
    ros_vector_reset(dst);
    if (!ros_type_is_varlen(src->type) && ros_type_width(src->type) > 0) {
        size_t w = ros_type_width(src->type);
        if (ros_vector_resize_fixed(dst, n) < 0)
            return -1;
        uint8_t *d = dst->values;
        const uint8_t *s = src->values;
        switch (w) {
        case 1: for (uint32_t k = 0; k < n; k++) d[k] = s[sel[k]]; break;
        case 2: for (uint32_t k = 0; k < n; k++) ((uint16_t *)d)[k] = ((const uint16_t *)s)[sel[k]]; break;
        case 4: for (uint32_t k = 0; k < n; k++) ((uint32_t *)d)[k] = ((const uint32_t *)s)[sel[k]]; break;
        default: for (uint32_t k = 0; k < n; k++) ((uint64_t *)d)[k] = ((const uint64_t *)s)[sel[k]]; break;
        }
        if (src->validity)
            for (uint32_t k = 0; k < n; k++)
                if (ros_vector_is_null(src, sel[k]))
                    ros_vector_set_valid(dst, k, false);
        return 0;
    }
    if (ros_vector_reserve(dst, n ? n : 1) < 0)
        return -1;
    for (uint32_t k = 0; k < n; k++)
        if (rt_vector_append_row(dst, src, sel[k]) < 0)
            return -1;
    return 0;
}

int rt_vector_copy(ros_vector *dst, const ros_vector *src)
{
    ros_vector_reset(dst);
    dst->type = src->type;
    if (ros_vector_reserve(dst, src->len ? src->len : 1) < 0)
        return -1;
    if (ros_type_is_varlen(src->type)) {
        if (ros_vector_reserve_data(dst, src->data_len) < 0)
            return -1;
        memcpy(dst->offsets, src->offsets, sizeof(uint32_t) * (src->len + 1));
        if (src->data_len)
            memcpy(dst->data, src->data, src->data_len);
        dst->data_len = src->data_len;
    } else if (ros_type_width(src->type) && src->len) {
        memcpy(dst->values, src->values, ros_type_width(src->type) * src->len);
    }
    if (src->validity)
        memcpy(dst->validity, src->validity, (src->len + 7) / 8);
    dst->len = src->len;
    return 0;
}

static int float_cmp(double a, double b)
{
    bool na = isnan(a), nb = isnan(b);
    if (na || nb)
        return na && nb ? 0 : na ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
}

int rt_value_cmp(const ros_vector *a, uint32_t i, const ros_vector *b, uint32_t j)
{
    switch (a->type) {
    case ROS_TYPE_BOOL: return (int)ROS_VEC_BOOL(a)[i] - (int)ROS_VEC_BOOL(b)[j];
    case ROS_TYPE_INT16: return (ROS_VEC_I16(a)[i] > ROS_VEC_I16(b)[j]) - (ROS_VEC_I16(a)[i] < ROS_VEC_I16(b)[j]);
    case ROS_TYPE_INT32: return (ROS_VEC_I32(a)[i] > ROS_VEC_I32(b)[j]) - (ROS_VEC_I32(a)[i] < ROS_VEC_I32(b)[j]);
    case ROS_TYPE_INT64: return (ROS_VEC_I64(a)[i] > ROS_VEC_I64(b)[j]) - (ROS_VEC_I64(a)[i] < ROS_VEC_I64(b)[j]);
    case ROS_TYPE_FLOAT32: return float_cmp(ROS_VEC_F32(a)[i], ROS_VEC_F32(b)[j]);
    case ROS_TYPE_FLOAT64: return float_cmp(ROS_VEC_F64(a)[i], ROS_VEC_F64(b)[j]);
    case ROS_TYPE_TEXT:
    case ROS_TYPE_BYTEA:
    case ROS_TYPE_FLOAT32_ARRAY: {
        uint32_t la, lb;
        const uint8_t *pa = ros_vector_bytes(a, i, &la);
        const uint8_t *pb = ros_vector_bytes(b, j, &lb);
        /* an empty value may have no bytes at all (NULL data) */
        int c = la && lb ? memcmp(pa, pb, la < lb ? la : lb) : 0;
        if (c)
            return c < 0 ? -1 : 1;
        return (la > lb) - (la < lb);
    }
    default: return 0;
    }
}

int rt_key_encode(const ros_vector *v, uint32_t i, ros_strbuf *buf)
{
    if (ros_vector_is_null(v, i)) {
        ros_strbuf_appendc(buf, 0);
        return buf->oom ? -1 : 0;
    }
    ros_strbuf_appendc(buf, 1);
    if (ros_type_is_varlen(v->type)) {
        uint32_t n;
        const uint8_t *p = ros_vector_bytes(v, i, &n);
        ros_strbuf_appendn(buf, (const char *)&n, sizeof n);
        ros_strbuf_appendn(buf, (const char *)p, n);
    } else if (v->type == ROS_TYPE_FLOAT64 || v->type == ROS_TYPE_FLOAT32) {
        /* -0 equals 0 and all NaNs are equal, as in PostgreSQL */
        double d = v->type == ROS_TYPE_FLOAT64 ? ROS_VEC_F64(v)[i] : ROS_VEC_F32(v)[i];
        if (d == 0)
            d = 0;
        if (isnan(d))
            d = NAN;
        ros_strbuf_appendn(buf, (const char *)&d, sizeof d);
    } else {
        size_t w = ros_type_width(v->type);
        ros_strbuf_appendn(buf, (const char *)v->values + (size_t)i * w, w);
    }
    return buf->oom ? -1 : 0;
}

uint64_t rt_hash_bytes(const void *p, size_t n)
{
    /* FNV-1a, then a final avalanche (splitmix64 finaliser) */
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

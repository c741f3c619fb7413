/*
 * rosql/vector.h
 *    The column-batch layout shared by the engine, user C functions and the
 *    wire format of services.
 *
 * A column (ros_vector) is Arrow-like: a validity bitmap plus either a
 * fixed-width value array or (offsets, bytes) for variable-width types.  The
 * same layout travels from source to sink and is what a service handler
 * receives, so a float column reaches a handler (or a GPU) without per-row
 * decoding.
 *
 * Everything here is header-only (static inline, malloc/realloc based) so a
 * user library can build and fill vectors without linking against rosql:
 * the very same .so can run in the shell process, a job process or a rosd
 * service worker.
 */
#ifndef ROSQL_VECTOR_H
#define ROSQL_VECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Column types.  Numbers are part of the wire format: never renumber. */
typedef enum ros_type {
    ROS_TYPE_NULL = 0,   /* type of an untyped NULL literal */
    ROS_TYPE_BOOL = 1,   /* uint8_t per row, 0 or 1 */
    ROS_TYPE_INT16 = 2,  /* int16_t (smallint) */
    ROS_TYPE_INT32 = 3,  /* int32_t (integer) */
    ROS_TYPE_INT64 = 4,  /* int64_t (bigint) */
    ROS_TYPE_FLOAT32 = 5, /* float (real) */
    ROS_TYPE_FLOAT64 = 6, /* double (double precision) */
    ROS_TYPE_TEXT = 7,   /* offsets + UTF-8 bytes, not NUL-terminated */
    ROS_TYPE_BYTEA = 8,  /* offsets + bytes */
    ROS_TYPE_FLOAT32_ARRAY = 9 /* real[]: offsets (in bytes) + packed floats */
} ros_type;

#define ROS_TYPE_COUNT 10

/* Returns the byte width of a fixed-width type, 0 for variable-width types
 * and for ROS_TYPE_NULL. */
static inline size_t ros_type_width(ros_type t)
{
    switch (t) {
    case ROS_TYPE_BOOL: return 1;
    case ROS_TYPE_INT16: return 2;
    case ROS_TYPE_INT32: return 4;
    case ROS_TYPE_INT64: return 8;
    case ROS_TYPE_FLOAT32: return 4;
    case ROS_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* True for types stored as offsets + bytes. */
static inline bool ros_type_is_varlen(ros_type t)
{
    return t == ROS_TYPE_TEXT || t == ROS_TYPE_BYTEA || t == ROS_TYPE_FLOAT32_ARRAY;
}

/*
 * One column of a batch.
 *
 * Fixed width: values holds len * width bytes.  Variable width: offsets
 * holds len + 1 byte offsets into data (offsets[0] == 0), row i is
 * data[offsets[i] .. offsets[i+1]).  A NULL row of a variable-width column
 * has an empty range.
 */
typedef struct ros_vector {
    ros_type type;       /* column type */
    uint32_t len;        /* rows in use */
    uint32_t cap;        /* rows allocated in validity/values/offsets */
    uint8_t *validity;   /* bit i set => row i is not NULL; NULL => no NULLs */
    void *values;        /* fixed-width values, NULL for varlen types */
    uint32_t *offsets;   /* varlen: cap + 1 entries; NULL otherwise */
    uint8_t *data;       /* varlen bytes */
    uint32_t data_len;   /* bytes of data in use */
    uint32_t data_cap;   /* bytes of data allocated */
} ros_vector;

/* A batch of equally long columns. */
typedef struct ros_batch {
    uint32_t ncols;      /* number of columns */
    uint32_t nrows;      /* rows in every column */
    ros_vector *cols;    /* ncols columns, owned by the batch */
} ros_batch;

/* ---------------------------------------------------------------- */
/* Vector helpers: all return 0 on success, -1 on allocation failure, in
 * which case the vector is unchanged. */

/* Initialises an empty vector of type t (no allocation). */
static inline void ros_vector_init(ros_vector *v, ros_type t)
{
    memset(v, 0, sizeof *v);
    v->type = t;
}

/* Frees the vector's buffers and leaves it empty, keeping its type. */
static inline void ros_vector_free(ros_vector *v)
{
    ros_type t = v->type;
    free(v->validity);
    free(v->values);
    free(v->offsets);
    free(v->data);
    ros_vector_init(v, t);
}

/* Ensures room for cap rows. Existing rows are kept. */
static inline int ros_vector_reserve(ros_vector *v, uint32_t cap)
{
    if (cap <= v->cap && (v->validity || v->cap == 0) && cap > 0)
        return 0;
    if (cap == 0)
        cap = 1;
    if (cap < v->cap)
        cap = v->cap;
    size_t vbytes = (cap + 7) / 8;
    size_t old_vbytes = (v->cap + 7) / 8;
    uint8_t *val = (uint8_t *)realloc(v->validity, vbytes);
    if (!val)
        return -1;
    if (!v->validity)
        memset(val, 0xff, vbytes); /* had no NULLs so far */
    else if (vbytes > old_vbytes)
        memset(val + old_vbytes, 0xff, vbytes - old_vbytes);
    v->validity = val;
    if (ros_type_is_varlen(v->type)) {
        uint32_t *off = (uint32_t *)realloc(v->offsets, (cap + 1) * sizeof(uint32_t));
        if (!off)
            return -1;
        if (!v->offsets)
            off[0] = 0;
        v->offsets = off;
    } else {
        size_t w = ros_type_width(v->type);
        if (w == 0)
            w = 1; /* ROS_TYPE_NULL: keep a dummy byte per row */
        void *nv = realloc(v->values, cap * w);
        if (!nv)
            return -1;
        v->values = nv;
    }
    v->cap = cap;
    return 0;
}

/* Ensures room for extra more bytes of varlen data. */
static inline int ros_vector_reserve_data(ros_vector *v, uint32_t extra)
{
    uint64_t need = (uint64_t)v->data_len + extra;
    if (need <= v->data_cap)
        return 0;
    if (need > UINT32_MAX)
        return -1;
    uint64_t ncap = v->data_cap ? v->data_cap : 64;
    while (ncap < need)
        ncap *= 2;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    uint8_t *nd = (uint8_t *)realloc(v->data, (size_t)ncap);
    if (!nd)
        return -1;
    v->data = nd;
    v->data_cap = (uint32_t)ncap;
    return 0;
}

/* Empties the vector (len = 0) but keeps its buffers. */
static inline void ros_vector_reset(ros_vector *v)
{
    v->len = 0;
    v->data_len = 0;
    if (v->offsets)
        v->offsets[0] = 0;
    if (v->validity)
        memset(v->validity, 0xff, (v->cap + 7) / 8);
}

/* True when row i is NULL. */
static inline bool ros_vector_is_null(const ros_vector *v, uint32_t i)
{
    return v->validity && !(v->validity[i >> 3] & (1u << (i & 7)));
}

/* Marks row i NULL or not NULL. Row i must be below cap. */
static inline void ros_vector_set_valid(ros_vector *v, uint32_t i, bool valid)
{
    if (valid)
        v->validity[i >> 3] |= (uint8_t)(1u << (i & 7));
    else
        v->validity[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

/* Typed accessors for fixed-width columns. */
#define ROS_VEC_BOOL(v) ((uint8_t *)(v)->values)
#define ROS_VEC_I16(v) ((int16_t *)(v)->values)
#define ROS_VEC_I32(v) ((int32_t *)(v)->values)
#define ROS_VEC_I64(v) ((int64_t *)(v)->values)
#define ROS_VEC_F32(v) ((float *)(v)->values)
#define ROS_VEC_F64(v) ((double *)(v)->values)

/* Row i of a varlen column: pointer and length. */
static inline const uint8_t *ros_vector_bytes(const ros_vector *v, uint32_t i, uint32_t *len)
{
    *len = v->offsets[i + 1] - v->offsets[i];
    return v->data + v->offsets[i];
}

/* Appends one NULL row (any type). */
static inline int ros_vector_append_null(ros_vector *v)
{
    if (v->len + 1 > v->cap && ros_vector_reserve(v, v->cap ? v->cap * 2 : 64) < 0)
        return -1;
    if (!v->validity && ros_vector_reserve(v, v->cap) < 0)
        return -1;
    uint32_t i = v->len++;
    ros_vector_set_valid(v, i, false);
    if (ros_type_is_varlen(v->type))
        v->offsets[i + 1] = v->data_len;
    else if (v->values) {
        size_t w = ros_type_width(v->type);
        memset((uint8_t *)v->values + (size_t)i * (w ? w : 1), 0, w ? w : 1);
    }
    return 0;
}

/* Appends one varlen row of n bytes (TEXT, BYTEA, FLOAT32_ARRAY). */
static inline int ros_vector_append_bytes(ros_vector *v, const void *p, uint32_t n)
{
    if (v->len + 1 > v->cap && ros_vector_reserve(v, v->cap ? v->cap * 2 : 64) < 0)
        return -1;
    if (ros_vector_reserve_data(v, n) < 0)
        return -1;
    if (n)
        memcpy(v->data + v->data_len, p, n);
    v->data_len += n;
    uint32_t i = v->len++;
    ros_vector_set_valid(v, i, true);
    v->offsets[i + 1] = v->data_len;
    return 0;
}

/* Appends one fixed-width value given as bytes of the column's width. */
static inline int ros_vector_append_fixed(ros_vector *v, const void *p)
{
    if (v->len + 1 > v->cap && ros_vector_reserve(v, v->cap ? v->cap * 2 : 64) < 0)
        return -1;
    size_t w = ros_type_width(v->type);
    uint32_t i = v->len++;
    memcpy((uint8_t *)v->values + (size_t)i * w, p, w);
    ros_vector_set_valid(v, i, true);
    return 0;
}

static inline int ros_vector_append_i64(ros_vector *v, int64_t x) { return ros_vector_append_fixed(v, &x); }
static inline int ros_vector_append_i32(ros_vector *v, int32_t x) { return ros_vector_append_fixed(v, &x); }
static inline int ros_vector_append_i16(ros_vector *v, int16_t x) { return ros_vector_append_fixed(v, &x); }
static inline int ros_vector_append_f64(ros_vector *v, double x) { return ros_vector_append_fixed(v, &x); }
static inline int ros_vector_append_f32(ros_vector *v, float x) { return ros_vector_append_fixed(v, &x); }
static inline int ros_vector_append_bool(ros_vector *v, bool x) { uint8_t b = x ? 1 : 0; return ros_vector_append_fixed(v, &b); }
static inline int ros_vector_append_text(ros_vector *v, const char *s) { return ros_vector_append_bytes(v, s, (uint32_t)strlen(s)); }

/*
 * Prepares a fixed-width vector to be written in place: len = n, every row
 * valid.  The caller then fills values[0..n) and clears validity bits of
 * NULL rows.  Returns -1 for varlen types or on allocation failure.
 */
static inline int ros_vector_resize_fixed(ros_vector *v, uint32_t n)
{
    if (ros_type_is_varlen(v->type))
        return -1;
    if (ros_vector_reserve(v, n > v->cap ? n : v->cap) < 0)
        return -1;
    if (!v->validity && ros_vector_reserve(v, v->cap) < 0)
        return -1;
    memset(v->validity, 0xff, (v->cap + 7) / 8);
    v->len = n;
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* ROSQL_VECTOR_H */

/*
 * cast.c
 *    Conversions between types: numeric widening and narrowing with range
 *    checks, text input (PostgreSQL's input syntax for each type) and text
 *    output (ros_format_value).
 */
#include "runtime/exec/exec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <rosql/rosql.h>

#include "runtime/core/textin.h"
#include "runtime/core/types.h"

static int out_of_range(ros_error *err, ros_type t)
{
    return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "%s out of range", ros_type_name(t));
}

static double num_f(const ros_vector *v, uint32_t i)
{
    switch (v->type) {
    case ROS_TYPE_INT16: return ROS_VEC_I16(v)[i];
    case ROS_TYPE_INT32: return ROS_VEC_I32(v)[i];
    case ROS_TYPE_INT64: return (double)ROS_VEC_I64(v)[i];
    case ROS_TYPE_FLOAT32: return ROS_VEC_F32(v)[i];
    case ROS_TYPE_FLOAT64: return ROS_VEC_F64(v)[i];
    case ROS_TYPE_BOOL: return ROS_VEC_BOOL(v)[i];
    default: return 0;
    }
}

static int64_t num_i(const ros_vector *v, uint32_t i)
{
    switch (v->type) {
    case ROS_TYPE_INT16: return ROS_VEC_I16(v)[i];
    case ROS_TYPE_INT32: return ROS_VEC_I32(v)[i];
    case ROS_TYPE_INT64: return ROS_VEC_I64(v)[i];
    case ROS_TYPE_BOOL: return ROS_VEC_BOOL(v)[i];
    default: return 0;
    }
}

int rt_cast_vector(const ros_vector *src, ros_vector *dst, ros_error *err)
{
    uint32_t n = src->len;
    ros_type to = dst->type, from = src->type;
    ros_vector_reset(dst);
    if (from == to)
        return rt_vector_copy(dst, src) < 0 ? ros_error_oom(err) : 0;
    if (from == ROS_TYPE_NULL) {
        for (uint32_t i = 0; i < n; i++)
            if (ros_vector_append_null(dst) < 0)
                return ros_error_oom(err);
        return 0;
    }
    bool from_num = ros_type_is_numeric(from) || from == ROS_TYPE_BOOL;
    if (from_num && (ros_type_is_numeric(to) || to == ROS_TYPE_BOOL)) {
        if (ros_vector_resize_fixed(dst, n) < 0)
            return ros_error_oom(err);
        for (uint32_t i = 0; i < n; i++) {
            if (ros_vector_is_null(src, i)) {
                ros_vector_set_valid(dst, i, false);
                continue;
            }
            if (to == ROS_TYPE_FLOAT64) {
                ROS_VEC_F64(dst)[i] = num_f(src, i);
            } else if (to == ROS_TYPE_FLOAT32) {
                double d = num_f(src, i);
                if (isfinite(d) && fabs(d) > 3.40282347e38)
                    return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value out of range: overflow");
                if (d != 0 && (float)d == 0)
                    return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value out of range: underflow");
                ROS_VEC_F32(dst)[i] = (float)d;
            } else if (to == ROS_TYPE_BOOL) {
                ROS_VEC_BOOL(dst)[i] = num_i(src, i) != 0;
            } else {
                int64_t v;
                if (from == ROS_TYPE_FLOAT32 || from == ROS_TYPE_FLOAT64) {
                    double d = rint(num_f(src, i)); /* PostgreSQL rounds half to even */
                    if (isnan(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
                        return out_of_range(err, to);
                    v = (int64_t)d;
                } else
                    v = num_i(src, i);
                if (to == ROS_TYPE_INT16) {
                    if (v < INT16_MIN || v > INT16_MAX)
                        return out_of_range(err, to);
                    ROS_VEC_I16(dst)[i] = (int16_t)v;
                } else if (to == ROS_TYPE_INT32) {
                    if (v < INT32_MIN || v > INT32_MAX)
                        return out_of_range(err, to);
                    ROS_VEC_I32(dst)[i] = (int32_t)v;
                } else
                    ROS_VEC_I64(dst)[i] = v;
            }
        }
        return 0;
    }
    if (to == ROS_TYPE_TEXT && from == ROS_TYPE_BOOL) {
        /* the cast spells booleans out (the output function prints t/f) */
        for (uint32_t i = 0; i < n; i++) {
            bool b = !ros_vector_is_null(src, i) && ROS_VEC_BOOL(src)[i];
            int rc = ros_vector_is_null(src, i) ? ros_vector_append_null(dst)
                                                : ros_vector_append_bytes(dst, b ? "true" : "false", b ? 4 : 5);
            if (rc < 0)
                return ros_error_oom(err);
        }
        return 0;
    }
    if (to == ROS_TYPE_TEXT) {
        char *buf = NULL;
        size_t len = 0, cap = 0;
        for (uint32_t i = 0; i < n; i++) {
            len = 0;
            int r = ros_format_value(src, i, &buf, &len, &cap);
            int rc = r == 1 ? ros_vector_append_null(dst) : r < 0 ? -1 : ros_vector_append_bytes(dst, buf, (uint32_t)len);
            if (rc < 0) {
                free(buf);
                return ros_error_oom(err);
            }
        }
        free(buf);
        return 0;
    }
    if (from == ROS_TYPE_TEXT) {
        for (uint32_t i = 0; i < n; i++) {
            if (ros_vector_is_null(src, i)) {
                if (ros_vector_append_null(dst) < 0)
                    return ros_error_oom(err);
                continue;
            }
            uint32_t len;
            const uint8_t *p = ros_vector_bytes(src, i, &len);
            if (ros_text_append(dst, (const char *)p, len, err) < 0)
                return -1;
        }
        return 0;
    }
    return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH, "cannot cast type %s to %s", ros_type_name(from),
                         ros_type_name(to));
}

/*
 * textio.c
 *    The text form of column values as PostgreSQL prints them, for the file
 *    connector's CSV fields and JSON values.  Reading text back is
 *    ros_text_append (runtime/core/textin.c), shared with casts.
 */
#include "runtime/connectors/connector_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/core/types.h"

/* Longest value quoted in full in an error message. */
/* ================================================================== */
/* Formatting */

size_t rt_format_int(int64_t x, char *buf)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (x < 0)
        buf[k++] = '-';
    while (n)
        buf[k++] = tmp[--n];
    buf[k] = '\0';
    return k;
}

/* Infinity/NaN as PostgreSQL prints them; returns 0 for finite x. */
static size_t format_special(double x, char *buf)
{
    if (isnan(x))
        return (size_t)sprintf(buf, "NaN");
    if (isinf(x))
        return (size_t)sprintf(buf, x < 0 ? "-Infinity" : "Infinity");
    return 0;
}

size_t rt_format_double(double x, char *buf)
{
    size_t n = format_special(x, buf);
    if (n)
        return n;
    /* The shortest of %.15g..%.17g that reads back exactly: %.17g always does. */
    for (int prec = 15; prec < 17; prec++) {
        int k = snprintf(buf, 32, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return (size_t)k;
    }
    return (size_t)snprintf(buf, 32, "%.17g", x);
}

size_t rt_format_float(float x, char *buf)
{
    size_t n = format_special(x, buf);
    if (n)
        return n;
    for (int prec = 6; prec < 9; prec++) {
        int k = snprintf(buf, 32, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x)
            return (size_t)k;
    }
    return (size_t)snprintf(buf, 32, "%.9g", (double)x);
}

void rt_format_value(const ros_vector *v, uint32_t i, ros_strbuf *out)
{
    static const char hex[] = "0123456789abcdef";
    char buf[40];
    size_t n = 0;
    switch (v->type) {
    case ROS_TYPE_BOOL:
        ros_strbuf_appendc(out, ROS_VEC_BOOL(v)[i] ? 't' : 'f');
        return;
    case ROS_TYPE_INT16:
        n = rt_format_int(ROS_VEC_I16(v)[i], buf);
        break;
    case ROS_TYPE_INT32:
        n = rt_format_int(ROS_VEC_I32(v)[i], buf);
        break;
    case ROS_TYPE_INT64:
        n = rt_format_int(ROS_VEC_I64(v)[i], buf);
        break;
    case ROS_TYPE_FLOAT32:
        n = rt_format_float(ROS_VEC_F32(v)[i], buf);
        break;
    case ROS_TYPE_FLOAT64:
        n = rt_format_double(ROS_VEC_F64(v)[i], buf);
        break;
    case ROS_TYPE_TEXT: {
        uint32_t len;
        const uint8_t *p = ros_vector_bytes(v, i, &len);
        if (len) /* an all-empty column may have no data buffer at all */
            ros_strbuf_appendn(out, (const char *)p, len);
        return;
    }
    case ROS_TYPE_BYTEA: {
        uint32_t len;
        const uint8_t *p = ros_vector_bytes(v, i, &len);
        ros_strbuf_appendn(out, "\\x", 2);
        for (uint32_t k = 0; k < len; k++) {
            char h[2] = {hex[p[k] >> 4], hex[p[k] & 15]};
            ros_strbuf_appendn(out, h, 2);
        }
        return;
    }
    case ROS_TYPE_FLOAT32_ARRAY: {
        uint32_t len;
        const uint8_t *p = ros_vector_bytes(v, i, &len);
        ros_strbuf_appendc(out, '{');
        for (uint32_t k = 0; k + 4 <= len; k += 4) {
            float f;
            memcpy(&f, p + k, 4);
            if (k)
                ros_strbuf_appendc(out, ',');
            n = rt_format_float(f, buf);
            ros_strbuf_appendn(out, buf, n);
        }
        ros_strbuf_appendc(out, '}');
        return;
    }
    case ROS_TYPE_NULL:
        return;
    }
    ros_strbuf_appendn(out, buf, n);
}

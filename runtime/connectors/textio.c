/*
 * textio.c
 *    The text form of column values, as PostgreSQL reads and prints them:
 *    parsing a field into a vector and formatting a row back to text.
 *
 * Used by the file connector for CSV fields and JSON values.  Messages follow
 * PostgreSQL's input functions (`invalid input syntax for type integer:
 * "abc"`, `value "99999" is out of range for type smallint`); the caller adds
 * a detail saying where the value came from.
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
#define TEXT_ERR_MAX 200

static int text_bad(ros_error *err, ros_type t, const char *s, size_t n);
static void text_trim(const char **s, size_t *n);
static int text_parse_bool(const char *s, size_t n, uint8_t *out);
static int text_parse_int(const char *s, size_t n, ros_type t, int64_t *out, ros_error *err);
static int text_parse_float(const char *s, size_t n, ros_type t, double *out, ros_error *err);
static int text_append_bytea(ros_vector *v, const char *s, size_t n, ros_error *err);
static int text_append_array(ros_vector *v, const char *s, size_t n, ros_error *err);
static int hex_value(unsigned char c);

/* ================================================================== */
/* Parsing */

/* Records `invalid input syntax for type T: "s"`; returns -1. */
static int text_bad(ros_error *err, ros_type t, const char *s, size_t n)
{
    int len = n > TEXT_ERR_MAX ? TEXT_ERR_MAX : (int)n;
    return ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid input syntax for type %s: \"%.*s%s\"", ros_type_name(t),
                         len, s, n > TEXT_ERR_MAX ? "..." : "");
}

/* Drops leading and trailing white space, as PostgreSQL's input functions do. */
static void text_trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)(*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* Returns 0 with *out set, or -1 when s is not a boolean.  Like PostgreSQL,
 * any unique prefix of true/false/yes/no is accepted, on/off need two
 * letters. */
static int text_parse_bool(const char *s, size_t n, uint8_t *out)
{
    text_trim(&s, &n);
    if (n == 0)
        return -1;
    switch (tolower((unsigned char)s[0])) {
    case 't':
        if (strncasecmp(s, "true", n) == 0 && n <= 4) { *out = 1; return 0; }
        break;
    case 'f':
        if (strncasecmp(s, "false", n) == 0 && n <= 5) { *out = 0; return 0; }
        break;
    case 'y':
        if (strncasecmp(s, "yes", n) == 0 && n <= 3) { *out = 1; return 0; }
        break;
    case 'n':
        if (strncasecmp(s, "no", n) == 0 && n <= 2) { *out = 0; return 0; }
        break;
    case 'o':
        if (n >= 2 && n <= 2 && strncasecmp(s, "on", n) == 0) { *out = 1; return 0; }
        if (n >= 2 && n <= 3 && strncasecmp(s, "off", n) == 0) { *out = 0; return 0; }
        break;
    case '1':
        if (n == 1) { *out = 1; return 0; }
        break;
    case '0':
        if (n == 1) { *out = 0; return 0; }
        break;
    }
    return -1;
}

/* Parses a decimal integer of type t.  Returns 0, or -1 with err set. */
static int text_parse_int(const char *s0, size_t n0, ros_type t, int64_t *out, ros_error *err)
{
    const char *s = s0;
    size_t n = n0;
    text_trim(&s, &n);
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return text_bad(err, t, s0, n0);
    /* Accumulate as a negative number so INT64_MIN fits. */
    int64_t acc = 0;
    bool overflow = false;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return text_bad(err, t, s0, n0);
        if (acc < (INT64_MIN + (int64_t)d) / 10)
            overflow = true;
        else
            acc = acc * 10 - (int64_t)d;
    }
    int64_t lo = t == ROS_TYPE_INT16 ? INT16_MIN : t == ROS_TYPE_INT32 ? INT32_MIN : INT64_MIN;
    int64_t hi = t == ROS_TYPE_INT16 ? INT16_MAX : t == ROS_TYPE_INT32 ? INT32_MAX : INT64_MAX;
    if (!neg) {
        if (acc == INT64_MIN)
            overflow = true;
        else
            acc = -acc;
    }
    if (overflow || acc < lo || acc > hi) {
        int len = n0 > TEXT_ERR_MAX ? TEXT_ERR_MAX : (int)n0;
        return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value \"%.*s\" is out of range for type %s", len, s0,
                             ros_type_name(t));
    }
    *out = acc;
    return 0;
}

/* Parses a float of type t (real or double precision).  Returns 0, or -1
 * with err set. */
static int text_parse_float(const char *s0, size_t n0, ros_type t, double *out, ros_error *err)
{
    const char *s = s0;
    size_t n = n0;
    text_trim(&s, &n);
    char stackbuf[128];
    char *buf = stackbuf;
    if (n == 0)
        return text_bad(err, t, s0, n0);
    if (n >= sizeof stackbuf) {
        buf = malloc(n + 1);
        if (!buf)
            return ros_error_oom(err);
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v;
    if (t == ROS_TYPE_FLOAT32)
        v = strtof(buf, &end);
    else
        v = strtod(buf, &end);
    int rc = 0;
    if (end != buf + n) {
        rc = text_bad(err, t, s0, n0);
    } else if (errno == ERANGE && (v == 0.0 || isinf(v))) {
        int len = n0 > TEXT_ERR_MAX ? TEXT_ERR_MAX : (int)n0;
        rc = ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "\"%.*s\" is out of range for type %s", len, s0,
                           ros_type_name(t));
    }
    if (buf != stackbuf)
        free(buf);
    if (rc == 0)
        *out = v;
    return rc;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* bytea input: "\x" followed by hex pairs (white space between pairs
 * allowed), else escape format (\\ and \ooo octal escapes). */
static int text_append_bytea(ros_vector *v, const char *s, size_t n, ros_error *err)
{
    if (rt_vector_begin_varlen(v) < 0 || ros_vector_reserve_data(v, (uint32_t)n + 1) < 0)
        return ros_error_oom(err);
    uint8_t *dst = v->data + v->data_len;
    uint32_t k = 0;
    if (n >= 2 && s[0] == '\\' && s[1] == 'x') {
        for (size_t i = 2; i < n;) {
            unsigned char c = (unsigned char)s[i];
            if (isspace(c)) {
                i++;
                continue;
            }
            int hi = hex_value(c);
            if (hi < 0)
                return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid hexadecimal digit: \"%c\"", c);
            if (i + 1 >= n)
                return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid hexadecimal data: odd number of digits");
            int lo = hex_value((unsigned char)s[i + 1]);
            if (lo < 0)
                return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid hexadecimal digit: \"%c\"", s[i + 1]);
            dst[k++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        }
    } else {
        for (size_t i = 0; i < n;) {
            if (s[i] != '\\') {
                dst[k++] = (uint8_t)s[i++];
            } else if (i + 1 < n && s[i + 1] == '\\') {
                dst[k++] = '\\';
                i += 2;
            } else if (i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
                       s[i + 3] >= '0' && s[i + 3] <= '7') {
                dst[k++] = (uint8_t)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 | (s[i + 3] - '0'));
                i += 4;
            } else {
                return text_bad(err, ROS_TYPE_BYTEA, s, n);
            }
        }
    }
    rt_vector_commit_varlen(v, k);
    return 0;
}

/* real[] input: {1,2.5,"3"} or [1,2.5,3], one dimension, no NULL elements. */
static int text_append_array(ros_vector *v, const char *s0, size_t n0, ros_error *err)
{
    const char *s = s0;
    size_t n = n0;
    text_trim(&s, &n);
    if (n < 2 || !((s[0] == '{' && s[n - 1] == '}') || (s[0] == '[' && s[n - 1] == ']'))) {
        int len = n0 > TEXT_ERR_MAX ? TEXT_ERR_MAX : (int)n0;
        ros_error_set(err, ROS_ERR_INVALID_TEXT, "malformed array literal: \"%.*s\"", len, s0);
        return ros_error_detail(err, "Array value must start with \"{\" and end with \"}\"."), -1;
    }
    if (rt_vector_begin_varlen(v) < 0)
        return ros_error_oom(err);
    uint32_t bytes = 0;
    size_t i = 1, end = n - 1;
    while (i < end && isspace((unsigned char)s[i]))
        i++;
    if (i < end) {
        for (;;) {
            while (i < end && isspace((unsigned char)s[i]))
                i++;
            size_t a = i, b;
            if (i < end && s[i] == '"') {
                a = ++i;
                while (i < end && s[i] != '"')
                    i++;
                if (i == end)
                    goto malformed;
                b = i++;
                while (i < end && isspace((unsigned char)s[i]))
                    i++;
            } else {
                while (i < end && s[i] != ',')
                    i++;
                b = i;
                while (b > a && isspace((unsigned char)s[b - 1]))
                    b--;
                if (b == a || s[a] == '{' || s[a] == '[')
                    goto malformed;
                if (b - a == 4 && strncasecmp(s + a, "null", 4) == 0) {
                    ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "null elements are not supported in real[] values");
                    return -1;
                }
            }
            double d;
            if (text_parse_float(s + a, b - a, ROS_TYPE_FLOAT32, &d, err) < 0)
                return -1;
            float f = (float)d;
            if (ros_vector_reserve_data(v, bytes + 4) < 0)
                return ros_error_oom(err);
            memcpy(v->data + v->data_len + bytes, &f, 4);
            bytes += 4;
            if (i == end)
                break;
            if (s[i] != ',')
                goto malformed;
            i++;
        }
    }
    rt_vector_commit_varlen(v, bytes);
    return 0;
malformed:;
    int len = n0 > TEXT_ERR_MAX ? TEXT_ERR_MAX : (int)n0;
    return ros_error_set(err, ROS_ERR_INVALID_TEXT, "malformed array literal: \"%.*s\"", len, s0);
}

int rt_text_append(ros_vector *v, const char *s, size_t n, ros_error *err)
{
    if (n > UINT32_MAX / 2)
        return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value too long");
    switch (v->type) {
    case ROS_TYPE_BOOL: {
        uint8_t b;
        if (text_parse_bool(s, n, &b) < 0)
            return text_bad(err, v->type, s, n);
        return ros_vector_append_fixed(v, &b) < 0 ? ros_error_oom(err) : 0;
    }
    case ROS_TYPE_INT16:
    case ROS_TYPE_INT32:
    case ROS_TYPE_INT64: {
        int64_t x = 0;
        if (text_parse_int(s, n, v->type, &x, err) < 0)
            return -1;
        int rc = v->type == ROS_TYPE_INT16   ? ros_vector_append_i16(v, (int16_t)x)
                 : v->type == ROS_TYPE_INT32 ? ros_vector_append_i32(v, (int32_t)x)
                                             : ros_vector_append_i64(v, x);
        return rc < 0 ? ros_error_oom(err) : 0;
    }
    case ROS_TYPE_FLOAT32:
    case ROS_TYPE_FLOAT64: {
        double d;
        if (text_parse_float(s, n, v->type, &d, err) < 0)
            return -1;
        int rc = v->type == ROS_TYPE_FLOAT32 ? ros_vector_append_f32(v, (float)d) : ros_vector_append_f64(v, d);
        return rc < 0 ? ros_error_oom(err) : 0;
    }
    case ROS_TYPE_TEXT:
        return ros_vector_append_bytes(v, s, (uint32_t)n) < 0 ? ros_error_oom(err) : 0;
    case ROS_TYPE_BYTEA:
        return text_append_bytea(v, s, n, err);
    case ROS_TYPE_FLOAT32_ARRAY:
        return text_append_array(v, s, n, err);
    case ROS_TYPE_NULL:
        break;
    }
    return ros_error_set(err, ROS_ERR_INTERNAL, "unexpected column type %d", (int)v->type);
}

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

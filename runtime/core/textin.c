/*
 * textin.c
 *    Text input: parsing a value written in PostgreSQL's input syntax for a
 *    type and appending it to a column.  One parser for every place that
 *    reads text (casts, CSV and JSON files), checked against PostgreSQL by
 *    the differential tests.
 */
#include "runtime/core/textin.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/core/types.h"

static int out_of_range(ros_error *err, ros_type t)
{
    return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "%s out of range", ros_type_name(t));
}

static int bad_input(ros_error *err, ros_type t, const char *s, size_t n)
{
    return ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid input syntax for type %s: \"%.*s\"", ros_type_name(t),
                         (int)(n > 200 ? 200 : n), s);
}

/* Trims ASCII whitespace from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

static int parse_int(const char *s, size_t n, ros_type t, int64_t *out, ros_error *err)
{
    const char *p = s;
    size_t m = n;
    trim(&p, &m);
    char buf[64];
    if (m == 0 || m >= sizeof buf)
        return m >= sizeof buf ? out_of_range(err, t) : bad_input(err, t, s, n);
    memcpy(buf, p, m);
    buf[m] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end != '\0' || end == buf)
        return bad_input(err, t, s, n);
    if (errno == ERANGE)
        return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value \"%s\" is out of range for type %s", buf,
                             ros_type_name(t));
    if ((t == ROS_TYPE_INT16 && (v < INT16_MIN || v > INT16_MAX)) ||
        (t == ROS_TYPE_INT32 && (v < INT32_MIN || v > INT32_MAX)))
        return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value \"%s\" is out of range for type %s", buf,
                             ros_type_name(t));
    *out = v;
    return 0;
}

static int parse_float(const char *s, size_t n, ros_type t, double *out, ros_error *err)
{
    const char *p = s;
    size_t m = n;
    trim(&p, &m);
    char buf[128];
    if (m == 0 || m >= sizeof buf)
        return bad_input(err, t, s, n);
    memcpy(buf, p, m);
    buf[m] = '\0';
    if (strcasecmp(buf, "nan") == 0) {
        *out = NAN;
        return 0;
    }
    if (strcasecmp(buf, "infinity") == 0 || strcasecmp(buf, "+infinity") == 0 || strcasecmp(buf, "inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcasecmp(buf, "-infinity") == 0 || strcasecmp(buf, "-inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    double d;
    if (t == ROS_TYPE_FLOAT32) {
        /* read as float directly: no double rounding, and under/overflow
         * is judged for real's range */
        float f = strtof(buf, &end);
        d = f;
    } else {
        d = strtod(buf, &end);
    }
    if (*end != '\0' || end == buf)
        return bad_input(err, t, s, n);
    /* PostgreSQL rejects what over- or underflows to infinity or zero,
     * keeping denormals; its message quotes the input as given */
    if (errno == ERANGE && (d == 0.0 || isinf(d)))
        return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "\"%.*s\" is out of range for type %s",
                             (int)(n > 200 ? 200 : n), s, ros_type_name(t));
    if (isnan(d) || isinf(d))
        return bad_input(err, t, s, n);
    *out = d;
    return 0;
}

/* PostgreSQL's parse_bool: any prefix of true/false/yes/no, on/off with at
 * least two letters, 1 and 0, case-insensitive, surrounding spaces allowed. */
static int parse_bool(const char *s, size_t n, bool *out, ros_error *err)
{
    const char *p = s;
    size_t m = n;
    trim(&p, &m);
    if (m > 0) {
        switch (tolower((unsigned char)p[0])) {
        case 't': if (m <= 4 && strncasecmp(p, "true", m) == 0) { *out = true; return 0; } break;
        case 'f': if (m <= 5 && strncasecmp(p, "false", m) == 0) { *out = false; return 0; } break;
        case 'y': if (m <= 3 && strncasecmp(p, "yes", m) == 0) { *out = true; return 0; } break;
        case 'n': if (m <= 2 && strncasecmp(p, "no", m) == 0) { *out = false; return 0; } break;
        case 'o':
            if (m == 2 && strncasecmp(p, "on", 2) == 0) { *out = true; return 0; }
            if (m >= 2 && m <= 3 && strncasecmp(p, "off", m) == 0) { *out = false; return 0; }
            break;
        case '1': if (m == 1) { *out = true; return 0; } break;
        case '0': if (m == 1) { *out = false; return 0; } break;
        default: break;
        }
    }
    return bad_input(err, ROS_TYPE_BOOL, s, n);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ros_text_append(ros_vector *dst, const char *s, size_t n, ros_error *err)
{
    int rc = 0;
    switch (dst->type) {
    case ROS_TYPE_BOOL: {
        bool b = false;
        if (parse_bool(s, n, &b, err) < 0)
            return -1;
        rc = ros_vector_append_bool(dst, b);
        break;
    }
    case ROS_TYPE_INT16:
    case ROS_TYPE_INT32:
    case ROS_TYPE_INT64: {
        int64_t v = 0;
        if (parse_int(s, n, dst->type, &v, err) < 0)
            return -1;
        rc = dst->type == ROS_TYPE_INT16   ? ros_vector_append_i16(dst, (int16_t)v)
             : dst->type == ROS_TYPE_INT32 ? ros_vector_append_i32(dst, (int32_t)v)
                                           : ros_vector_append_i64(dst, v);
        break;
    }
    case ROS_TYPE_FLOAT32:
    case ROS_TYPE_FLOAT64: {
        double d;
        if (parse_float(s, n, dst->type, &d, err) < 0)
            return -1;
        rc = dst->type == ROS_TYPE_FLOAT32 ? ros_vector_append_f32(dst, (float)d) : ros_vector_append_f64(dst, d);
        break;
    }
    case ROS_TYPE_TEXT:
        rc = ros_vector_append_bytes(dst, s, (uint32_t)n);
        break;
    case ROS_TYPE_BYTEA: {
        /* PostgreSQL's byteain: \x and hex digit pairs (spaces between
         * pairs allowed), else the escape format (\\ and \ooo octal) */
        uint8_t *tmp = malloc(n + 1);
        size_t k = 0;
        if (!tmp)
            return ros_error_oom(err);
        if (n >= 2 && s[0] == '\\' && s[1] == 'x') {
            for (size_t i = 2; i < n;) {
                if (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
                    i++;
                    continue;
                }
                int hi = hexval((unsigned char)s[i]);
                if (hi < 0) {
                    free(tmp);
                    return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid hexadecimal digit: \"%c\"", s[i]);
                }
                if (i + 1 >= n) {
                    free(tmp);
                    return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid hexadecimal data: odd number of digits");
                }
                int lo = hexval((unsigned char)s[i + 1]);
                if (lo < 0) {
                    free(tmp);
                    return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid hexadecimal digit: \"%c\"", s[i + 1]);
                }
                tmp[k++] = (uint8_t)(hi << 4 | lo);
                i += 2;
            }
        } else {
            for (size_t i = 0; i < n;) {
                if (s[i] != '\\') {
                    tmp[k++] = (uint8_t)s[i++];
                } else if (i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
                           s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
                    tmp[k++] = (uint8_t)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 | (s[i + 3] - '0'));
                    i += 4;
                } else if (i + 1 < n && s[i + 1] == '\\') {
                    tmp[k++] = '\\';
                    i += 2;
                } else {
                    free(tmp);
                    return ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid input syntax for type bytea");
                }
            }
        }
        rc = ros_vector_append_bytes(dst, tmp, (uint32_t)k);
        free(tmp);
        break;
    }
    case ROS_TYPE_FLOAT32_ARRAY: {
        const char *p = s;
        size_t m = n;
        trim(&p, &m);
        if (m < 2 || p[0] != '{' || p[m - 1] != '}')
            return ros_error_set(err, ROS_ERR_INVALID_TEXT, "malformed array literal: \"%.*s\"", (int)n, s);
        size_t cap = 16, cnt = 0;
        float *vals = malloc(cap * sizeof(float));
        if (!vals)
            return ros_error_oom(err);
        const char *q = p + 1, *end = p + m - 1;
        while (q < end) {
            const char *comma = memchr(q, ',', (size_t)(end - q));
            const char *item_end = comma ? comma : end;
            double d;
            if (parse_float(q, (size_t)(item_end - q), ROS_TYPE_FLOAT32, &d, err) < 0) {
                free(vals);
                return -1;
            }
            if (cnt == cap) {
                cap *= 2;
                float *nv = realloc(vals, cap * sizeof(float));
                if (!nv) {
                    free(vals);
                    return ros_error_oom(err);
                }
                vals = nv;
            }
            vals[cnt++] = (float)d;
            q = comma ? comma + 1 : end;
        }
        rc = ros_vector_append_bytes(dst, vals, (uint32_t)(cnt * sizeof(float)));
        free(vals);
        break;
    }
    default:
        rc = ros_vector_append_null(dst);
        break;
    }
    return rc < 0 ? ros_error_oom(err) : 0;
}

/* Reads row i of a numeric vector as double / int64. */

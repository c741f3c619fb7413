/*
 * format.c
 *    PostgreSQL's text output of a value: ros_format_value (rosql.h).
 *
 * Every value a user sees (shell output, CSV, JSON, casts to text) goes
 * through here, so the strings match what PostgreSQL 15 prints with its
 * default settings (extra_float_digits = 1): t/f for booleans, shortest
 * round-trip digits for floats, \x hex for bytea, {a,b} for real[].
 */
#include <rosql/rosql.h>

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest text of one float: sign, 17 digits, point, "e-308", NUL. */
#define FMT_FLOAT_MAX 32

static int fmt_reserve(char **buf, size_t *len, size_t *cap, size_t extra);
static int fmt_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n);
static bool fmt_candidate_ok(const char *c, double x, bool single);
static int fmt_shortest_digits(double x, bool single, char *digits, int *exp10);
static size_t fmt_float(double x, bool single, char *out);

/* ---------------------------------------------------------------- */
/* Buffer */

/* Makes room for extra bytes and a NUL; -1 (buffer unchanged) on failure. */
static int fmt_reserve(char **buf, size_t *len, size_t *cap, size_t extra)
{
    size_t need = *len + extra + 1;
    if (*buf && need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (!nb)
        return -1;
    if (!*buf)
        nb[0] = '\0';
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int fmt_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (fmt_reserve(buf, len, cap, n) < 0)
        return -1;
    if (n > 0) /* s may be NULL for an empty value (a vector without data) */
        memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- */
/* Floats */

/*
 * Parses a decimal candidate c (digits D, "e", exponent) and tells whether
 * it reads back as x (as a float when single) without lying exactly halfway
 * between x and a neighbour.  PostgreSQL's Ryu excludes the interval's
 * bounds even where round-half-even would bring them back to x; strtod
 * cannot see that, so the two midpoints are compared exactly (a double's
 * midpoint is exact in an x87/quad long double, and glibc prints a long
 * double's exact decimal expansion given enough digits).
 */
static bool fmt_candidate_ok(const char *c, double x, bool single)
{
    if (single ? (strtof(c, NULL) != (float)x) : (strtod(c, NULL) != x))
        return false;
#if LDBL_MANT_DIG >= 55
    long double lo = single ? (long double)nextafterf((float)x, -INFINITY) : (long double)nextafter(x, -INFINITY);
    long double hi = single ? (long double)nextafterf((float)x, INFINITY) : (long double)nextafter(x, INFINITY);
    long double mids[2] = {((long double)x + lo) / 2, ((long double)x + hi) / 2};
    long double cv = strtold(c, NULL);
    for (int i = 0; i < 2; i++) {
        if (cv != mids[i] || isinf(mids[i]))
            continue;
        /* cheap test matched; confirm with the exact expansions */
        char exact[1200]; /* a double's midpoint has < 1100 digits */
        snprintf(exact, sizeof exact, "%.1100Le", mids[i]);
        char *e1 = strchr(exact, 'e');
        const char *cd = c;
        const char *ed = exact;
        /* compare significant digits of c ("D e exp" form) with exact */
        char cdig[32];
        int n = 0;
        for (; *cd && *cd != 'e'; cd++)
            if (*cd >= '0' && *cd <= '9')
                cdig[n++] = *cd;
        while (n > 1 && cdig[n - 1] == '0')
            n--;
        int k = 0;
        bool same = true;
        for (; ed < e1; ed++) {
            if (*ed == '.' || *ed == '-')
                continue;
            char want_digit = k < n ? cdig[k] : '0';
            if (*ed != want_digit) {
                same = false;
                break;
            }
            k++;
        }
        if (same)
            return false;
    }
#endif
    return true;
}

/*
 * Finds the fewest significant digits (1..17 for double, 1..9 for float)
 * that read back as x, as PostgreSQL's Ryu-based float8out/float4out do:
 * among the p-digit decimals strictly inside x's rounding interval, the one
 * nearest to x.  That is printf's correctly rounded p digits, or, next to a
 * power of two where the interval is lopsided, its neighbour one unit in the
 * last place away.  Writes the digits without point or trailing zeros to
 * digits and the decimal exponent of the first digit to *exp10; returns the
 * number of digits.  x is finite and non-zero.
 */
static int fmt_shortest_digits(double x, bool single, char *digits, int *exp10)
{
    char tmp[FMT_FLOAT_MAX + 8];
    int maxp = single ? 9 : 17;
    double ax = fabs(x);
    *exp10 = 0;
    for (int p = 1; p <= maxp; p++) {
        /* nearest p-digit decimal, as D * 10^j with D of p digits */
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, ax);
        uint64_t d = 0;
        const char *s = tmp;
        for (; *s != 'e'; s++)
            if (*s != '.')
                d = d * 10 + (uint64_t)(*s - '0');
        int j = atoi(s + 1) - (p - 1);
        uint64_t cands[3] = {d, d + 1, d - 1};
        for (int i = 0; i < 3; i++) {
            if (cands[i] == 0)
                continue;
            snprintf(tmp, sizeof tmp, "%" PRIu64 "e%d", cands[i], j);
            if (p < maxp && !fmt_candidate_ok(tmp, ax, single))
                continue;
            if (p == maxp && i > 0)
                break; /* max digits always round-trip: keep the nearest */
            /* normalise: digits without trailing zeros, exponent of first */
            int n = snprintf(digits, 24, "%" PRIu64, cands[i]);
            *exp10 = j + n - 1;
            while (n > 1 && digits[n - 1] == '0')
                n--;
            digits[n] = '\0';
            return n;
        }
    }
    return 0; /* not reached: p == maxp always returns */
}

/*
 * Formats x as PostgreSQL's float4out/float8out: Infinity, -Infinity, NaN,
 * 0, -0, otherwise the shortest digits, in fixed notation when the decimal
 * exponent is in [-4, 15) for double ([-4, 6) for real) and as d.ddde+XX
 * otherwise.  Returns the length written to out (FMT_FLOAT_MAX bytes).
 */
static size_t fmt_float(double x, bool single, char *out)
{
    if (isnan(x))
        return (size_t)sprintf(out, "NaN");
    if (isinf(x))
        return (size_t)sprintf(out, x < 0 ? "-Infinity" : "Infinity");
    if (x == 0)
        return (size_t)sprintf(out, signbit(x) ? "-0" : "0");

    char digits[24];
    int e = 0;
    int n = fmt_shortest_digits(x, single, digits, &e);
    char *o = out;
    if (x < 0)
        *o++ = '-';
    if (e < -4 || e >= (single ? 6 : 15)) {
        *o++ = digits[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)n - 1);
            o += n - 1;
        }
        o += sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (e < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = -1; i > e; i--)
            *o++ = '0';
        memcpy(o, digits, (size_t)n);
        o += n;
    } else {
        /* e + 1 digits before the point, padded with zeros */
        for (int i = 0; i <= e; i++)
            *o++ = i < n ? digits[i] : '0';
        if (n > e + 1) {
            *o++ = '.';
            memcpy(o, digits + e + 1, (size_t)(n - e - 1));
            o += n - e - 1;
        }
    }
    *o = '\0';
    return (size_t)(o - out);
}

/* ---------------------------------------------------------------- */
/* Entry point */

int ros_format_value(const ros_vector *v, uint32_t row, char **buf, size_t *len, size_t *cap)
{
    if (v->type == ROS_TYPE_NULL || ros_vector_is_null(v, row)) {
        /* still hand back a valid (possibly empty) string */
        return fmt_reserve(buf, len, cap, 0) < 0 ? -1 : 1;
    }

    char tmp[FMT_FLOAT_MAX];
    size_t n;
    switch (v->type) {
    case ROS_TYPE_BOOL:
        return fmt_append(buf, len, cap, ROS_VEC_BOOL(v)[row] ? "t" : "f", 1);
    case ROS_TYPE_INT16:
        n = (size_t)sprintf(tmp, "%d", (int)ROS_VEC_I16(v)[row]);
        return fmt_append(buf, len, cap, tmp, n);
    case ROS_TYPE_INT32:
        n = (size_t)sprintf(tmp, "%" PRId32, ROS_VEC_I32(v)[row]);
        return fmt_append(buf, len, cap, tmp, n);
    case ROS_TYPE_INT64:
        n = (size_t)sprintf(tmp, "%" PRId64, ROS_VEC_I64(v)[row]);
        return fmt_append(buf, len, cap, tmp, n);
    case ROS_TYPE_FLOAT32:
        n = fmt_float(ROS_VEC_F32(v)[row], true, tmp);
        return fmt_append(buf, len, cap, tmp, n);
    case ROS_TYPE_FLOAT64:
        n = fmt_float(ROS_VEC_F64(v)[row], false, tmp);
        return fmt_append(buf, len, cap, tmp, n);
    case ROS_TYPE_TEXT: {
        uint32_t blen;
        const uint8_t *p = ros_vector_bytes(v, row, &blen);
        return fmt_append(buf, len, cap, (const char *)p, blen);
    }
    case ROS_TYPE_BYTEA: {
        static const char hex[] = "0123456789abcdef";
        uint32_t blen;
        const uint8_t *p = ros_vector_bytes(v, row, &blen);
        if (fmt_reserve(buf, len, cap, 2 + (size_t)blen * 2) < 0)
            return -1;
        char *o = *buf + *len;
        *o++ = '\\';
        *o++ = 'x';
        for (uint32_t i = 0; i < blen; i++) {
            *o++ = hex[p[i] >> 4];
            *o++ = hex[p[i] & 15];
        }
        *o = '\0';
        *len = (size_t)(o - *buf);
        return 0;
    }
    case ROS_TYPE_FLOAT32_ARRAY: {
        uint32_t blen;
        const uint8_t *p = ros_vector_bytes(v, row, &blen);
        uint32_t count = blen / (uint32_t)sizeof(float);
        if (fmt_reserve(buf, len, cap, 2 + (size_t)count * 16) < 0)
            return -1;
        (*buf)[(*len)++] = '{';
        for (uint32_t i = 0; i < count; i++) {
            float f;
            memcpy(&f, p + (size_t)i * sizeof f, sizeof f); /* data may be unaligned */
            n = fmt_float(f, true, tmp);
            if (i > 0)
                (*buf)[(*len)++] = ',';
            memcpy(*buf + *len, tmp, n); /* n <= 15: reserved above */
            *len += n;
        }
        (*buf)[(*len)++] = '}';
        (*buf)[*len] = '\0';
        return 0;
    }
    case ROS_TYPE_NULL:
        break;
    }
    return fmt_append(buf, len, cap, "?", 1); /* unknown type tag: visible, not fatal */
}

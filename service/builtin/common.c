/*
 * common.c
 *    Helpers of the built-in handlers: options, column copies, argument
 *    checks (see builtin_int.h).
 *
 * Options arrive as the "key=value\n" text of the service's WITH clause.
 * Unknown keys are ignored: the same text carries the worker's own options
 * (max_batch, device, ...), which are none of a built-in's business.
 */
#include "service/builtin/builtin_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core/types.h"

static void trim(const char **s, const char **e);

/* ---------------------------------------------------------------- */
/* Options */

/* Narrows [*s, *e) to drop leading and trailing blanks. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

bool svc_opt_get(const char *options, const char *key, char *buf, size_t size)
{
    bool found = false;
    size_t klen = strlen(key);
    if (size)
        buf[0] = '\0';
    const char *p = options ? options : "";
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            eol = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(eol - p));
        if (eq) {
            const char *ks = p, *ke = eq;
            trim(&ks, &ke);
            if ((size_t)(ke - ks) == klen && memcmp(ks, key, klen) == 0) {
                const char *vs = eq + 1, *ve = eol;
                trim(&vs, &ve);
                if (ve - vs >= 2 && (*vs == '\'' || *vs == '"') && ve[-1] == *vs) {
                    vs++;
                    ve--;
                }
                size_t n = (size_t)(ve - vs);
                if (size) {
                    if (n > size - 1)
                        n = size - 1;
                    memcpy(buf, vs, n);
                    buf[n] = '\0';
                }
                found = true;
            }
        }
        p = *eol ? eol + 1 : eol;
    }
    return found;
}

int svc_opt_double(const char *options, const char *key, double def, double min, double max,
                   double *out, ros_error *err)
{
    char buf[128];
    if (!svc_opt_get(options, key, buf, sizeof buf)) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (buf[0] == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v) || v < min || v > max) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid value for option %s: \"%s\"", key, buf);
        ros_error_detail(err, "The value must be a number between %g and %g.", min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int svc_opt_u64(const char *options, const char *key, uint64_t def, uint64_t min, uint64_t max,
                uint64_t *out, ros_error *err)
{
    char buf[128];
    if (!svc_opt_get(options, key, buf, sizeof buf)) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (!isdigit((unsigned char)buf[0]) || *end != '\0' || errno == ERANGE || v < min || v > max) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid value for option %s: \"%s\"", key, buf);
        ros_error_detail(err, "The value must be an integer between %llu and %llu.",
                         (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Columns */

int svc_vector_copy(ros_vector *out, const ros_vector *src, uint32_t nrows, ros_error *err)
{
    ros_vector_init(out, src->type);
    if ((unsigned)src->type >= ROS_TYPE_COUNT)
        return ros_error_set(err, ROS_ERR_INTERNAL, "column of unknown type %d", (int)src->type);
    if (src->len < nrows)
        return ros_error_set(err, ROS_ERR_INTERNAL, "column has %u rows, the batch %u", src->len, nrows);
    if (ros_vector_reserve(out, nrows ? nrows : 1) < 0)
        goto oom;
    size_t vbytes = ((size_t)nrows + 7) / 8;
    if (src->validity)
        memcpy(out->validity, src->validity, vbytes);
    else if (src->type == ROS_TYPE_NULL)
        memset(out->validity, 0, vbytes);
    if (ros_type_is_varlen(src->type)) {
        if (nrows > 0) {
            uint32_t base = src->offsets[0], end = src->offsets[nrows];
            if (end < base) {
                ros_vector_free(out);
                return ros_error_set(err, ROS_ERR_INTERNAL, "column offsets decrease");
            }
            uint32_t n = end - base;
            if (n > 0) {
                if (ros_vector_reserve_data(out, n) < 0)
                    goto oom;
                memcpy(out->data, src->data + base, n);
            }
            if (base == 0) {
                memcpy(out->offsets, src->offsets, ((size_t)nrows + 1) * sizeof(uint32_t));
            } else {
                for (uint32_t i = 0; i <= nrows; i++)
                    out->offsets[i] = src->offsets[i] - base;
            }
            out->data_len = n;
        }
    } else {
        size_t w = ros_type_width(src->type);
        if (w == 0)
            w = 1; /* ROS_TYPE_NULL keeps one dummy byte per row */
        if (src->values && src->type != ROS_TYPE_NULL)
            memcpy(out->values, src->values, (size_t)nrows * w);
        else
            memset(out->values, 0, (size_t)nrows * w);
    }
    out->len = nrows;
    return 0;
oom:
    ros_vector_free(out);
    return ros_error_oom(err);
}

void svc_types_text(char *buf, size_t size, const ros_type *types, int ntypes)
{
    size_t at = 0;
    int n = snprintf(buf, size, "(");
    at = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < ntypes && at < size; i++) {
        n = snprintf(buf + at, size - at, "%s%s", i ? ", " : "", ros_type_name(types[i]));
        at += n > 0 ? (size_t)n : 0;
    }
    if (at < size)
        snprintf(buf + at, size - at, ")");
}

void svc_batch_types_text(char *buf, size_t size, const ros_batch *args)
{
    ros_type types[ROS_UDF_MAX_ARGS];
    int n = 0;
    for (uint32_t i = 0; i < args->ncols && n < ROS_UDF_MAX_ARGS; i++)
        types[n++] = args->cols[i].type;
    svc_types_text(buf, size, types, n);
    if (args->ncols > ROS_UDF_MAX_ARGS && size > 5) {
        /* replace ")" by ", ...)" when there is room */
        size_t len = strlen(buf);
        if (len + 5 < size)
            snprintf(buf + len - 1, size - len + 1, ", ...)");
    }
}

int svc_check_args(const char *name, const ros_batch *args, const ros_type *types, int ntypes,
                   ros_error *err)
{
    bool ok = args->ncols == (uint32_t)ntypes;
    for (int i = 0; ok && i < ntypes; i++)
        ok = args->cols[i].type == types[i];
    if (!ok) {
        char want[256], got[256];
        svc_types_text(want, sizeof want, types, ntypes);
        svc_batch_types_text(got, sizeof got, args);
        return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH, "builtin:%s takes %s, received %s", name,
                             want, got);
    }
    for (int i = 0; i < ntypes; i++)
        if (args->cols[i].len < args->nrows)
            return ros_error_set(err, ROS_ERR_INTERNAL, "column %d has %u rows, the batch %u", i + 1,
                                 args->cols[i].len, args->nrows);
    return 0;
}

int svc_batch_alloc(ros_batch *args, const ros_type *types, uint32_t ncols, ros_error *err)
{
    memset(args, 0, sizeof *args);
    args->cols = calloc(ncols ? ncols : 1, sizeof *args->cols);
    if (!args->cols)
        return ros_error_oom(err);
    args->ncols = ncols;
    for (uint32_t i = 0; i < ncols; i++)
        ros_vector_init(&args->cols[i], types[i]);
    return 0;
}

int svc_varlen_fixed_prepare(ros_vector *out, ros_type type, uint32_t nrows, uint32_t rowbytes,
                             ros_error *err)
{
    ros_vector_init(out, type);
    uint64_t total = (uint64_t)nrows * rowbytes;
    if (total > UINT32_MAX)
        return ros_error_set(err, SVC_BUILTIN_ERR_PROGRAM_LIMIT,
                             "result of %llu bytes exceeds the limit of a column (4 GiB)",
                             (unsigned long long)total);
    if (ros_vector_reserve(out, nrows ? nrows : 1) < 0)
        goto oom;
    if (total > 0 && ros_vector_reserve_data(out, (uint32_t)total) < 0)
        goto oom;
    out->offsets[0] = 0;
    return 0;
oom:
    ros_vector_free(out);
    return ros_error_oom(err);
}

/*
 * connector.c
 *    Dispatch from a table's connector name to the built-in connectors, and
 *    the helpers they share: option parsing and batch preparation.
 *
 * A table without a connector name (NULL or "") uses `sqlite`.  Connector
 * names and enumerated option values are compared case-insensitively, since
 * they are written as string literals that the parser does not fold.
 */
#include "runtime/connectors/connector_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One built-in connector. */
typedef struct connector_entry {
    const char *name;
    int (*validate)(cat_db *db, const cat_table *t, ros_error *err);
    rt_source *(*source_open)(cat_db *db, const cat_table *t, const rt_source_opts *opts, ros_error *err);
    rt_sink *(*sink_open)(cat_db *db, const cat_table *t, ros_error *err); /* NULL: read-only */
} connector_entry;

static const connector_entry *connector_find(const char *name);
static const connector_entry *connector_lookup(const cat_table *t, ros_error *err);
static const char *connector_name(const char *name);

static const connector_entry connectors[] = {
    {"sqlite", rt_sqlite_validate, rt_sqlite_source_open, rt_sqlite_sink_open},
    {"datagen", rt_datagen_validate, rt_datagen_source_open, NULL},
    {"file", rt_file_validate, rt_file_source_open, rt_file_sink_open},
};

#define NCONNECTORS (sizeof connectors / sizeof connectors[0])

/* ================================================================== */
/* Dispatch */

/* The effective name: NULL and "" mean the default connector. */
static const char *connector_name(const char *name)
{
    return (name && name[0]) ? name : "sqlite";
}

/* Returns the connector called name, or NULL. */
static const connector_entry *connector_find(const char *name)
{
    name = connector_name(name);
    for (size_t i = 0; i < NCONNECTORS; i++)
        if (strcasecmp(connectors[i].name, name) == 0)
            return &connectors[i];
    return NULL;
}

/* Returns t's connector, or NULL with ROS_ERR_UNDEFINED_OBJECT set. */
static const connector_entry *connector_lookup(const cat_table *t, ros_error *err)
{
    const connector_entry *c = connector_find(t->connector);
    if (!c) {
        ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "connector \"%s\" does not exist", t->connector);
        ros_error_hint(err, "Valid connectors are sqlite, datagen and file.");
    }
    return c;
}

int rt_connector_validate(cat_db *db, const cat_table *t, ros_error *err)
{
    const connector_entry *c = connector_lookup(t, err);
    if (!c)
        return -1;
    return c->validate(db, t, err);
}

rt_source *rt_source_open(cat_db *db, const cat_table *t, const rt_source_opts *opts, ros_error *err)
{
    const connector_entry *c = connector_lookup(t, err);
    if (!c)
        return NULL;
    if (opts) {
        if (opts->nproj < 0 || (opts->nproj > 0 && !opts->proj)) {
            ros_error_set(err, ROS_ERR_INTERNAL, "invalid projection for table \"%s\"", t->name);
            return NULL;
        }
        for (int i = 0; i < opts->nproj; i++) {
            if (opts->proj[i] < 0 || opts->proj[i] >= t->ncols) {
                ros_error_set(err, ROS_ERR_INTERNAL, "projected column %d out of range for table \"%s\"",
                              opts->proj[i], t->name);
                return NULL;
            }
        }
    }
    return c->source_open(db, t, opts, err);
}

rt_sink *rt_sink_open(cat_db *db, const cat_table *t, ros_error *err)
{
    const connector_entry *c = connector_lookup(t, err);
    if (!c)
        return NULL;
    if (!c->sink_open) {
        ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "cannot insert into table \"%s\"", t->name);
        ros_error_detail(err, "Tables with connector \"%s\" are read-only.", c->name);
        return NULL;
    }
    return c->sink_open(db, t, err);
}

bool rt_connector_writable(const char *connector)
{
    const connector_entry *c = connector_find(connector);
    return c && c->sink_open != NULL;
}

/* ================================================================== */
/* Options */

bool rt_opt_is_connector_key(const char *key)
{
    return strcmp(key, "connector") == 0;
}

int rt_opt_unknown(const char *connector, const char *key, const char *valid, ros_error *err)
{
    ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "unknown option \"%s\" for connector \"%s\"", key, connector);
    ros_error_hint(err, "Valid options are: %s.", valid);
    return -1;
}

int rt_opt_invalid(const char *key, const char *value, ros_error *err, const char *detail_fmt, ...)
{
    if (err && err->set)
        return -1;
    ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid value for option \"%s\": \"%s\"", key,
                  value ? value : "");
    if (detail_fmt && err) {
        char buf[sizeof err->detail];
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(buf, sizeof buf, detail_fmt, ap);
        va_end(ap);
        ros_error_detail(err, "%s", buf);
    }
    return -1;
}

int rt_opt_bool(const char *key, const char *value, bool *out, ros_error *err)
{
    static const char *const yes[] = {"true", "t", "on", "yes", "y", "1"};
    static const char *const no[] = {"false", "f", "off", "no", "n", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return rt_opt_invalid(key, value, err, "Option \"%s\" requires a Boolean value.", key);
}

int rt_opt_int(const char *key, const char *value, int64_t min, int64_t max, int64_t *out, ros_error *err)
{
    const char *p = value;
    while (isspace((unsigned char)*p))
        p++;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno == ERANGE)
        goto bad;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0' || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    return rt_opt_invalid(key, value, err, "Option \"%s\" requires an integer between %lld and %lld.", key,
                          (long long)min, (long long)max);
}

int rt_opt_double(const char *key, const char *value, double min, double max, double *out, ros_error *err)
{
    const char *p = value;
    while (isspace((unsigned char)*p))
        p++;
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE || !isfinite(v))
        goto bad;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0' || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    return rt_opt_invalid(key, value, err, "Option \"%s\" requires a number between %g and %g.", key, min, max);
}

int rt_opt_mode(const char *key, const char *value, bool *tail, ros_error *err)
{
    if (strcasecmp(value, "tail") == 0) {
        *tail = true;
        return 0;
    }
    if (strcasecmp(value, "bounded") == 0) {
        *tail = false;
        return 0;
    }
    return rt_opt_invalid(key, value, err, "Valid modes are 'bounded' and 'tail'.");
}

/* ================================================================== */
/* Batches */

int rt_batch_prepare(ros_batch *out, int n, const ros_type *types, ros_error *err)
{
    bool same = out->cols && out->ncols == (uint32_t)n;
    for (int i = 0; same && i < n; i++)
        same = out->cols[i].type == types[i];
    if (same) {
        for (int i = 0; i < n; i++)
            ros_vector_reset(&out->cols[i]);
        out->nrows = 0;
        return 0;
    }
    for (uint32_t i = 0; out->cols && i < out->ncols; i++)
        ros_vector_free(&out->cols[i]);
    free(out->cols);
    out->cols = NULL;
    out->ncols = 0;
    out->nrows = 0;
    if (n == 0)
        return 0;
    ros_vector *cols = calloc((size_t)n, sizeof *cols);
    if (!cols)
        return ros_error_oom(err);
    for (int i = 0; i < n; i++)
        ros_vector_init(&cols[i], types[i]);
    out->cols = cols;
    out->ncols = (uint32_t)n;
    return 0;
}

int rt_vector_begin_varlen(ros_vector *v)
{
    if (v->len + 1 > v->cap && ros_vector_reserve(v, v->cap ? v->cap * 2 : 64) < 0)
        return -1;
    if (!v->validity && ros_vector_reserve(v, v->cap) < 0)
        return -1;
    return (int)v->len;
}

void rt_vector_commit_varlen(ros_vector *v, uint32_t n)
{
    v->data_len += n;
    uint32_t i = v->len++;
    ros_vector_set_valid(v, i, true);
    v->offsets[i + 1] = v->data_len;
}

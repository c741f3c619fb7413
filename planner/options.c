/*
 * options.c
 *    The option vocabularies of functions and services, and their checks.
 */
#include "planner/options.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum opt_kind { OPT_BOOL, OPT_INT, OPT_DURATION, OPT_ENUM, OPT_TEXT } opt_kind;

typedef struct opt_spec {
    const char *name;
    opt_kind kind;
    int64_t min, max;        /* OPT_INT / OPT_DURATION bounds */
    const char *choices;     /* OPT_ENUM: "a|b|c" */
} opt_spec;

#define BIG INT64_C(1000000000000)

static const opt_spec function_opts[] = {
    {"decoupled", OPT_BOOL, 0, 0, NULL},
    {"instances", OPT_INT, 1, 1024, NULL},
    {"device", OPT_ENUM, 0, 0, "cpu|gpu|auto"},
    {"max_batch", OPT_INT, 1, 1 << 20, NULL},
    {"max_delay_ms", OPT_INT, 0, 3600000, NULL},
    {"max_inflight", OPT_INT, 1, 1 << 24, NULL},
    {"ordered", OPT_BOOL, 0, 0, NULL},
    {"timeout_ms", OPT_INT, 1, BIG, NULL},
    {"max_retries", OPT_INT, 0, 1000, NULL},
    {"on_error", OPT_ENUM, 0, 0, "fail|null|skip"},
    {"min_instances", OPT_INT, 0, 1024, NULL},
    {"max_instances", OPT_INT, 1, 1024, NULL},
    {NULL, OPT_TEXT, 0, 0, NULL},
};

static const opt_spec service_opts[] = {
    {"instances", OPT_INT, 0, 1024, NULL},
    {"device", OPT_ENUM, 0, 0, "cpu|gpu|auto"},
    {"max_batch", OPT_INT, 1, 1 << 20, NULL},
    {"max_delay_ms", OPT_INT, 0, 3600000, NULL},
    {"max_queue", OPT_INT, 1, 1 << 24, NULL},
    {"cache_entries", OPT_INT, 0, 1 << 26, NULL},
    {"max_frame_bytes", OPT_INT, 1024, INT64_C(1) << 31, NULL},
    {"endpoint", OPT_ENUM, 0, 0, "ipc|tcp"},
    {"min_instances", OPT_INT, 0, 1024, NULL},
    {"max_instances", OPT_INT, 1, 1024, NULL},
    {"target_inflight", OPT_INT, 1, 1 << 20, NULL},
    {"scale_up_delay", OPT_DURATION, 0, BIG, NULL},
    {"scale_down_delay", OPT_DURATION, 0, BIG, NULL},
    /* handler parameters of the built-in handlers */
    {"delay_ms", OPT_INT, 0, 3600000, NULL},
    {"per_row_ms", OPT_INT, 0, 3600000, NULL},
    {"init_ms", OPT_INT, 0, 3600000, NULL},
    {"dim", OPT_INT, 1, 65536, NULL},
    {"seed", OPT_INT, INT64_MIN, INT64_MAX, NULL},
    {"method", OPT_TEXT, 0, 0, NULL},
    {NULL, OPT_TEXT, 0, 0, NULL},
};

int64_t plan_parse_duration_ms(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    double mult;
    if (*end == '\0' || strcasecmp(end, "ms") == 0)
        mult = 1;
    else if (strcasecmp(end, "s") == 0 || strcasecmp(end, "sec") == 0)
        mult = 1000;
    else if (strcasecmp(end, "min") == 0 || strcasecmp(end, "m") == 0)
        mult = 60000;
    else if (strcasecmp(end, "h") == 0)
        mult = 3600000;
    else
        return -1;
    return (int64_t)(v * mult + 0.5);
}

static int bad_value(plan_ctx *ctx, const sql_option *o, const char *expected)
{
    plan_error(ctx, o->location, ROS_ERR_INVALID_PARAMETER, "invalid value for option \"%s\": \"%s\"", o->key,
               o->value ? o->value : "");
    ros_error_detail(ctx->err, "Expected %s.", expected);
    return -1;
}

static int check_one(plan_ctx *ctx, const opt_spec *spec, const sql_option *o, char *norm, size_t normsz)
{
    const char *v = o->value;
    switch (spec->kind) {
    case OPT_BOOL:
        if (!v)
            v = "true"; /* a bare key means true, as in PostgreSQL's reloptions */
        if (!strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
            snprintf(norm, normsz, "true");
        else if (!strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcmp(v, "0") || !strcasecmp(v, "no"))
            snprintf(norm, normsz, "false");
        else
            return bad_value(ctx, o, "a boolean (true or false)");
        return 0;
    case OPT_INT: {
        if (!v)
            return bad_value(ctx, o, "an integer");
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (end == v || *end || errno)
            return bad_value(ctx, o, "an integer");
        if (x < spec->min || x > spec->max) {
            char buf[128];
            snprintf(buf, sizeof buf, "an integer between %lld and %lld", (long long)spec->min, (long long)spec->max);
            return bad_value(ctx, o, buf);
        }
        snprintf(norm, normsz, "%lld", x);
        return 0;
    }
    case OPT_DURATION: {
        int64_t ms = v ? plan_parse_duration_ms(v) : -1;
        if (ms < spec->min || ms > spec->max)
            return bad_value(ctx, o, "a duration such as '10s', '500ms' or '1min'");
        snprintf(norm, normsz, "%lld", (long long)ms);
        return 0;
    }
    case OPT_ENUM: {
        if (v) {
            const char *c = spec->choices;
            size_t n = strlen(v);
            while (*c) {
                const char *bar = strchr(c, '|');
                size_t len = bar ? (size_t)(bar - c) : strlen(c);
                if (len == n && strncasecmp(c, v, n) == 0) {
                    snprintf(norm, normsz, "%.*s", (int)len, c);
                    return 0;
                }
                c += len + (bar ? 1 : 0);
            }
        }
        char buf[128];
        snprintf(buf, sizeof buf, "one of %s", spec->choices);
        for (char *p = buf; *p; p++)
            if (*p == '|')
                *p = ',';
        return bad_value(ctx, o, buf);
    }
    case OPT_TEXT:
        snprintf(norm, normsz, "%s", v ? v : "");
        return 0;
    }
    return 0;
}

int plan_check_options(plan_ctx *ctx, plan_option_set set, const sql_list *options, cat_options *out)
{
    const opt_spec *specs = set == PLAN_OPTS_FUNCTION ? function_opts : service_opts;
    for (int i = 0; i < options->n; i++) {
        const sql_option *o = options->items[i];
        const opt_spec *spec = NULL;
        for (const opt_spec *s = specs; s->name; s++)
            if (strcmp(s->name, o->key) == 0)
                spec = s;
        if (!spec) {
            plan_error(ctx, o->location, ROS_ERR_INVALID_PARAMETER, "unrecognized option \"%s\"", o->key);
            ros_strbuf sb = ROS_STRBUF_INIT;
            for (const opt_spec *s = specs; s->name; s++)
                ros_strbuf_appendf(&sb, "%s%s", s == specs ? "" : ", ", s->name);
            ros_error_hint(ctx->err, "Valid options are: %s.", ros_strbuf_cstr(&sb));
            ros_strbuf_free(&sb);
            return -1;
        }
        char norm[256];
        if (check_one(ctx, spec, o, norm, sizeof norm) < 0)
            return -1;
        if (cat_options_set(out, o->key, norm) < 0)
            return ros_error_oom(ctx->err);
    }
    const char *mn = cat_options_get(out, "min_instances"), *mx = cat_options_get(out, "max_instances");
    if (mn && mx && atoll(mn) > atoll(mx)) {
        plan_error(ctx, -1, ROS_ERR_INVALID_PARAMETER, "min_instances (%s) is greater than max_instances (%s)", mn, mx);
        return -1;
    }
    return 0;
}

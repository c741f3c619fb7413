/*
 * error.c
 *    Recording and formatting PostgreSQL-shaped errors (see error.h).
 */
#include "error.h"

#include <stdio.h>
#include <string.h>

static void error_field(char *dst, size_t size, const char *fmt, va_list ap);
static void error_context_line(const char *stmt, int position, ros_strbuf *out);

void ros_error_clear(ros_error *e)
{
    memset(e, 0, sizeof *e);
}

int ros_error_setv(ros_error *e, const char *code, const char *fmt, va_list ap)
{
    if (!e || e->set)
        return -1;
    e->set = true;
    snprintf(e->code, sizeof e->code, "%s", code ? code : ROS_ERR_INTERNAL);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    e->detail[0] = e->hint[0] = '\0';
    e->position = 0;
    return -1;
}

int ros_error_set(ros_error *e, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ros_error_setv(e, code, fmt, ap);
    va_end(ap);
    return -1;
}

static void error_field(char *dst, size_t size, const char *fmt, va_list ap)
{
    if (dst[0] == '\0')
        vsnprintf(dst, size, fmt, ap);
}

void ros_error_detail(ros_error *e, const char *fmt, ...)
{
    if (!e || !e->set)
        return;
    va_list ap;
    va_start(ap, fmt);
    error_field(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
}

void ros_error_hint(ros_error *e, const char *fmt, ...)
{
    if (!e || !e->set)
        return;
    va_list ap;
    va_start(ap, fmt);
    error_field(e->hint, sizeof e->hint, fmt, ap);
    va_end(ap);
}

void ros_error_position(ros_error *e, int position)
{
    if (e && e->set && e->position == 0 && position > 0)
        e->position = position;
}

int ros_error_oom(ros_error *e)
{
    return ros_error_set(e, ROS_ERR_OUT_OF_MEMORY, "out of memory");
}

/*
 * psql prints the line holding the error position, prefixed "LINE n: ", and a
 * caret under the character.  Long lines are not shortened here; psql does,
 * but only past 60 columns of context, which our statements rarely reach.
 */
static void error_context_line(const char *stmt, int position, ros_strbuf *out)
{
    int lineno = 1;
    const char *line = stmt;
    const char *p = stmt;
    int target = position - 1; /* 0-based character index */
    int idx = 0;
    while (*p && idx < target) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n') {
            lineno++;
            line = p + 1;
        }
        /* count characters, not bytes: skip UTF-8 continuation bytes */
        p++;
        while ((*p & 0xC0) == 0x80)
            p++;
        idx++;
    }
    const char *end = strchr(line, '\n');
    size_t linelen = end ? (size_t)(end - line) : strlen(line);
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "LINE %d: ", lineno);
    ros_strbuf_append(out, prefix);
    ros_strbuf_appendn(out, line, linelen);
    ros_strbuf_appendc(out, '\n');
    int col = 0;
    for (const char *q = line; q < p; q++)
        if ((*q & 0xC0) != 0x80)
            col++;
    for (int i = 0; i < plen + col; i++)
        ros_strbuf_appendc(out, ' ');
    ros_strbuf_append(out, "^\n");
}

void ros_error_format(const ros_error *e, const char *stmt, ros_strbuf *out)
{
    ros_strbuf_appendf(out, "ERROR:  %s\n", e->message);
    if (stmt && e->position > 0 && (size_t)e->position <= strlen(stmt) + 1)
        error_context_line(stmt, e->position, out);
    if (e->detail[0])
        ros_strbuf_appendf(out, "DETAIL:  %s\n", e->detail);
    if (e->hint[0])
        ros_strbuf_appendf(out, "HINT:  %s\n", e->hint);
}

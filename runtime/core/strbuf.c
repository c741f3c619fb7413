/*
 * strbuf.c
 *    Growable string buffer (see strbuf.h).
 */
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool strbuf_grow(ros_strbuf *sb, size_t extra);

void ros_strbuf_init(ros_strbuf *sb)
{
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->oom = false;
}

void ros_strbuf_free(ros_strbuf *sb)
{
    free(sb->data);
    ros_strbuf_init(sb);
}

void ros_strbuf_reset(ros_strbuf *sb)
{
    sb->len = 0;
    if (sb->data)
        sb->data[0] = '\0';
}

/* Makes room for extra bytes plus the NUL; false (and oom) on failure. */
static bool strbuf_grow(ros_strbuf *sb, size_t extra)
{
    if (sb->oom)
        return false;
    if (sb->len + extra + 1 <= sb->cap)
        return true;
    size_t ncap = sb->cap ? sb->cap : 64;
    while (ncap < sb->len + extra + 1)
        ncap *= 2;
    char *nd = realloc(sb->data, ncap);
    if (!nd) {
        sb->oom = true;
        return false;
    }
    sb->data = nd;
    sb->cap = ncap;
    return true;
}

void ros_strbuf_appendn(ros_strbuf *sb, const char *s, size_t n)
{
    if (!strbuf_grow(sb, n))
        return;
    if (n)
        memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void ros_strbuf_append(ros_strbuf *sb, const char *s)
{
    ros_strbuf_appendn(sb, s, strlen(s));
}

void ros_strbuf_appendc(ros_strbuf *sb, char c)
{
    ros_strbuf_appendn(sb, &c, 1);
}

void ros_strbuf_appendv(ros_strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !strbuf_grow(sb, (size_t)n))
        return;
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void ros_strbuf_appendf(ros_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ros_strbuf_appendv(sb, fmt, ap);
    va_end(ap);
}

const char *ros_strbuf_cstr(const ros_strbuf *sb)
{
    return sb->data ? sb->data : "";
}

char *ros_strbuf_steal(ros_strbuf *sb)
{
    char *d = sb->data;
    if (!d && !sb->oom)
        d = calloc(1, 1);
    ros_strbuf_init(sb);
    return d;
}

/*
 * strbuf.h
 *    A growable NUL-terminated string buffer.
 *
 * Allocation failure is sticky: the buffer stops growing, sets oom and keeps
 * what it had, so callers check once at the end instead of after each append.
 */
#ifndef ROS_STRBUF_H
#define ROS_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ros_strbuf {
    char *data;   /* NUL-terminated contents, or NULL before the first append */
    size_t len;   /* bytes in use, not counting the NUL */
    size_t cap;   /* bytes allocated */
    bool oom;     /* an allocation failed; contents are truncated */
} ros_strbuf;

#define ROS_STRBUF_INIT {NULL, 0, 0, false}

void ros_strbuf_init(ros_strbuf *sb);
void ros_strbuf_free(ros_strbuf *sb);
void ros_strbuf_reset(ros_strbuf *sb);                 /* len = 0, keeps memory */
void ros_strbuf_append(ros_strbuf *sb, const char *s);
void ros_strbuf_appendn(ros_strbuf *sb, const char *s, size_t n);
void ros_strbuf_appendc(ros_strbuf *sb, char c);
void ros_strbuf_appendf(ros_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ros_strbuf_appendv(ros_strbuf *sb, const char *fmt, va_list ap);
/* Returns the contents ("" when empty); valid until the next append. */
const char *ros_strbuf_cstr(const ros_strbuf *sb);
/* Hands the malloc'd contents to the caller (never NULL unless oom) and empties sb. */
char *ros_strbuf_steal(ros_strbuf *sb);

#endif /* ROS_STRBUF_H */

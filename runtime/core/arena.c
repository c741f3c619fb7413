/*
 * arena.c
 *    Bump allocator for statement-lifetime objects (see arena.h).
 */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 16384
#define ARENA_ALIGN 16

struct ros_arena_chunk {
    ros_arena_chunk *next; /* older chunk */
    size_t size;           /* usable bytes after the header */
    _Alignas(ARENA_ALIGN) unsigned char mem[];
};

void ros_arena_init(ros_arena *a)
{
    a->head = NULL;
    a->used = 0;
    a->total = 0;
}

void ros_arena_free(ros_arena *a)
{
    ros_arena_chunk *c = a->head;
    while (c) {
        ros_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    ros_arena_init(a);
}

void *ros_arena_alloc(ros_arena *a, size_t n)
{
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n == 0)
        n = ARENA_ALIGN;
    if (!a->head || a->used + n > a->head->size) {
        size_t sz = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        ros_arena_chunk *c = malloc(sizeof(ros_arena_chunk) + sz);
        if (!c)
            return NULL;
        c->size = sz;
        c->next = a->head;
        a->head = c;
        a->used = 0;
    }
    void *p = a->head->mem + a->used;
    a->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

char *ros_arena_strndup(ros_arena *a, const char *s, size_t n)
{
    char *p = ros_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ros_arena_strdup(ros_arena *a, const char *s)
{
    return s ? ros_arena_strndup(a, s, strlen(s)) : NULL;
}

char *ros_arena_printf(ros_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n < 0 ? NULL : ros_arena_alloc(a, (size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

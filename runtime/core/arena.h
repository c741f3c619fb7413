/*
 * arena.h
 *    A bump allocator for everything that lives exactly as long as one
 *    statement: AST nodes, bound expressions, plans.
 *
 * Freed all at once with ros_arena_free(); nothing in it is freed singly.
 * Allocation returns NULL on failure (callers report ROS_ERR_OUT_OF_MEMORY).
 */
#ifndef ROS_ARENA_H
#define ROS_ARENA_H

#include <stddef.h>

typedef struct ros_arena_chunk ros_arena_chunk;

typedef struct ros_arena {
    ros_arena_chunk *head;  /* newest chunk first */
    size_t used;            /* bytes used in head */
    size_t total;           /* bytes handed out, for statistics */
} ros_arena;

void ros_arena_init(ros_arena *a);
void ros_arena_free(ros_arena *a);
/* Returns n zeroed bytes aligned for any type, or NULL. */
void *ros_arena_alloc(ros_arena *a, size_t n);
/* Returns a copy of s (or of its first n bytes) in the arena, or NULL. */
char *ros_arena_strdup(ros_arena *a, const char *s);
char *ros_arena_strndup(ros_arena *a, const char *s, size_t n);
/* printf into the arena. */
char *ros_arena_printf(ros_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ROS_ARENA_NEW(a, T) ((T *)ros_arena_alloc((a), sizeof(T)))
#define ROS_ARENA_ARRAY(a, T, n) ((T *)ros_arena_alloc((a), sizeof(T) * (size_t)(n)))

#endif /* ROS_ARENA_H */

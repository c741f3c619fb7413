/*
 * json.h
 *    A small JSON reader and writer for the file connector's JSON lines
 *    format: one object per line, scalar or array values.
 */
#ifndef RT_JSON_H
#define RT_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/core/strbuf.h"

typedef enum rt_json_kind {
    RT_JSON_NULL,
    RT_JSON_FALSE,
    RT_JSON_TRUE,
    RT_JSON_NUMBER,
    RT_JSON_STRING,
    RT_JSON_ARRAY,
    RT_JSON_OBJECT
} rt_json_kind;

/* One member value of the parsed object. */
typedef struct rt_json_value {
    rt_json_kind kind;
    bool in_scratch;   /* true: bytes are in the scratch buffer (decoded
                          strings); false: in the input (the value's text) */
    size_t off;        /* offset of the bytes in scratch or input */
    size_t len;        /* their length */
} rt_json_value;

/* Called for each member of the object, key decoded (valid during the call
 * only).  Returns 0 to go on, -1 to stop parsing. */
typedef int (*rt_json_member_fn)(void *arg, const char *key, size_t keylen, const rt_json_value *v);

/*
 * Parses s[0..n) as one JSON object (white space around it allowed, nothing
 * else), decoding member keys and string values into scratch (emptied
 * first).  Returns 0; -1 on a syntax error with *why set to a reason
 * sentence and *at to its byte offset; -2 when fn stopped; -3 when scratch
 * ran out of memory.
 */
int rt_json_parse_object(const char *s, size_t n, ros_strbuf *scratch, rt_json_member_fn fn, void *arg,
                         const char **why, size_t *at);

/* Appends s[0..n) as a JSON string literal (quotes included), escaping
 * quotes, backslashes and control characters.  Other bytes pass through. */
void rt_json_append_string(ros_strbuf *out, const char *s, size_t n);

#endif /* RT_JSON_H */

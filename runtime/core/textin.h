/*
 * textin.h
 *    Parsing values written in PostgreSQL's input syntax.
 */
#ifndef ROS_TEXTIN_H
#define ROS_TEXTIN_H

#include <stddef.h>

#include <rosql/vector.h>

#include "runtime/core/error.h"

/*
 * Parses s (n bytes, not NUL-terminated) as a value of dst->type and appends
 * it to dst: booleans (t/true/yes/on/1 ... and their prefixes), integers with
 * range checks, floats (also NaN, Infinity), text, bytea (\x hex or escape
 * form), real[] ('{1,2.5}').  Returns 0, or -1 with err set as PostgreSQL
 * words it (`invalid input syntax for type integer: "abc"`,
 * `value "99999" is out of range for type smallint`); dst is unchanged then.
 */
int ros_text_append(ros_vector *dst, const char *s, size_t n, ros_error *err);

#endif /* ROS_TEXTIN_H */

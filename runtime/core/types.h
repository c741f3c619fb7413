/*
 * types.h
 *    Names of SQL types and conversion between them and ros_type.
 */
#ifndef ROS_TYPES_H
#define ROS_TYPES_H

#include <stdbool.h>
#include <rosql/vector.h>

/* Returns the canonical SQL name of t ("integer", "real[]", ...). */
const char *ros_type_name(ros_type t);

/*
 * Resolves a SQL type name as PostgreSQL spells it (case-insensitive):
 * bool/boolean, int2/smallint, int/int4/integer, int8/bigint, real/float4,
 * float8/double precision/float, text/varchar/character varying/char,
 * bytea, and real[]/float4[] (is_array set by the caller's grammar or with a
 * trailing "[]").  Returns false when the name is unknown.
 */
bool ros_type_from_name(const char *name, bool is_array, ros_type *out);

/* True for smallint, integer, bigint, real, double precision. */
bool ros_type_is_numeric(ros_type t);
bool ros_type_is_integer(ros_type t);

#endif /* ROS_TYPES_H */

/*
 * types.c
 *    SQL type names.
 */
#include "types.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *ros_type_name(ros_type t)
{
    switch (t) {
    case ROS_TYPE_NULL: return "unknown";
    case ROS_TYPE_BOOL: return "boolean";
    case ROS_TYPE_INT16: return "smallint";
    case ROS_TYPE_INT32: return "integer";
    case ROS_TYPE_INT64: return "bigint";
    case ROS_TYPE_FLOAT32: return "real";
    case ROS_TYPE_FLOAT64: return "double precision";
    case ROS_TYPE_TEXT: return "text";
    case ROS_TYPE_BYTEA: return "bytea";
    case ROS_TYPE_FLOAT32_ARRAY: return "real[]";
    }
    return "unknown";
}

bool ros_type_from_name(const char *name, bool is_array, ros_type *out)
{
    static const struct {
        const char *name;
        ros_type type;
    } names[] = {
        {"bool", ROS_TYPE_BOOL},       {"boolean", ROS_TYPE_BOOL},
        {"int2", ROS_TYPE_INT16},      {"smallint", ROS_TYPE_INT16},
        {"int", ROS_TYPE_INT32},       {"int4", ROS_TYPE_INT32},
        {"integer", ROS_TYPE_INT32},   {"int8", ROS_TYPE_INT64},
        {"bigint", ROS_TYPE_INT64},    {"real", ROS_TYPE_FLOAT32},
        {"float4", ROS_TYPE_FLOAT32},  {"float8", ROS_TYPE_FLOAT64},
        {"float", ROS_TYPE_FLOAT64},   {"double precision", ROS_TYPE_FLOAT64},
        {"double", ROS_TYPE_FLOAT64},  {"numeric", ROS_TYPE_FLOAT64},
        {"decimal", ROS_TYPE_FLOAT64}, {"text", ROS_TYPE_TEXT},
        {"varchar", ROS_TYPE_TEXT},    {"character varying", ROS_TYPE_TEXT},
        {"bpchar", ROS_TYPE_TEXT},     {"char", ROS_TYPE_TEXT},
        {"character", ROS_TYPE_TEXT},  {"string", ROS_TYPE_TEXT},
        {"bytea", ROS_TYPE_BYTEA},
    };
    char buf[64];
    size_t n = strlen(name);
    if (n >= sizeof buf)
        return false;
    memcpy(buf, name, n + 1);
    if (n > 2 && strcmp(buf + n - 2, "[]") == 0) {
        buf[n - 2] = '\0';
        is_array = true;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(buf, names[i].name) == 0) {
            ros_type t = names[i].type;
            if (is_array) {
                if (t != ROS_TYPE_FLOAT32)
                    return false; /* only real[] is supported */
                t = ROS_TYPE_FLOAT32_ARRAY;
            }
            *out = t;
            return true;
        }
    }
    return false;
}

bool ros_type_is_integer(ros_type t)
{
    return t == ROS_TYPE_INT16 || t == ROS_TYPE_INT32 || t == ROS_TYPE_INT64;
}

bool ros_type_is_numeric(ros_type t)
{
    return ros_type_is_integer(t) || t == ROS_TYPE_FLOAT32 || t == ROS_TYPE_FLOAT64;
}

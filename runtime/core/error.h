/*
 * error.h
 *    User-visible errors in PostgreSQL's shape: a SQLSTATE code, a short
 *    lowercase message, optional detail and hint sentences and a position in
 *    the statement text.
 *
 * Errors are collected on a context (one ros_error per statement) and
 * reported once, by whoever owns the statement text (the shell), through
 * ros_error_format().  Setting an error that is already set keeps the first
 * one: the first failure is the one worth reporting.
 */
#ifndef ROS_ERROR_H
#define ROS_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

#include "strbuf.h"

/* SQLSTATE codes used by rosql (PostgreSQL's values). */
#define ROS_ERR_SYNTAX "42601"
#define ROS_ERR_UNDEFINED_TABLE "42P01"
#define ROS_ERR_UNDEFINED_COLUMN "42703"
#define ROS_ERR_UNDEFINED_FUNCTION "42883"
#define ROS_ERR_UNDEFINED_OBJECT "42704"
#define ROS_ERR_AMBIGUOUS_COLUMN "42702"
#define ROS_ERR_DUPLICATE_TABLE "42P07"
#define ROS_ERR_DUPLICATE_OBJECT "42710"
#define ROS_ERR_DUPLICATE_FUNCTION "42723"
#define ROS_ERR_DUPLICATE_COLUMN "42701"
#define ROS_ERR_DEPENDENT_OBJECTS "2BP01"
#define ROS_ERR_DATATYPE_MISMATCH "42804"
#define ROS_ERR_GROUPING "42803"
#define ROS_ERR_INVALID_PARAMETER "22023"
#define ROS_ERR_DIVISION_BY_ZERO "22012"
#define ROS_ERR_OUT_OF_RANGE "22003"
#define ROS_ERR_INVALID_TEXT "22P02"
#define ROS_ERR_INVALID_ESCAPE "22025"
#define ROS_ERR_INVALID_ARGUMENT "22023"
#define ROS_ERR_NOT_SUPPORTED "0A000"
#define ROS_ERR_UNDEFINED_FILE "58P01"
#define ROS_ERR_IO "58030"
#define ROS_ERR_CANCELED "57014"
#define ROS_ERR_CANNOT_CONNECT_NOW "57P03"
#define ROS_ERR_OUT_OF_MEMORY "53200"
#define ROS_ERR_EXTERNAL "38000"
#define ROS_ERR_CONNECTION "08006"
#define ROS_ERR_INTERNAL "XX000"
#define ROS_ERR_DATA_CORRUPTED "XX001"

typedef struct ros_error {
    bool set;             /* an error has been recorded */
    char code[6];         /* SQLSTATE, NUL-terminated */
    char message[512];    /* short, lowercase, no full stop */
    char detail[512];     /* full sentence(s) or "" */
    char hint[512];       /* full sentence(s) or "" */
    int position;         /* 1-based character offset into the statement, 0 = none */
} ros_error;

/* Clears e. */
void ros_error_clear(ros_error *e);

/* Records an error unless one is already set.  Always returns -1, so callers
 * can write `return ros_error_set(...)`. */
int ros_error_set(ros_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ros_error_setv(ros_error *e, const char *code, const char *fmt, va_list ap);

/* Add a detail / hint / position to the error already set (no-ops when none
 * is set, or when the field is already filled). */
void ros_error_detail(ros_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ros_error_hint(ros_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ros_error_position(ros_error *e, int position);

/* Records "out of memory" and returns -1. */
int ros_error_oom(ros_error *e);

/*
 * Appends the psql-style report of e to out:
 *     ERROR:  syntax error at or near "FORM"
 *     LINE 1: SELECT * FORM t
 *                      ^
 *     DETAIL:  ...
 *     HINT:  ...
 * stmt is the statement text the position refers to (may be NULL).
 */
void ros_error_format(const ros_error *e, const char *stmt, ros_strbuf *out);

#endif /* ROS_ERROR_H */

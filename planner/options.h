/*
 * options.h
 *    Checking WITH (...) / SET (...) option lists of functions and services
 *    against what rosql knows, so a typo or a bad value is an error that
 *    names the option instead of a silently ignored setting.
 */
#ifndef PLAN_OPTIONS_H
#define PLAN_OPTIONS_H

#include "catalog/catalog.h"
#include "planner/planner.h"
#include "sql/ast.h"

typedef enum plan_option_set {
    PLAN_OPTS_FUNCTION,  /* CREATE FUNCTION ... WITH (decoupled = true, ...) */
    PLAN_OPTS_SERVICE,   /* CREATE SERVICE ... WITH (instances = 2, ...) */
} plan_option_set;

/*
 * Validates options (a list of sql_option*) and stores them, normalised
 * (booleans as true/false, durations as milliseconds), into out (merged over
 * what out already holds, for ALTER).  Errors: ROS_ERR_INVALID_PARAMETER
 * `unrecognized option "x"` (with a hint listing the valid ones) or
 * `invalid value for option "x": "v"` with a detail saying what is expected.
 */
int plan_check_options(plan_ctx *ctx, plan_option_set set, const sql_list *options, cat_options *out);

/* Parses a duration ('2s', '500ms', '1min', '250' = ms) into milliseconds;
 * -1 when malformed. */
int64_t plan_parse_duration_ms(const char *s);

#endif /* PLAN_OPTIONS_H */

/*
 * connector_int.h
 *    What the built-in connectors share inside runtime/connectors: option
 *    parsing, batch preparation, text conversion of values and each
 *    connector's entry points.  Not for use outside this folder.
 */
#ifndef RT_CONNECTOR_INT_H
#define RT_CONNECTOR_INT_H

#include <stddef.h>

#include "runtime/connectors/connector.h"
#include "runtime/core/strbuf.h"

/* SQLSTATEs used here that runtime/core/error.h does not name. */
#define RT_ERR_BAD_COPY_FORMAT "22P04"   /* malformed CSV / JSON record */
#define RT_ERR_NOT_NULL "23502"          /* NULL into a NOT NULL column */

/* Default rows per batch when a caller passes max_rows == 0. */
#define RT_DEFAULT_BATCH 1024

/* ------------------------------------------------------------------ */
/* Connector entry points (one set per connector file) */

int rt_sqlite_validate(cat_db *db, const cat_table *t, ros_error *err);
rt_source *rt_sqlite_source_open(cat_db *db, const cat_table *t, const rt_source_opts *opts, ros_error *err);
rt_sink *rt_sqlite_sink_open(cat_db *db, const cat_table *t, ros_error *err);

int rt_datagen_validate(cat_db *db, const cat_table *t, ros_error *err);
rt_source *rt_datagen_source_open(cat_db *db, const cat_table *t, const rt_source_opts *opts, ros_error *err);

int rt_file_validate(cat_db *db, const cat_table *t, ros_error *err);
rt_source *rt_file_source_open(cat_db *db, const cat_table *t, const rt_source_opts *opts, ros_error *err);
rt_sink *rt_file_sink_open(cat_db *db, const cat_table *t, ros_error *err);

/* ------------------------------------------------------------------ */
/* Options (connector.c) */

/* True for the "connector" key, which validators skip if it is still there. */
bool rt_opt_is_connector_key(const char *key);

/* Records ROS_ERR_INVALID_PARAMETER `unknown option "key" for connector "c"`
 * with a hint listing valid (a ", "-separated list).  Returns -1. */
int rt_opt_unknown(const char *connector, const char *key, const char *valid, ros_error *err);

/* Records `invalid value for option "key": "value"` with an optional detail
 * (printf format, may be NULL).  Returns -1. */
int rt_opt_invalid(const char *key, const char *value, ros_error *err, const char *detail_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parses value as a boolean (true/false/on/off/yes/no/1/0/t/f, any case).
 * Returns 0, or -1 with err naming key; *out unchanged on error. */
int rt_opt_bool(const char *key, const char *value, bool *out, ros_error *err);

/* Parses value as a decimal integer in [min, max].  Returns 0, or -1 with err
 * naming key; *out unchanged on error. */
int rt_opt_int(const char *key, const char *value, int64_t min, int64_t max, int64_t *out, ros_error *err);

/* Parses value as a finite number in [min, max].  Returns 0 or -1 as above. */
int rt_opt_double(const char *key, const char *value, double min, double max, double *out, ros_error *err);

/* Parses a mode option: "bounded" (false) or "tail" (true). */
int rt_opt_mode(const char *key, const char *value, bool *tail, ros_error *err);

/* ------------------------------------------------------------------ */
/* Batches (connector.c) */

/*
 * Makes out a batch of n empty columns of the given types, reusing its
 * vectors (and their buffers) when the types already match.  Returns 0, or
 * -1 with err set on allocation failure, leaving out an empty valid batch.
 */
int rt_batch_prepare(ros_batch *out, int n, const ros_type *types, ros_error *err);

/*
 * Ensures room for one more row of a varlen vector and returns the index the
 * row will have; the caller then writes bytes at data + data_len and calls
 * rt_vector_commit_varlen.  Returns -1 on allocation failure.
 */
int rt_vector_begin_varlen(ros_vector *v);
/* Appends the row whose n bytes were written at data + data_len. */
void rt_vector_commit_varlen(ros_vector *v, uint32_t n);

/* ------------------------------------------------------------------ */
/* Text form of values (textio.c): PostgreSQL's output syntax. */

/* Parsing text into a column is ros_text_append (runtime/core/textin.h). */

/* Writes the shortest decimal text that reads back as exactly x (float or
 * double), or Infinity/-Infinity/NaN, into buf (at least 32 bytes); returns
 * its length. */
size_t rt_format_double(double x, char *buf);
size_t rt_format_float(float x, char *buf);
/* Writes x in decimal into buf (at least 21 bytes); returns its length. */
size_t rt_format_int(int64_t x, char *buf);

/* Appends row i of v (not NULL) in text form: t/f, numbers, text as is,
 * bytea as \x hex, real[] as {1,2,3}. */
void rt_format_value(const ros_vector *v, uint32_t i, ros_strbuf *out);

#endif /* RT_CONNECTOR_INT_H */

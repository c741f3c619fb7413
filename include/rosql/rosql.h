/*
 * rosql/rosql.h
 *    The embedding API: open a database, run statements, receive results.
 *
 * The shell (shell/) is one user of this API; tests are another.  A session
 * owns one catalog connection and the settings of SET.  Statements run one
 * at a time; results stream to a ros_result_sink a batch at a time, so a
 * large result never sits in memory whole.
 */
#ifndef ROSQL_ROSQL_H
#define ROSQL_ROSQL_H

#include <stdbool.h>
#include <stdint.h>

#include <rosql/vector.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ros_session ros_session;

/* A reported error (SQLSTATE, message, detail, hint, 1-based position). */
typedef struct ros_error ros_error;

/* Where the rows of a statement go.  Any callback may be NULL.  A callback
 * returning non-zero cancels the statement. */
typedef struct ros_result_sink {
    void *arg;
    /* The result's columns, before the first batch (only for statements
     * returning rows). */
    int (*begin)(void *arg, int ncols, const char *const *names, const ros_type *types);
    /* One batch of rows. The batch is only valid during the call. */
    int (*batch)(void *arg, const ros_batch *b);
    /* The statement finished: tag as psql prints it ("SELECT 3",
     * "INSERT 0 5", "CREATE TABLE"). */
    int (*end)(void *arg, const char *tag);
    /* A NOTICE (e.g. "table "x" does not exist, skipping"). */
    void (*notice)(void *arg, const char *message);
    /* Progress of a long statement (a foreground job), replacing the
     * previous line; NULL line: done, clear it.  May be NULL. */
    void (*progress)(void *arg, const char *line);
} ros_result_sink;

/*
 * Opens the database at path (created if missing); NULL path: a transient
 * database removed at close.  Returns NULL with err set on failure.
 */
ros_session *ros_session_open(const char *path, ros_error *err);
void ros_session_close(ros_session *s);

/*
 * Runs one statement (a trailing semicolon is allowed).  Returns 0, or -1
 * with err set; the error position refers to sql.  A failed statement
 * changes nothing in the catalog.
 */
int ros_session_execute(ros_session *s, const char *sql, const ros_result_sink *sink, ros_error *err);

/* Asks the running statement to stop with "canceling statement due to user
 * request".  Async-signal-safe: only sets a flag. */
void ros_session_cancel(ros_session *s);

/* Names of tables ('t'), functions ('f') or services ('s') for completion:
 * a malloc'd NULL-terminated array of malloc'd strings (free both). */
char **ros_session_object_names(ros_session *s, char kind);

/* Path of the database file (of the temporary file when transient). */
const char *ros_session_path(ros_session *s);

/*
 * Formats row `row` of column v as PostgreSQL's text output does: t/f for
 * booleans, shortest round-trip digits for floats (Infinity, NaN), real[] as
 * {1,2.5}, bytea as \x hex.  Appends to *buf (realloc'd, NUL-terminated,
 * *len bytes in use, *cap allocated).  NULL rows append nothing and return 1;
 * otherwise returns 0 (-1 on allocation failure).
 */
int ros_format_value(const ros_vector *v, uint32_t row, char **buf, size_t *len, size_t *cap);

#ifdef __cplusplus
}
#endif

#endif /* ROSQL_ROSQL_H */

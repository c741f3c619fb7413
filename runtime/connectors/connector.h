/*
 * connector.h
 *    Sources and sinks: how tables that live outside the engine's memory are
 *    read and written a column batch at a time.
 *
 * A table's connector is chosen by CREATE TABLE ... WITH (connector = '...').
 * Built in: `sqlite` (rows in the catalog file, the default), `datagen`
 * (deterministic generated rows), `file` (CSV or JSON lines).
 *
 * A source produces batches with the projected columns only, each column of
 * exactly the table's declared type.  A sink receives batches whose columns
 * are exactly the table's columns in table order and types.
 *
 * Offsets (rt_source_ops.offset / seek) let a checkpoint record where a
 * source is and a restored job continue from there; every built-in source
 * supports them.
 */
#ifndef RT_CONNECTOR_H
#define RT_CONNECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include <rosql/vector.h>

#include "catalog/catalog.h"
#include "runtime/core/error.h"

typedef struct rt_source rt_source;
typedef struct rt_sink rt_sink;

typedef struct rt_source_ops {
    /*
     * Resets out to nproj columns and appends up to max_rows rows to it.
     * Returns 1 when rows were produced, 0 at the end of input (out empty),
     * 2 when an unbounded source has nothing right now (out empty; call again
     * later), -1 on error with err set.  A rate-limited source (datagen with
     * rows_per_second) returns 2 while ahead of schedule even when bounded.
     * max_rows == 0 means a default batch size (1024).
     */
    int (*next)(rt_source *src, ros_batch *out, uint32_t max_rows, ros_error *err);
    /* The position after the last row returned, as an opaque int64 (row
     * number, rowid or byte offset). */
    int64_t (*offset)(rt_source *src);
    /* Continues after position off (a value offset() returned). */
    int (*seek)(rt_source *src, int64_t off, ros_error *err);
    /* Frees the source. */
    void (*close)(rt_source *src);
} rt_source_ops;

struct rt_source {
    const rt_source_ops *ops;
    bool unbounded;          /* true when next() may return 2 / never 0 */
};

typedef struct rt_sink_ops {
    /* Writes b (table columns, table types).  Rows written become visible at
     * the next commit.  Returns 0 or -1 with err set. */
    int (*write)(rt_sink *sink, const ros_batch *b, ros_error *err);
    /* Makes every row written so far durable and visible. */
    int (*commit)(rt_sink *sink, ros_error *err);
    /* Discards rows written since the last commit. */
    void (*abort)(rt_sink *sink);
    void (*close)(rt_sink *sink);
} rt_sink_ops;

struct rt_sink {
    const rt_sink_ops *ops;
};

/* Options for opening a source. */
typedef struct rt_source_opts {
    int nproj;               /* number of projected columns */
    const int *proj;         /* table column index of each projected column */
    bool tail;               /* follow appended input (streaming jobs) */
} rt_source_opts;

/*
 * Checks a table definition before it is recorded: the connector exists,
 * every option is known to it with a valid value, and the columns fit it
 * (e.g. datagen generators match column types).  Errors name the option:
 * ROS_ERR_INVALID_PARAMETER `unknown option "x" for connector "datagen"`.
 */
int rt_connector_validate(cat_db *db, const cat_table *t, ros_error *err);

/* Opens a source over table t.  Returns NULL with err set on failure
 * (missing file: ROS_ERR_UNDEFINED_FILE `could not open file "p": ...`).
 * opts may be NULL: every column in table order, not tail. */
rt_source *rt_source_open(cat_db *db, const cat_table *t, const rt_source_opts *opts, ros_error *err);

/* Opens a sink writing into table t (sqlite: inside the catalog's current
 * transaction if one is open, else its own; file: appends). */
rt_sink *rt_sink_open(cat_db *db, const cat_table *t, ros_error *err);

/* True when the connector can be written (sqlite, file); datagen cannot:
 * `cannot insert into table "t"` with detail naming the connector. */
bool rt_connector_writable(const char *connector);

#endif /* RT_CONNECTOR_H */

/*
 * catalog.h
 *    The SQLite-backed catalog: one database file holds every object's
 *    definition, the live state of services, jobs and checkpoints, and the
 *    rows of tables stored with the `sqlite` connector.
 *
 * The file is opened in WAL mode with a busy timeout, so job and service
 * processes and a second shell can read it while one process writes.  The
 * schema carries a version (PRAGMA user_version) and migrates forward on
 * open.
 *
 * Atomicity: every write function is atomic on its own (it runs inside a
 * SAVEPOINT), and composes inside an outer cat_begin()/cat_commit(), which
 * is how the engine makes each DDL statement one transaction.
 *
 * Returned objects are malloc'd and owned by the caller (cat_*_free).
 * "Not found" is not an error: getters return NULL with err untouched; on a
 * real failure they return NULL with err set.  Names are compared exactly
 * (the parser has already case-folded them).
 */
#ifndef CAT_CATALOG_H
#define CAT_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>
#include <rosql/vector.h>

#include "runtime/core/error.h"

#define CAT_SCHEMA_VERSION 3

typedef struct cat_db cat_db;

/* A key/value option list (WITH (...)), in the order written. */
typedef struct cat_option {
    char *key;     /* lower-case */
    char *value;   /* text form of the value */
} cat_option;

typedef struct cat_options {
    int n;
    cat_option *items;
} cat_options;

/* Returns the value of key, or NULL when absent. */
const char *cat_options_get(const cat_options *o, const char *key);
/* Sets key (replacing an existing value); returns 0 or -1 on OOM. */
int cat_options_set(cat_options *o, const char *key, const char *value);
/* Removes key if present. */
void cat_options_remove(cat_options *o, const char *key);
/* Deep copy into dst (dst is overwritten, not freed); 0 or -1 on OOM. */
int cat_options_copy(cat_options *dst, const cat_options *src);
void cat_options_free(cat_options *o);
/* Serialises as "key=value\n..." (malloc'd), the form ros_func_ctx.options uses. */
char *cat_options_to_text(const cat_options *o);

/* ------------------------------------------------------------------ */
/* Opening */

/*
 * Opens (creating if needed) the catalog at path, or a transient one in a
 * temporary file that is deleted by cat_close() when path is NULL.
 * Creates or migrates the schema.  Returns NULL with err set on failure
 * (unreadable file, not a rosql database, a newer schema version).
 */
cat_db *cat_open(const char *path, ros_error *err);
void cat_close(cat_db *db);

/* The SQLite handle: connectors use it to read and write table rows. */
sqlite3 *cat_sqlite(cat_db *db);
/* The database file's path (the temporary file's for a transient catalog). */
const char *cat_path(const cat_db *db);
/* The run directory belonging to this database ("<path>.run"), created on
 * demand by callers that need it (ipc sockets, logs). */
const char *cat_run_dir(const cat_db *db);
/* Sets how long a statement waits for another process's write lock before
 * failing with "database is locked" (default 10 s).  The coordinator uses a
 * short one so that a long-running writer never stalls supervision. */
void cat_set_busy_timeout(cat_db *db, int ms);
/* The schema version of the open file. */
int cat_schema_version(cat_db *db);

/* Outer transaction (BEGIN IMMEDIATE / COMMIT / ROLLBACK).  Not nestable;
 * rollback is safe to call when no transaction is open. */
int cat_begin(cat_db *db, ros_error *err);
int cat_commit(cat_db *db, ros_error *err);
void cat_rollback(cat_db *db);
bool cat_in_transaction(cat_db *db);

/* ------------------------------------------------------------------ */
/* Tables */

typedef struct cat_column {
    char *name;
    ros_type type;
    bool not_null;
} cat_column;

typedef struct cat_table {
    int64_t id;
    char *name;
    char *connector;        /* "sqlite", "datagen", "file", ... */
    cat_options options;    /* connector options, connector key removed */
    int ncols;
    cat_column *cols;
    char *data_table;       /* sqlite connector: SQLite table holding the rows
                               (columns c0..cN-1), else NULL */
} cat_table;

/*
 * Records table t (t->id is filled in).  For the sqlite connector also
 * creates its data table in the same savepoint, with columns c0..cN-1 of
 * SQLite types INTEGER (bool and integers), REAL, TEXT, BLOB (bytea, real[]
 * as packed little-endian floats), and sets t->data_table.
 * Errors: ROS_ERR_DUPLICATE_TABLE `relation "x" already exists`.
 */
int cat_table_create(cat_db *db, cat_table *t, ros_error *err);
cat_table *cat_table_get(cat_db *db, const char *name, ros_error *err);
/*
 * Drops table name and its rows.  Without cascade, refuses with
 * ROS_ERR_DEPENDENT_OBJECTS when a job that is not finished reads or
 * writes it (today: a job in state created or running whose sink_table is
 * name); with cascade deletes those jobs too.
 * Returns 0, 1 when it did not exist (nothing changed), -1 on error.
 */
int cat_table_drop(cat_db *db, const char *name, bool cascade, ros_error *err);
/* All tables sorted by name: *out is a malloc'd array of *n tables. */
int cat_table_list(cat_db *db, cat_table ***out, int *n, ros_error *err);
void cat_table_free(cat_table *t);

/* ------------------------------------------------------------------ */
/* Functions */

typedef struct cat_function {
    int64_t id;
    char *name;
    char *language;         /* "c" or "service" */
    char *library;          /* path of the .so (language c) */
    char *symbol;           /* exported ros_udf symbol (language c) */
    char *service;          /* SERVICE name (language service), else NULL */
    char *method;           /* METHOD 'm' or NULL */
    int nargs;
    ros_type *arg_types;    /* nargs entries */
    ros_type ret_type;
    cat_options options;    /* WITH (...) annotation: decoupled, instances, ... */
    char volatility;        /* 'v', 's' or 'i' */
    bool strict;
} cat_function;

/* Records f (f->id filled in).  Errors: ROS_ERR_DUPLICATE_FUNCTION
 * `function "f" already exists`; with replace, an existing one is replaced.
 * A function naming a service records the dependency: the service must exist
 * (ROS_ERR_UNDEFINED_OBJECT `service "s" does not exist`). */
int cat_function_create(cat_db *db, cat_function *f, bool replace, ros_error *err);
cat_function *cat_function_get(cat_db *db, const char *name, ros_error *err);
/* Replaces f's annotation options (ALTER FUNCTION ... SET). */
int cat_function_set_options(cat_db *db, const char *name, const cat_options *opts, ros_error *err);
/* Returns 0, 1 when it did not exist, -1 on error. */
int cat_function_drop(cat_db *db, const char *name, bool cascade, ros_error *err);
int cat_function_list(cat_db *db, cat_function ***out, int *n, ros_error *err);
void cat_function_free(cat_function *f);

/* ------------------------------------------------------------------ */
/* Services and their instances */

typedef struct cat_service {
    int64_t id;
    char *name;
    char *handler;          /* "builtin:echo" or "path/lib.so:symbol" */
    cat_options options;    /* instances, device, max_batch, ... */
    int desired_instances;
    char *state;            /* "starting", "ready", "failed", "stopped", ... */
    char *last_error;       /* or NULL */
    char *owner_function;   /* function that created it by decoupling, or NULL */
} cat_service;

typedef struct cat_instance {
    int64_t id;
    int64_t service_id;
    int idx;                /* instance number within the service */
    int pid;                /* worker process id, 0 when none */
    char *endpoint;         /* nng URL, or NULL */
    char *state;            /* starting, ready, draining, failed, stopped */
    int64_t requests;       /* requests served */
    int64_t rows;           /* rows served */
    int64_t inflight;
    int64_t queue_depth;
    int64_t restarts;
    char *last_error;       /* or NULL */
    double updated_at;      /* unix time of the last update */
} cat_instance;

/* Errors: ROS_ERR_DUPLICATE_OBJECT `service "s" already exists`. */
int cat_service_create(cat_db *db, cat_service *s, ros_error *err);
cat_service *cat_service_get(cat_db *db, const char *name, ros_error *err);
/* Updates options, desired_instances, state and last_error of s (by id).
 * Errors: ROS_ERR_UNDEFINED_OBJECT when no service has that id. */
int cat_service_update(cat_db *db, const cat_service *s, ros_error *err);
/* Sets only the live state and last_error of service id (the coordinator's
 * write, which must not overwrite a concurrent ALTER of the definition).
 * Returns 0, 1 when no service has that id, -1 on error. */
int cat_service_set_state(cat_db *db, int64_t id, const char *state, const char *last_error, ros_error *err);
/*
 * Drops service name and its instance rows.  Without cascade, refuses with
 * ROS_ERR_DEPENDENT_OBJECTS `cannot drop service s because other objects
 * depend on it` (detail lists the functions, hint suggests CASCADE) while a
 * function depends on it; with cascade drops those functions too.
 * Returns 0, 1 when it did not exist, -1 on error.
 */
int cat_service_drop(cat_db *db, const char *name, bool cascade, ros_error *err);
int cat_service_list(cat_db *db, cat_service ***out, int *n, ros_error *err);
void cat_service_free(cat_service *s);

/* Inserts or updates (by service_id, idx) the live state of one instance;
 * fills in->id and sets updated_at to now.  Errors: ROS_ERR_UNDEFINED_OBJECT
 * when the service does not exist. */
int cat_instance_put(cat_db *db, cat_instance *in, ros_error *err);
/* Returns 0, 1 when there was no such instance, -1 on error. */
int cat_instance_delete(cat_db *db, int64_t service_id, int idx, ros_error *err);
/* Instances of one service (service_id > 0) or of all (service_id == 0),
 * ordered by service, idx. */
int cat_instance_list(cat_db *db, int64_t service_id, cat_instance ***out, int *n, ros_error *err);
void cat_instance_free(cat_instance *in);

/* The service log: scaling steps (manual and automatic) and supervision
 * (instance ready, crashed, failed), each with its reason. */
typedef struct cat_service_event {
    int64_t id;
    char *service;
    double at;              /* unix time */
    char *event;            /* scale_out, scale_in, autoscale_up, ... */
    int instances;          /* desired instances after the event, -1 none */
    char *reason;
} cat_service_event;

/* Appends an event and keeps the newest CAT_SERVICE_EVENTS_KEPT of its service. */
#define CAT_SERVICE_EVENTS_KEPT 1000
int cat_service_event_add(cat_db *db, const char *service, const char *event, int instances, const char *reason,
                          ros_error *err);
/* Events of one service (or all when service is NULL), oldest first. */
int cat_service_event_list(cat_db *db, const char *service, cat_service_event ***out, int *n, ros_error *err);
void cat_service_event_free(cat_service_event *e);

/* ------------------------------------------------------------------ */
/* Jobs and checkpoints (used by the streaming issue; schema now) */

typedef struct cat_job {
    int64_t id;
    char *sql;              /* the statement the job runs */
    char *state;            /* created, running, stopped, finished, failed */
    int pid;
    int64_t rows_read;
    int64_t rows_written;
    int64_t last_checkpoint;/* id, 0 when none */
    int64_t restarts;
    int64_t recomputed;     /* requests recomputed after restores */
    char *last_error;
    char *sink_table;       /* table written */
    char *options;          /* settings it runs with: "k=v,k=v" (NULL: none) */
    double created_at, updated_at;
} cat_job;

/* Records j (j->id filled in; state defaults to "created"; created_at, when
 * 0, and updated_at are set to now). */
int cat_job_create(cat_db *db, cat_job *j, ros_error *err);
cat_job *cat_job_get(cat_db *db, int64_t id, ros_error *err);
/* Stores every field of j (by id) and sets updated_at to now.  Errors:
 * ROS_ERR_UNDEFINED_OBJECT when no job has that id. */
int cat_job_update(cat_db *db, const cat_job *j, ros_error *err);
/* Deletes job id and its checkpoints.  Returns 0, 1 when it did not exist,
 * -1 on error. */
int cat_job_delete(cat_db *db, int64_t id, ros_error *err);
int cat_job_list(cat_db *db, cat_job ***out, int *n, ros_error *err);
void cat_job_free(cat_job *j);

/*
 * Moves job id to state `to` (and last_error to error, when error is not
 * NULL) only when its state is one of `from` (comma separated, e.g.
 * "running,stopping"; NULL: any).  Returns 1 when it moved, 0 when the job
 * was in another state, -1 on error (ROS_ERR_UNDEFINED_OBJECT when no job
 * has that id).  Processes that race on a job (the job itself, the
 * coordinator, a shell) change its state only through this.
 */
int cat_job_transition(cat_db *db, int64_t id, const char *from, const char *to, const char *error, ros_error *err);

/* The job process's own counters: pid, rows, last checkpoint, recomputed
 * requests (the state is left alone). */
int cat_job_progress(cat_db *db, const cat_job *j, ros_error *err);

/* restarts += 1 (the coordinator, after the job's process died). */
int cat_job_count_restart(cat_db *db, int64_t id, ros_error *err);

typedef struct cat_checkpoint {
    int64_t id;
    int64_t job_id;
    double created_at;
    double duration_ms;
    int64_t bytes;
    int64_t inflight;       /* in-flight requests captured */
    void *state;            /* opaque snapshot (offsets, operator state) */
    size_t state_len;
} cat_checkpoint;

/* Adds a checkpoint record (c->id filled in; created_at set to now when 0)
 * and keeps only the newest `keep` of its job (keep <= 0: keeps all).
 * Errors: ROS_ERR_UNDEFINED_OBJECT when the job does not exist. */
int cat_checkpoint_add(cat_db *db, cat_checkpoint *c, int keep, ros_error *err);
/* Latest checkpoint of job, or NULL (err untouched) when none. */
cat_checkpoint *cat_checkpoint_latest(cat_db *db, int64_t job_id, ros_error *err);
/* Checkpoints of one job (job_id > 0) or all, newest first; state not loaded. */
int cat_checkpoint_list(cat_db *db, int64_t job_id, cat_checkpoint ***out, int *n, ros_error *err);
void cat_checkpoint_free(cat_checkpoint *c);

/* Frees an array returned by a *_list function with its element free function. */
#define CAT_FREE_LIST(arr, n, freefn) \
    do { for (int i_ = 0; i_ < (n); i_++) freefn((arr)[i_]); free(arr); } while (0)

#endif /* CAT_CATALOG_H */

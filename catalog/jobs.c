/*
 * jobs.c
 *    Streaming jobs (rosql_jobs) and their checkpoints (rosql_checkpoints).
 *
 * Checkpoint ids only grow (AUTOINCREMENT), so "newest" is "highest id";
 * adding one prunes the job's older checkpoints beyond `keep` in the same
 * transaction, so a reader never sees more than keep + 1 of them.
 */
#include "catalog/catalog_int.h"

#include <stdlib.h>
#include <string.h>

#define JOB_SELECT                                                                              \
    "SELECT id, sql, state, pid, rows_read, rows_written, last_checkpoint, restarts, recomputed," \
    "       last_error, sink_table, created_at, updated_at, options FROM rosql_jobs"
#define CHECKPOINT_SELECT "SELECT id, job_id, created_at, duration_ms, bytes, inflight"

static cat_job *job_load(sqlite3_stmt *row, ros_error *err);
static cat_checkpoint *checkpoint_load(sqlite3_stmt *row, bool with_state, ros_error *err);

/* ------------------------------------------------------------------ */
/* Jobs */

int cat_job_create(cat_db *db, cat_job *j, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    int64_t id;
    double now = cat_now();
    double created = j->created_at > 0 ? j->created_at : now;
    if (cat_prepare(db,
                    "INSERT INTO rosql_jobs (sql, state, pid, rows_read, rows_written, last_checkpoint, restarts,"
                    " recomputed, last_error, sink_table, created_at, updated_at, options)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, j->sql ? j->sql : "");
    cat_bind_text(st, 2, j->state ? j->state : "created");
    sqlite3_bind_int(st, 3, j->pid);
    sqlite3_bind_int64(st, 4, j->rows_read);
    sqlite3_bind_int64(st, 5, j->rows_written);
    sqlite3_bind_int64(st, 6, j->last_checkpoint);
    sqlite3_bind_int64(st, 7, j->restarts);
    sqlite3_bind_int64(st, 8, j->recomputed);
    cat_bind_text(st, 9, j->last_error);
    cat_bind_text(st, 10, j->sink_table);
    sqlite3_bind_double(st, 11, created);
    sqlite3_bind_double(st, 12, now);
    cat_bind_text(st, 13, j->options);
    if (cat_step_int(db, st, &id, NULL, err) < 0)
        goto done;
    j->id = id;
    j->created_at = created;
    j->updated_at = now;
    rc = 0;
done:
    return cat_op_end(db, sp, rc, err);
}

int cat_job_update(cat_db *db, const cat_job *j, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db,
                    "UPDATE rosql_jobs SET sql = ?, state = ?, pid = ?, rows_read = ?, rows_written = ?,"
                    " last_checkpoint = ?, restarts = ?, recomputed = ?, last_error = ?, sink_table = ?,"
                    " updated_at = ?, options = ? WHERE id = ?",
                    &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, j->sql ? j->sql : "");
    cat_bind_text(st, 2, j->state ? j->state : "created");
    sqlite3_bind_int(st, 3, j->pid);
    sqlite3_bind_int64(st, 4, j->rows_read);
    sqlite3_bind_int64(st, 5, j->rows_written);
    sqlite3_bind_int64(st, 6, j->last_checkpoint);
    sqlite3_bind_int64(st, 7, j->restarts);
    sqlite3_bind_int64(st, 8, j->recomputed);
    cat_bind_text(st, 9, j->last_error);
    cat_bind_text(st, 10, j->sink_table);
    sqlite3_bind_double(st, 11, cat_now());
    cat_bind_text(st, 12, j->options);
    sqlite3_bind_int64(st, 13, j->id);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    if (sqlite3_changes(db->sq) == 0) {
        ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "job %lld does not exist", (long long)j->id);
        goto done;
    }
    rc = 0;
done:
    return cat_op_end(db, sp, rc, err);
}

/* Is state one of the comma-separated names in set? */
static bool state_in(const char *state, const char *set)
{
    size_t n = strlen(state);
    for (const char *p = set; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, state, n) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

int cat_job_transition(cat_db *db, int64_t id, const char *from, const char *to, const char *error, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    cat_job *j = cat_job_get(db, id, err);
    if (!j) {
        if (!err->set)
            ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "job %lld does not exist", (long long)id);
        goto done;
    }
    if (from && !state_in(j->state, from)) {
        rc = 0;
        goto done;
    }
    sqlite3_stmt *st;
    if (cat_prepare(db,
                    "UPDATE rosql_jobs SET state = ?, last_error = CASE WHEN ?2 IS NULL THEN last_error ELSE ?2 END,"
                    " updated_at = ? WHERE id = ?",
                    &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, to);
    cat_bind_text(st, 2, error);
    sqlite3_bind_double(st, 3, cat_now());
    sqlite3_bind_int64(st, 4, id);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    rc = 1;
done:
    cat_job_free(j);
    return cat_op_end(db, sp, rc, err);
}

int cat_job_progress(cat_db *db, const cat_job *j, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db,
                    "UPDATE rosql_jobs SET pid = ?, rows_read = ?, rows_written = ?, last_checkpoint = ?,"
                    " recomputed = ?, updated_at = ? WHERE id = ?",
                    &st, err) < 0)
        goto done;
    sqlite3_bind_int(st, 1, j->pid);
    sqlite3_bind_int64(st, 2, j->rows_read);
    sqlite3_bind_int64(st, 3, j->rows_written);
    sqlite3_bind_int64(st, 4, j->last_checkpoint);
    sqlite3_bind_int64(st, 5, j->recomputed);
    sqlite3_bind_double(st, 6, cat_now());
    sqlite3_bind_int64(st, 7, j->id);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    if (sqlite3_changes(db->sq) == 0) {
        ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "job %lld does not exist", (long long)j->id);
        goto done;
    }
    rc = 0;
done:
    return cat_op_end(db, sp, rc, err);
}

int cat_job_count_restart(cat_db *db, int64_t id, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db, "UPDATE rosql_jobs SET restarts = restarts + 1, updated_at = ? WHERE id = ?", &st, err) < 0)
        goto done;
    sqlite3_bind_double(st, 1, cat_now());
    sqlite3_bind_int64(st, 2, id);
    rc = cat_step_done(db, st, err);
done:
    return cat_op_end(db, sp, rc, err);
}

int cat_job_delete(cat_db *db, int64_t id, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db, "DELETE FROM rosql_jobs WHERE id = ?", &st, err) < 0)
        goto done;
    sqlite3_bind_int64(st, 1, id);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    rc = sqlite3_changes(db->sq) > 0 ? 0 : 1;
done:
    return cat_op_end(db, sp, rc, err);
}

/* Builds a job from a JOB_SELECT row. */
static cat_job *job_load(sqlite3_stmt *row, ros_error *err)
{
    bool oom = false;
    cat_job *j = calloc(1, sizeof *j);
    if (!j) {
        ros_error_oom(err);
        return NULL;
    }
    j->id = sqlite3_column_int64(row, 0);
    j->sql = cat_col_dup(row, 1, &oom);
    j->state = cat_col_dup(row, 2, &oom);
    j->pid = sqlite3_column_int(row, 3);
    j->rows_read = sqlite3_column_int64(row, 4);
    j->rows_written = sqlite3_column_int64(row, 5);
    j->last_checkpoint = sqlite3_column_int64(row, 6);
    j->restarts = sqlite3_column_int64(row, 7);
    j->recomputed = sqlite3_column_int64(row, 8);
    j->last_error = cat_col_dup(row, 9, &oom);
    j->sink_table = cat_col_dup(row, 10, &oom);
    j->created_at = sqlite3_column_double(row, 11);
    j->updated_at = sqlite3_column_double(row, 12);
    j->options = cat_col_dup(row, 13, &oom);
    if (oom) {
        ros_error_oom(err);
        cat_job_free(j);
        return NULL;
    }
    return j;
}

/* cat_collect / cat_fetch_one adapters */
static void *job_row(cat_db *db, sqlite3_stmt *st, ros_error *err)
{
    (void)db;
    return job_load(st, err);
}

static void cat_job_free_any(void *j)
{
    cat_job_free(j);
}

cat_job *cat_job_get(cat_db *db, int64_t id, ros_error *err)
{
    sqlite3_stmt *st;
    if (cat_prepare(db, JOB_SELECT " WHERE id = ?", &st, err) < 0)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    return cat_fetch_one(db, st, job_row, err);
}

int cat_job_list(cat_db *db, cat_job ***out, int *n, ros_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (cat_prepare(db, JOB_SELECT " ORDER BY id", &st, err) < 0)
        return -1;
    return cat_collect(db, st, job_row, cat_job_free_any, (void ***)out, n, err);
}

void cat_job_free(cat_job *j)
{
    if (!j)
        return;
    free(j->sql);
    free(j->state);
    free(j->last_error);
    free(j->sink_table);
    free(j->options);
    free(j);
}

/* ------------------------------------------------------------------ */
/* Checkpoints */

int cat_checkpoint_add(cat_db *db, cat_checkpoint *c, int keep, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    int64_t id;
    bool found;
    double created = c->created_at > 0 ? c->created_at : cat_now();

    if (cat_prepare(db, "SELECT 1 FROM rosql_jobs WHERE id = ?", &st, err) < 0)
        goto done;
    sqlite3_bind_int64(st, 1, c->job_id);
    if (cat_step_int(db, st, &id, &found, err) < 0)
        goto done;
    if (!found) {
        ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "job %lld does not exist", (long long)c->job_id);
        goto done;
    }
    if (cat_prepare(db,
                    "INSERT INTO rosql_checkpoints (job_id, created_at, duration_ms, bytes, inflight, state)"
                    " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    &st, err) < 0)
        goto done;
    sqlite3_bind_int64(st, 1, c->job_id);
    sqlite3_bind_double(st, 2, created);
    sqlite3_bind_double(st, 3, c->duration_ms);
    sqlite3_bind_int64(st, 4, c->bytes);
    sqlite3_bind_int64(st, 5, c->inflight);
    if (c->state)
        sqlite3_bind_blob64(st, 6, c->state, c->state_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    if (cat_step_int(db, st, &id, NULL, err) < 0)
        goto done;

    if (keep > 0) {
        if (cat_prepare(db,
                        "DELETE FROM rosql_checkpoints WHERE job_id = ?1 AND id NOT IN"
                        " (SELECT id FROM rosql_checkpoints WHERE job_id = ?1 ORDER BY id DESC LIMIT ?2)",
                        &st, err) < 0)
            goto done;
        sqlite3_bind_int64(st, 1, c->job_id);
        sqlite3_bind_int(st, 2, keep);
        if (cat_step_done(db, st, err) < 0)
            goto done;
    }
    c->id = id;
    c->created_at = created;
    rc = 0;
done:
    return cat_op_end(db, sp, rc, err);
}

/* Builds a checkpoint from a CHECKPOINT_SELECT row (plus state as column 6
 * when with_state). */
static cat_checkpoint *checkpoint_load(sqlite3_stmt *row, bool with_state, ros_error *err)
{
    cat_checkpoint *c = calloc(1, sizeof *c);
    if (!c) {
        ros_error_oom(err);
        return NULL;
    }
    c->id = sqlite3_column_int64(row, 0);
    c->job_id = sqlite3_column_int64(row, 1);
    c->created_at = sqlite3_column_double(row, 2);
    c->duration_ms = sqlite3_column_double(row, 3);
    c->bytes = sqlite3_column_int64(row, 4);
    c->inflight = sqlite3_column_int64(row, 5);
    if (with_state && sqlite3_column_type(row, 6) != SQLITE_NULL) {
        const void *p = sqlite3_column_blob(row, 6);
        size_t len = (size_t)sqlite3_column_bytes(row, 6);
        /* One spare byte so an empty state is still a non-NULL pointer. */
        c->state = malloc(len + 1);
        if (!c->state) {
            ros_error_oom(err);
            free(c);
            return NULL;
        }
        if (len)
            memcpy(c->state, p, len);
        c->state_len = len;
    }
    return c;
}

/* Listings leave the (possibly large) state out; the latest checkpoint has it. */
static void *checkpoint_row(cat_db *db, sqlite3_stmt *st, ros_error *err)
{
    (void)db;
    return checkpoint_load(st, false, err);
}

static void *checkpoint_row_with_state(cat_db *db, sqlite3_stmt *st, ros_error *err)
{
    (void)db;
    return checkpoint_load(st, true, err);
}

static void cat_checkpoint_free_any(void *c)
{
    cat_checkpoint_free(c);
}

cat_checkpoint *cat_checkpoint_latest(cat_db *db, int64_t job_id, ros_error *err)
{
    sqlite3_stmt *st;
    if (cat_prepare(db, CHECKPOINT_SELECT ", state FROM rosql_checkpoints WHERE job_id = ? ORDER BY id DESC LIMIT 1",
                    &st, err) < 0)
        return NULL;
    sqlite3_bind_int64(st, 1, job_id);
    return cat_fetch_one(db, st, checkpoint_row_with_state, err);
}

int cat_checkpoint_list(cat_db *db, int64_t job_id, cat_checkpoint ***out, int *n, ros_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (cat_prepare(db, CHECKPOINT_SELECT " FROM rosql_checkpoints WHERE ?1 <= 0 OR job_id = ?1 ORDER BY id DESC",
                    &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, job_id);
    return cat_collect(db, st, checkpoint_row, cat_checkpoint_free_any, (void ***)out, n, err);
}

void cat_checkpoint_free(cat_checkpoint *c)
{
    if (!c)
        return;
    free(c->state);
    free(c);
}

/*
 * services.c
 *    Services (rosql_services, options) and the live state of their worker
 *    instances (rosql_instances).
 *
 * Functions that name a service depend on it: dropping the service refuses
 * while they exist, or drops them too with CASCADE.  Instance rows belong to
 * their service and go with it (ON DELETE CASCADE).
 */
#include "catalog/catalog_int.h"

#include <stdlib.h>
#include <string.h>

#define SERVICE_SELECT \
    "SELECT id, name, handler, desired_instances, state, last_error, owner_function FROM rosql_services"
#define INSTANCE_SELECT                                                                          \
    "SELECT id, service_id, idx, pid, endpoint, state, requests, rows_served, inflight,"         \
    "       queue_depth, restarts, last_error, updated_at FROM rosql_instances"

static cat_service *service_load(cat_db *db, sqlite3_stmt *row, ros_error *err);
static int service_dependents(cat_db *db, int64_t id, const char *name, bool cascade, ros_error *err);
static int service_exists(cat_db *db, int64_t id, ros_error *err);
static cat_instance *instance_load(sqlite3_stmt *row, ros_error *err);

/* ------------------------------------------------------------------ */
/* Services */

int cat_service_create(cat_db *db, cat_service *s, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    int64_t id;
    bool found;
    if (cat_prepare(db, "SELECT id FROM rosql_services WHERE name = ?", &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, s->name);
    if (cat_step_int(db, st, &id, &found, err) < 0)
        goto done;
    if (found) {
        ros_error_set(err, ROS_ERR_DUPLICATE_OBJECT, "service \"%s\" already exists", s->name);
        goto done;
    }
    if (cat_prepare(db,
                    "INSERT INTO rosql_services (name, handler, desired_instances, state, last_error, owner_function)"
                    " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, s->name);
    cat_bind_text(st, 2, s->handler ? s->handler : "");
    sqlite3_bind_int(st, 3, s->desired_instances);
    cat_bind_text(st, 4, s->state ? s->state : "stopped");
    cat_bind_text(st, 5, s->last_error);
    cat_bind_text(st, 6, s->owner_function);
    if (cat_step_int(db, st, &id, NULL, err) < 0)
        goto done;
    if (cat_options_store(db, "rosql_service_options", id, &s->options, err) < 0)
        goto done;
    s->id = id;
    rc = 0;
done:
    return cat_op_end(db, sp, rc, err);
}

int cat_service_update(cat_db *db, const cat_service *s, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db, "UPDATE rosql_services SET desired_instances = ?, state = ?, last_error = ? WHERE id = ?",
                    &st, err) < 0)
        goto done;
    sqlite3_bind_int(st, 1, s->desired_instances);
    cat_bind_text(st, 2, s->state ? s->state : "stopped");
    cat_bind_text(st, 3, s->last_error);
    sqlite3_bind_int64(st, 4, s->id);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    if (sqlite3_changes(db->sq) == 0) {
        ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "service with id %lld does not exist", (long long)s->id);
        goto done;
    }
    rc = cat_options_store(db, "rosql_service_options", s->id, &s->options, err);
done:
    return cat_op_end(db, sp, rc, err);
}

int cat_service_set_state(cat_db *db, int64_t id, const char *state, const char *last_error, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db, "UPDATE rosql_services SET state = ?, last_error = ? WHERE id = ?", &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, state);
    cat_bind_text(st, 2, last_error);
    sqlite3_bind_int64(st, 3, id);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    rc = sqlite3_changes(db->sq) == 0 ? 1 : 0;
done:
    return cat_op_end(db, sp, rc, err);
}

/* Builds a service from a SERVICE_SELECT row and loads its options. */
static cat_service *service_load(cat_db *db, sqlite3_stmt *row, ros_error *err)
{
    bool oom = false;
    cat_service *s = calloc(1, sizeof *s);
    if (!s) {
        ros_error_oom(err);
        return NULL;
    }
    s->id = sqlite3_column_int64(row, 0);
    s->name = cat_col_dup(row, 1, &oom);
    s->handler = cat_col_dup(row, 2, &oom);
    s->desired_instances = sqlite3_column_int(row, 3);
    s->state = cat_col_dup(row, 4, &oom);
    s->last_error = cat_col_dup(row, 5, &oom);
    s->owner_function = cat_col_dup(row, 6, &oom);
    if (oom) {
        ros_error_oom(err);
        goto fail;
    }
    if (cat_options_load(db, "rosql_service_options", s->id, &s->options, err) < 0)
        goto fail;
    return s;
fail:
    cat_service_free(s);
    return NULL;
}

/* cat_collect / cat_fetch_one adapters */
static void *service_row(cat_db *db, sqlite3_stmt *st, ros_error *err)
{
    return service_load(db, st, err);
}

static void cat_service_free_any(void *s)
{
    cat_service_free(s);
}

cat_service *cat_service_get(cat_db *db, const char *name, ros_error *err)
{
    sqlite3_stmt *st;
    if (cat_prepare(db, SERVICE_SELECT " WHERE name = ?", &st, err) < 0)
        return NULL;
    cat_bind_text(st, 1, name);
    return cat_fetch_one(db, st, service_row, err);
}

int cat_service_list(cat_db *db, cat_service ***out, int *n, ros_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (cat_prepare(db, SERVICE_SELECT " ORDER BY name", &st, err) < 0)
        return -1;
    return cat_collect(db, st, service_row, cat_service_free_any, (void ***)out, n, err);
}

void cat_service_free(cat_service *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->handler);
    cat_options_free(&s->options);
    free(s->state);
    free(s->last_error);
    free(s->owner_function);
    free(s);
}

/*
 * Functions that use service id.  Without cascade they make the drop fail
 * with one detail line each; with cascade they are dropped.
 */
static int service_dependents(cat_db *db, int64_t id, const char *name, bool cascade, ros_error *err)
{
    sqlite3_stmt *st;
    if (cascade) {
        if (cat_prepare(db, "DELETE FROM rosql_functions WHERE service_id = ?", &st, err) < 0)
            return -1;
        sqlite3_bind_int64(st, 1, id);
        return cat_step_done(db, st, err);
    }
    if (cat_prepare(db, "SELECT name FROM rosql_functions WHERE service_id = ? ORDER BY name", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    ros_strbuf detail = ROS_STRBUF_INIT;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ros_strbuf_appendf(&detail, "%sfunction %s depends on service %s", detail.len ? "\n" : "",
                           (const char *)sqlite3_column_text(st, 0), name);
    if (rc != SQLITE_DONE) {
        cat_sqlerr(db, err);
        sqlite3_finalize(st);
        ros_strbuf_free(&detail);
        return -1;
    }
    sqlite3_finalize(st);
    if (detail.len > 0) {
        ros_error_set(err, ROS_ERR_DEPENDENT_OBJECTS, "cannot drop service %s because other objects depend on it",
                      name);
        ros_error_detail(err, "%s", detail.data);
        ros_error_hint(err, "Use DROP ... CASCADE to drop the dependent objects too.");
        ros_strbuf_free(&detail);
        return -1;
    }
    ros_strbuf_free(&detail);
    return 0;
}

int cat_service_drop(cat_db *db, const char *name, bool cascade, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    int64_t id;
    bool found;
    if (cat_prepare(db, "SELECT id FROM rosql_services WHERE name = ?", &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, name);
    if (cat_step_int(db, st, &id, &found, err) < 0)
        goto done;
    if (!found) {
        rc = 1;
        goto done;
    }
    if (service_dependents(db, id, name, cascade, err) < 0)
        goto done;
    if (cat_prepare(db, "DELETE FROM rosql_services WHERE id = ?", &st, err) < 0)
        goto done;
    sqlite3_bind_int64(st, 1, id);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    rc = 0;
done:
    return cat_op_end(db, sp, rc, err);
}

/* ------------------------------------------------------------------ */
/* Instances */

/* 0 when service id exists, else -1 with ROS_ERR_UNDEFINED_OBJECT. */
static int service_exists(cat_db *db, int64_t id, ros_error *err)
{
    sqlite3_stmt *st;
    int64_t one;
    bool found;
    if (cat_prepare(db, "SELECT 1 FROM rosql_services WHERE id = ?", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (cat_step_int(db, st, &one, &found, err) < 0)
        return -1;
    if (!found)
        return ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "service with id %lld does not exist", (long long)id);
    return 0;
}

int cat_instance_put(cat_db *db, cat_instance *in, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    int64_t id;
    double now = cat_now();
    if (service_exists(db, in->service_id, err) < 0)
        goto done;
    if (cat_prepare(db,
                    "INSERT INTO rosql_instances (service_id, idx, pid, endpoint, state, requests, rows_served,"
                    " inflight, queue_depth, restarts, last_error, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (service_id, idx) DO UPDATE SET pid = excluded.pid,"
                    " endpoint = excluded.endpoint, state = excluded.state, requests = excluded.requests,"
                    " rows_served = excluded.rows_served, inflight = excluded.inflight,"
                    " queue_depth = excluded.queue_depth, restarts = excluded.restarts,"
                    " last_error = excluded.last_error, updated_at = excluded.updated_at"
                    " RETURNING id",
                    &st, err) < 0)
        goto done;
    sqlite3_bind_int64(st, 1, in->service_id);
    sqlite3_bind_int(st, 2, in->idx);
    sqlite3_bind_int(st, 3, in->pid);
    cat_bind_text(st, 4, in->endpoint);
    cat_bind_text(st, 5, in->state ? in->state : "starting");
    sqlite3_bind_int64(st, 6, in->requests);
    sqlite3_bind_int64(st, 7, in->rows);
    sqlite3_bind_int64(st, 8, in->inflight);
    sqlite3_bind_int64(st, 9, in->queue_depth);
    sqlite3_bind_int64(st, 10, in->restarts);
    cat_bind_text(st, 11, in->last_error);
    sqlite3_bind_double(st, 12, now);
    if (cat_step_int(db, st, &id, NULL, err) < 0)
        goto done;
    in->id = id;
    in->updated_at = now;
    rc = 0;
done:
    return cat_op_end(db, sp, rc, err);
}

int cat_instance_delete(cat_db *db, int64_t service_id, int idx, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db, "DELETE FROM rosql_instances WHERE service_id = ? AND idx = ?", &st, err) < 0)
        goto done;
    sqlite3_bind_int64(st, 1, service_id);
    sqlite3_bind_int(st, 2, idx);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    rc = sqlite3_changes(db->sq) > 0 ? 0 : 1;
done:
    return cat_op_end(db, sp, rc, err);
}

/* Builds an instance from an INSTANCE_SELECT row. */
static cat_instance *instance_load(sqlite3_stmt *row, ros_error *err)
{
    bool oom = false;
    cat_instance *in = calloc(1, sizeof *in);
    if (!in) {
        ros_error_oom(err);
        return NULL;
    }
    in->id = sqlite3_column_int64(row, 0);
    in->service_id = sqlite3_column_int64(row, 1);
    in->idx = sqlite3_column_int(row, 2);
    in->pid = sqlite3_column_int(row, 3);
    in->endpoint = cat_col_dup(row, 4, &oom);
    in->state = cat_col_dup(row, 5, &oom);
    in->requests = sqlite3_column_int64(row, 6);
    in->rows = sqlite3_column_int64(row, 7);
    in->inflight = sqlite3_column_int64(row, 8);
    in->queue_depth = sqlite3_column_int64(row, 9);
    in->restarts = sqlite3_column_int64(row, 10);
    in->last_error = cat_col_dup(row, 11, &oom);
    in->updated_at = sqlite3_column_double(row, 12);
    if (oom) {
        ros_error_oom(err);
        cat_instance_free(in);
        return NULL;
    }
    return in;
}

static void *instance_row(cat_db *db, sqlite3_stmt *st, ros_error *err)
{
    (void)db;
    return instance_load(st, err);
}

static void cat_instance_free_any(void *in)
{
    cat_instance_free(in);
}

int cat_instance_list(cat_db *db, int64_t service_id, cat_instance ***out, int *n, ros_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (cat_prepare(db, INSTANCE_SELECT " WHERE ?1 <= 0 OR service_id = ?1 ORDER BY service_id, idx", &st, err) <
        0)
        return -1;
    sqlite3_bind_int64(st, 1, service_id);
    return cat_collect(db, st, instance_row, cat_instance_free_any, (void ***)out, n, err);
}

void cat_instance_free(cat_instance *in)
{
    if (!in)
        return;
    free(in->endpoint);
    free(in->state);
    free(in->last_error);
    free(in);
}

/* ------------------------------------------------------------------ */
/* Events */

int cat_service_event_add(cat_db *db, const char *service, const char *event, int instances, const char *reason,
                          ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db,
                    "INSERT INTO rosql_service_events (service, at, event, instances, reason) VALUES (?, ?, ?, ?, ?)",
                    &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, service);
    sqlite3_bind_double(st, 2, cat_now());
    cat_bind_text(st, 3, event);
    if (instances >= 0)
        sqlite3_bind_int(st, 4, instances);
    else
        sqlite3_bind_null(st, 4);
    cat_bind_text(st, 5, reason);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    if (cat_prepare(db,
                    "DELETE FROM rosql_service_events WHERE service = ?1 AND id <= "
                    "(SELECT id FROM rosql_service_events WHERE service = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, service);
    sqlite3_bind_int(st, 2, CAT_SERVICE_EVENTS_KEPT);
    rc = cat_step_done(db, st, err);
done:
    return cat_op_end(db, sp, rc, err);
}

static void *event_row(cat_db *db, sqlite3_stmt *st, ros_error *err)
{
    (void)db;
    bool oom = false;
    cat_service_event *e = calloc(1, sizeof *e);
    if (!e) {
        ros_error_oom(err);
        return NULL;
    }
    e->id = sqlite3_column_int64(st, 0);
    e->service = cat_col_dup(st, 1, &oom);
    e->at = sqlite3_column_double(st, 2);
    e->event = cat_col_dup(st, 3, &oom);
    e->instances = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 4);
    e->reason = cat_col_dup(st, 5, &oom);
    if (oom) {
        cat_service_event_free(e);
        ros_error_oom(err);
        return NULL;
    }
    return e;
}

static void event_free_any(void *e) { cat_service_event_free(e); }

int cat_service_event_list(cat_db *db, const char *service, cat_service_event ***out, int *n, ros_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (cat_prepare(db,
                    "SELECT id, service, at, event, instances, reason FROM rosql_service_events "
                    "WHERE ?1 IS NULL OR service = ?1 ORDER BY id",
                    &st, err) < 0)
        return -1;
    cat_bind_text(st, 1, service);
    return cat_collect(db, st, event_row, event_free_any, (void ***)out, n, err);
}

void cat_service_event_free(cat_service_event *e)
{
    if (!e)
        return;
    free(e->service);
    free(e->event);
    free(e->reason);
    free(e);
}

/*
 * test_catalog.c
 *    Unit tests of the SQLite-backed catalog (catalog/).
 *
 * Each test gets a fresh directory under $TMPDIR (or /tmp) holding its
 * database files; the teardown removes it.  Faults are injected with
 * temporary triggers that abort inserts into one catalog table at a time,
 * to check that a failed write leaves nothing half-made.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "catalog/catalog_int.h"

typedef struct fixture {
    char dir[256];   /* this test's directory */
    char path[300];  /* dir/cat.db */
    cat_db *db;      /* opened on path by setup */
    ros_error err;
} fixture;

/* Checks that err holds code and message exactly. */
#define assert_error(e, c, msg)                 \
    do {                                        \
        assert_true((e)->set);                  \
        assert_string_equal((e)->code, (c));    \
        assert_string_equal((e)->message, msg); \
    } while (0)

/* ------------------------------------------------------------------ */
/* Helpers */

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Runs a query returning one integer on the catalog's connection. */
static int64_t query_int(cat_db *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(cat_sqlite(db), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Runs a query returning one text value; returns a malloc'd copy. */
static char *query_text(sqlite3 *sq, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(sq, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

static void exec_ok(sqlite3 *sq, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(sq, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

/* Number of rows across every catalog table that holds object data. */
static int64_t catalog_rows(cat_db *db)
{
    return query_int(db, "SELECT (SELECT count(*) FROM rosql_tables) + (SELECT count(*) FROM rosql_columns)"
                         " + (SELECT count(*) FROM rosql_table_options) + (SELECT count(*) FROM rosql_functions)"
                         " + (SELECT count(*) FROM rosql_function_args)"
                         " + (SELECT count(*) FROM rosql_function_options) + (SELECT count(*) FROM rosql_services)"
                         " + (SELECT count(*) FROM rosql_service_options) + (SELECT count(*) FROM rosql_instances)"
                         " + (SELECT count(*) FROM rosql_jobs) + (SELECT count(*) FROM rosql_checkpoints)"
                         " + (SELECT count(*) FROM sqlite_schema WHERE name LIKE 'data\\_%' ESCAPE '\\')");
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/rosql-test-catalog-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/cat.db", fx->dir);
    fx->db = cat_open(fx->path, &fx->err);
    assert_non_null(fx->db);
    assert_false(fx->err.set);
    *state = fx;
    return 0;
}

/* Like setup, but leaves opening the database to the test. */
static int setup_dir(void **state)
{
    setup(state);
    fixture *fx = *state;
    cat_close(fx->db);
    fx->db = NULL;
    unlink(fx->path);
    char p[320];
    snprintf(p, sizeof p, "%s-wal", fx->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", fx->path);
    unlink(p);
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    cat_close(fx->db);
    remove_dir(fx->dir);
    free(fx);
    return 0;
}

/* A table t(a integer not null, b text, v real[]) with connector options. */
static cat_table *make_table(const char *name, const char *connector)
{
    cat_table *t = calloc(1, sizeof *t);
    t->name = strdup(name);
    t->connector = connector ? strdup(connector) : NULL;
    t->ncols = 4;
    t->cols = calloc(4, sizeof *t->cols);
    t->cols[0] = (cat_column){strdup("a"), ROS_TYPE_INT32, true};
    t->cols[1] = (cat_column){strdup("b"), ROS_TYPE_TEXT, false};
    t->cols[2] = (cat_column){strdup("x"), ROS_TYPE_FLOAT64, false};
    t->cols[3] = (cat_column){strdup("v"), ROS_TYPE_FLOAT32_ARRAY, false};
    cat_options_set(&t->options, "rows", "100");
    cat_options_set(&t->options, "format", "csv");
    return t;
}

static int create_table(cat_db *db, const char *name, const char *connector, ros_error *err)
{
    cat_table *t = make_table(name, connector);
    int rc = cat_table_create(db, t, err);
    cat_table_free(t);
    return rc;
}

static int create_service(cat_db *db, const char *name, ros_error *err)
{
    cat_service s = {0};
    s.name = (char *)name;
    s.handler = "builtin:echo";
    s.desired_instances = 2;
    s.state = "starting";
    cat_options_set(&s.options, "instances", "2");
    cat_options_set(&s.options, "device", "cpu");
    int rc = cat_service_create(db, &s, err);
    cat_options_free(&s.options);
    return rc;
}

static int create_function(cat_db *db, const char *name, const char *service, ros_error *err)
{
    ros_type args[2] = {ROS_TYPE_TEXT, ROS_TYPE_INT64};
    cat_function f = {0};
    f.name = (char *)name;
    f.language = service ? "service" : "c";
    f.library = service ? NULL : "/lib/libudf.so";
    f.symbol = service ? NULL : "udf_fn";
    f.service = (char *)service;
    f.method = service ? "embed" : NULL;
    f.nargs = 2;
    f.arg_types = args;
    f.ret_type = ROS_TYPE_FLOAT32_ARRAY;
    f.volatility = 's';
    f.strict = true;
    cat_options_set(&f.options, "decoupled", "true");
    cat_options_set(&f.options, "instances", "3");
    int rc = cat_function_create(db, &f, false, err);
    cat_options_free(&f.options);
    return rc;
}

static int64_t create_job(cat_db *db, const char *sink, const char *state, ros_error *err)
{
    cat_job j = {0};
    j.sql = "INSERT INTO t SELECT * FROM src";
    j.state = (char *)state;
    j.sink_table = (char *)sink;
    if (cat_job_create(db, &j, err) < 0)
        return -1;
    return j.id;
}

/* ------------------------------------------------------------------ */
/* Opening */

static void test_open_new_file(void **state)
{
    fixture *fx = *state;
    assert_int_equal(cat_schema_version(fx->db), CAT_SCHEMA_VERSION);
    assert_string_equal(cat_path(fx->db), fx->path);
    char run[320];
    snprintf(run, sizeof run, "%s.run", fx->path);
    assert_string_equal(cat_run_dir(fx->db), run);
    assert_false(file_exists(run));

    char *mode = query_text(cat_sqlite(fx->db), "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    assert_int_equal(query_int(fx->db, "PRAGMA synchronous"), 1); /* NORMAL */
    assert_int_equal(query_int(fx->db, "PRAGMA foreign_keys"), 1);
    char *app = query_text(cat_sqlite(fx->db), "SELECT value FROM rosql_meta WHERE key = 'application'");
    assert_string_equal(app, "rosql");
    free(app);
    assert_int_equal(catalog_rows(fx->db), 0);
    assert_false(cat_in_transaction(fx->db));
}

static void test_transient_catalog(void **state)
{
    fixture *fx = *state;
    char *old = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
    setenv("TMPDIR", fx->dir, 1);
    ros_error err = {0};
    cat_db *db = cat_open(NULL, &err);
    if (old) {
        setenv("TMPDIR", old, 1);
        free(old);
    } else {
        unsetenv("TMPDIR");
    }
    assert_non_null(db);
    char path[400], wal[420], shm[420];
    snprintf(path, sizeof path, "%s", cat_path(db));
    assert_int_equal(strncmp(path, fx->dir, strlen(fx->dir)), 0);
    assert_int_equal(create_table(db, "t", NULL, &err), 0);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    assert_true(file_exists(path));
    assert_true(file_exists(wal));
    cat_close(db);
    assert_false(file_exists(path));
    assert_false(file_exists(wal));
    assert_false(file_exists(shm));
}

static void test_reopen_sees_objects(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    assert_int_equal(create_table(fx->db, "t", NULL, err), 0);
    assert_int_equal(create_service(fx->db, "svc", err), 0);
    assert_int_equal(create_function(fx->db, "f", "svc", err), 0);
    int64_t job = create_job(fx->db, "t", "running", err);
    assert_true(job > 0);
    cat_close(fx->db);

    fx->db = cat_open(fx->path, err);
    assert_non_null(fx->db);
    cat_table *t = cat_table_get(fx->db, "t", err);
    assert_non_null(t);
    assert_int_equal(t->ncols, 4);
    assert_string_equal(t->cols[3].name, "v");
    cat_table_free(t);
    cat_function *f = cat_function_get(fx->db, "f", err);
    assert_non_null(f);
    assert_string_equal(f->service, "svc");
    cat_function_free(f);
    cat_service *s = cat_service_get(fx->db, "svc", err);
    assert_non_null(s);
    cat_service_free(s);
    cat_job *j = cat_job_get(fx->db, job, err);
    assert_non_null(j);
    assert_string_equal(j->state, "running");
    cat_job_free(j);
    assert_false(err->set);
}

static void test_not_a_database(void **state)
{
    fixture *fx = *state;
    FILE *fp = fopen(fx->path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is a plain text file, not a database\n", fp);
    fclose(fp);
    cat_db *db = cat_open(fx->path, &fx->err);
    assert_null(db);
    char msg[512];
    snprintf(msg, sizeof msg, "could not open database \"%s\": file is not a database", fx->path);
    assert_error(&fx->err, ROS_ERR_IO, msg);
}

static void test_foreign_sqlite_file(void **state)
{
    fixture *fx = *state;
    sqlite3 *sq;
    assert_int_equal(sqlite3_open(fx->path, &sq), SQLITE_OK);
    exec_ok(sq, "CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('ann')");
    sqlite3_close(sq);

    assert_null(cat_open(fx->path, &fx->err));
    char msg[512];
    snprintf(msg, sizeof msg, "database \"%s\" is not a rosql catalog", fx->path);
    assert_error(&fx->err, ROS_ERR_INVALID_PARAMETER, msg);

    /* The file was left as it was: no catalog tables, not switched to WAL. */
    assert_int_equal(sqlite3_open(fx->path, &sq), SQLITE_OK);
    char *mode = query_text(sq, "PRAGMA journal_mode");
    assert_string_equal(mode, "delete");
    free(mode);
    char *n = query_text(sq, "SELECT count(*) FROM sqlite_schema");
    assert_string_equal(n, "1");
    free(n);
    sqlite3_close(sq);

    /* A non-zero user_version without rosql_meta is not ours either. */
    assert_int_equal(sqlite3_open(fx->path, &sq), SQLITE_OK);
    exec_ok(sq, "DROP TABLE people; PRAGMA user_version = 1");
    sqlite3_close(sq);
    ros_error_clear(&fx->err);
    assert_null(cat_open(fx->path, &fx->err));
    assert_error(&fx->err, ROS_ERR_INVALID_PARAMETER, msg);
}

static void test_unopenable_path(void **state)
{
    fixture *fx = *state;
    char p[400];
    snprintf(p, sizeof p, "%s/no/such/dir/cat.db", fx->dir);
    assert_null(cat_open(p, &fx->err));
    assert_true(fx->err.set);
    assert_string_equal(fx->err.code, ROS_ERR_IO);
    assert_non_null(strstr(fx->err.message, p));

    /* A directory is not a database either. */
    ros_error_clear(&fx->err);
    assert_null(cat_open(fx->dir, &fx->err));
    assert_true(fx->err.set);
    assert_string_equal(fx->err.code, ROS_ERR_IO);
    assert_non_null(strstr(fx->err.message, fx->dir));
}

/* ------------------------------------------------------------------ */
/* Schema versions and migrations */

static void test_empty_version_zero_file_is_created(void **state)
{
    fixture *fx = *state;
    sqlite3 *sq;
    assert_int_equal(sqlite3_open(fx->path, &sq), SQLITE_OK);
    exec_ok(sq, "PRAGMA user_version = 0; CREATE TABLE x (a); DROP TABLE x");
    sqlite3_close(sq);
    fx->db = cat_open(fx->path, &fx->err);
    assert_non_null(fx->db);
    assert_int_equal(cat_schema_version(fx->db), CAT_SCHEMA_VERSION);
    assert_int_equal(create_table(fx->db, "t", NULL, &fx->err), 0);
}

static void test_newer_version_refused(void **state)
{
    fixture *fx = *state;
    exec_ok(cat_sqlite(fx->db), "PRAGMA user_version = 7");
    cat_close(fx->db);
    fx->db = cat_open(fx->path, &fx->err);
    assert_null(fx->db);
    char msg[512];
    snprintf(msg, sizeof msg, "database \"%s\" has catalog version 7, newer than this rosql supports (%d)", fx->path, CAT_SCHEMA_VERSION);
    assert_error(&fx->err, ROS_ERR_INVALID_PARAMETER, msg);
}

/* Drives the framework with a longer history than rosql's own. */
static void test_migration_steps(void **state)
{
    fixture *fx = *state;
    assert_int_equal(create_table(fx->db, "t", NULL, &fx->err), 0);
    cat_close(fx->db);
    fx->db = NULL;

    /* rosql's own history, then two more steps: the second fails mid-way */
    enum { V = CAT_SCHEMA_VERSION };
    cat_migration steps[V + 2];
    for (int i = 0; i < V; i++)
        steps[i] = cat_migrations[i];
    steps[V] = (cat_migration){V + 1, "CREATE TABLE rosql_extra (k TEXT); INSERT INTO rosql_extra VALUES ('two')"};
    steps[V + 1] = (cat_migration){V + 2, "CREATE TABLE rosql_three (k TEXT); CREATE TABLE rosql_three (k TEXT)"};
    char want[16];
    sqlite3 *sq;
    assert_int_equal(sqlite3_open(fx->path, &sq), SQLITE_OK);
    ros_error err = {0};
    assert_int_equal(cat_schema_migrate(sq, fx->path, steps, V + 1, &err), 0);
    assert_false(err.set);
    char *v = query_text(sq, "PRAGMA user_version");
    snprintf(want, sizeof want, "%d", V + 1);
    assert_string_equal(v, want);
    free(v);
    v = query_text(sq, "SELECT k FROM rosql_extra");
    assert_string_equal(v, "two");
    free(v);
    v = query_text(sq, "SELECT name FROM rosql_tables"); /* earlier objects kept */
    assert_string_equal(v, "t");
    free(v);

    /* Already current: nothing to do. */
    assert_int_equal(cat_schema_migrate(sq, fx->path, steps, V + 1, &err), 0);

    /* A failing step is rolled back whole and the version stays. */
    assert_int_equal(cat_schema_migrate(sq, fx->path, steps, V + 2, &err), -1);
    assert_string_equal(err.code, ROS_ERR_IO);
    char to[32];
    snprintf(to, sizeof to, "to version %d", V + 2);
    assert_non_null(strstr(err.message, to));
    assert_non_null(strstr(err.message, "already exists"));
    v = query_text(sq, "PRAGMA user_version");
    assert_string_equal(v, want);
    free(v);
    v = query_text(sq, "SELECT count(*) FROM sqlite_schema WHERE name = 'rosql_three'");
    assert_string_equal(v, "0");
    free(v);
    assert_true(sqlite3_get_autocommit(sq));

    /* A step numbered wrongly is an internal error, not a silent skip. */
    cat_migration bad[V + 2];
    for (int i = 0; i <= V; i++)
        bad[i] = steps[i];
    bad[V + 1] = (cat_migration){V + 3, "SELECT 1"};
    ros_error_clear(&err);
    assert_int_equal(cat_schema_migrate(sq, fx->path, bad, V + 2, &err), -1);
    assert_string_equal(err.code, ROS_ERR_INTERNAL);
    sqlite3_close(sq);

    /* This rosql refuses the newer file. */
    ros_error_clear(&err);
    assert_null(cat_open(fx->path, &err));
    char msg[512];
    snprintf(msg, sizeof msg, "database \"%s\" has catalog version %d, newer than this rosql supports (%d)", fx->path,
             V + 1, V);
    assert_error(&err, ROS_ERR_INVALID_PARAMETER, msg);
}

/* A version 1 file (before service events) is brought forward on open. */
static void test_version_1_file_migrates(void **state)
{
    fixture *fx = *state;
    cat_close(fx->db);
    fx->db = NULL;
    unlink(fx->path);
    sqlite3 *sq;
    assert_int_equal(sqlite3_open(fx->path, &sq), SQLITE_OK);
    ros_error err = {0};
    assert_int_equal(cat_schema_migrate(sq, fx->path, cat_migrations, 1, &err), 0);
    sqlite3_close(sq);
    fx->db = cat_open(fx->path, &err);
    assert_non_null(fx->db);
    assert_int_equal(cat_schema_version(fx->db), CAT_SCHEMA_VERSION);
    assert_int_equal(cat_service_event_add(fx->db, "s", "scale_out", 2, "ALTER SERVICE", &err), 0);
}

static void test_service_events(void **state)
{
    fixture *fx = *state;
    ros_error err = {0};
    assert_int_equal(cat_service_event_add(fx->db, "a", "scale_out", 3, "ALTER SERVICE: 1 -> 3", &err), 0);
    assert_int_equal(cat_service_event_add(fx->db, "b", "instance_crashed", -1, "killed by signal 9", &err), 0);
    assert_int_equal(cat_service_event_add(fx->db, "a", "autoscale_down", 2, NULL, &err), 0);
    cat_service_event **ev;
    int n;
    assert_int_equal(cat_service_event_list(fx->db, "a", &ev, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ev[0]->event, "scale_out");
    assert_int_equal(ev[0]->instances, 3);
    assert_string_equal(ev[0]->reason, "ALTER SERVICE: 1 -> 3");
    assert_string_equal(ev[1]->event, "autoscale_down");
    assert_null(ev[1]->reason);
    assert_true(ev[0]->at > 1e9);
    CAT_FREE_LIST(ev, n, cat_service_event_free);
    assert_int_equal(cat_service_event_list(fx->db, NULL, &ev, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ev[1]->instances, -1);
    CAT_FREE_LIST(ev, n, cat_service_event_free);
    /* only the newest CAT_SERVICE_EVENTS_KEPT of a service are kept */
    assert_int_equal(cat_begin(fx->db, &err), 0);
    for (int i = 0; i < CAT_SERVICE_EVENTS_KEPT + 5; i++)
        assert_int_equal(cat_service_event_add(fx->db, "c", "tick", i, NULL, &err), 0);
    assert_int_equal(cat_commit(fx->db, &err), 0);
    assert_int_equal(cat_service_event_list(fx->db, "c", &ev, &n, &err), 0);
    assert_int_equal(n, CAT_SERVICE_EVENTS_KEPT);
    assert_int_equal(ev[0]->instances, 5);
    CAT_FREE_LIST(ev, n, cat_service_event_free);
}

static void test_migration_from_zero_runs_every_step(void **state)
{
    fixture *fx = *state;
    cat_migration steps[2] = {cat_migrations[0], {2, "ALTER TABLE rosql_jobs ADD COLUMN note TEXT"}};
    sqlite3 *sq;
    assert_int_equal(sqlite3_open(fx->path, &sq), SQLITE_OK);
    ros_error err = {0};
    assert_int_equal(cat_schema_migrate(sq, fx->path, steps, 2, &err), 0);
    char *v = query_text(sq, "PRAGMA user_version");
    assert_string_equal(v, "2");
    free(v);
    v = query_text(sq, "SELECT count(*) FROM pragma_table_info('rosql_jobs') WHERE name = 'note'");
    assert_string_equal(v, "1");
    free(v);
    sqlite3_close(sq);
}

/* ------------------------------------------------------------------ */
/* Options */

static void test_options_helpers(void **state)
{
    (void)state;
    cat_options o = {0};
    assert_null(cat_options_get(&o, "a"));
    assert_int_equal(cat_options_set(&o, "b", "1"), 0);
    assert_int_equal(cat_options_set(&o, "a", "2"), 0);
    assert_int_equal(cat_options_set(&o, "c", "3"), 0);
    assert_int_equal(cat_options_set(&o, "b", "10"), 0); /* replaces in place */
    assert_int_equal(o.n, 3);
    assert_string_equal(o.items[0].key, "b");
    assert_string_equal(cat_options_get(&o, "b"), "10");

    char *text = cat_options_to_text(&o);
    assert_string_equal(text, "b=10\na=2\nc=3\n");
    free(text);

    cat_options copy;
    assert_int_equal(cat_options_copy(&copy, &o), 0);
    cat_options_remove(&o, "a");
    cat_options_remove(&o, "zzz");
    assert_int_equal(o.n, 2);
    assert_null(cat_options_get(&o, "a"));
    assert_string_equal(o.items[1].key, "c");
    assert_int_equal(copy.n, 3);
    assert_string_equal(cat_options_get(&copy, "a"), "2");
    cat_options_free(&copy);
    cat_options_free(&o);
    assert_int_equal(o.n, 0);

    text = cat_options_to_text(&o);
    assert_string_equal(text, "");
    free(text);
}

/* ------------------------------------------------------------------ */
/* Tables */

static void test_table_create_get_list_drop(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    cat_table *t = make_table("t", "sqlite");
    assert_int_equal(cat_table_create(fx->db, t, err), 0);
    assert_true(t->id > 0);
    char expect_dt[32];
    snprintf(expect_dt, sizeof expect_dt, "data_%lld", (long long)t->id);
    assert_string_equal(t->data_table, expect_dt);
    int64_t id = t->id;
    cat_table_free(t);

    cat_table *g = cat_table_get(fx->db, "t", err);
    assert_non_null(g);
    assert_int_equal(g->id, id);
    assert_string_equal(g->name, "t");
    assert_string_equal(g->connector, "sqlite");
    assert_string_equal(g->data_table, expect_dt);
    assert_int_equal(g->ncols, 4);
    assert_string_equal(g->cols[0].name, "a");
    assert_int_equal(g->cols[0].type, ROS_TYPE_INT32);
    assert_true(g->cols[0].not_null);
    assert_string_equal(g->cols[1].name, "b");
    assert_int_equal(g->cols[1].type, ROS_TYPE_TEXT);
    assert_false(g->cols[1].not_null);
    assert_int_equal(g->cols[3].type, ROS_TYPE_FLOAT32_ARRAY);
    assert_int_equal(g->options.n, 2);
    assert_string_equal(g->options.items[0].key, "rows");
    assert_string_equal(g->options.items[1].key, "format");
    assert_string_equal(g->options.items[1].value, "csv");
    cat_table_free(g);

    /* The data table has c0..c3 with SQLite types. */
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT group_concat(name || ' ' || type, ',') FROM (SELECT * FROM pragma_table_info('%s') ORDER BY cid)",
             expect_dt);
    char *cols = query_text(cat_sqlite(fx->db), sql);
    assert_string_equal(cols, "c0 INTEGER,c1 TEXT,c2 REAL,c3 BLOB");
    free(cols);

    /* Default connector is sqlite; others get no data table. */
    assert_int_equal(create_table(fx->db, "b_default", NULL, err), 0);
    assert_int_equal(create_table(fx->db, "a_gen", "datagen", err), 0);
    g = cat_table_get(fx->db, "b_default", err);
    assert_string_equal(g->connector, "sqlite");
    assert_non_null(g->data_table);
    cat_table_free(g);
    g = cat_table_get(fx->db, "a_gen", err);
    assert_string_equal(g->connector, "datagen");
    assert_null(g->data_table);
    cat_table_free(g);
    assert_int_equal(query_int(fx->db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'data\\_%' ESCAPE '\\'"),
                     2);

    cat_table **list;
    int n;
    assert_int_equal(cat_table_list(fx->db, &list, &n, err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0]->name, "a_gen");
    assert_string_equal(list[1]->name, "b_default");
    assert_string_equal(list[2]->name, "t");
    assert_int_equal(list[2]->ncols, 4);
    CAT_FREE_LIST(list, n, cat_table_free);

    /* Drop: 0, then 1 when missing; the data table goes too. */
    assert_int_equal(cat_table_drop(fx->db, "t", false, err), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE name = '%s'", expect_dt);
    assert_int_equal(query_int(fx->db, sql), 0);
    assert_int_equal(query_int(fx->db, "SELECT count(*) FROM rosql_columns"), 8);
    assert_null(cat_table_get(fx->db, "t", err));
    assert_false(err->set);
    assert_int_equal(cat_table_drop(fx->db, "t", false, err), 1);
    assert_int_equal(cat_table_drop(fx->db, "a_gen", true, err), 0);
    assert_int_equal(cat_table_drop(fx->db, "b_default", false, err), 0);
    assert_false(err->set);
    assert_int_equal(catalog_rows(fx->db), 0);

    assert_int_equal(cat_table_list(fx->db, &list, &n, err), 0);
    assert_int_equal(n, 0);
    free(list);
}

static void test_table_duplicate(void **state)
{
    fixture *fx = *state;
    assert_int_equal(create_table(fx->db, "t", NULL, &fx->err), 0);
    int64_t before = catalog_rows(fx->db);
    assert_int_equal(create_table(fx->db, "t", "datagen", &fx->err), -1);
    assert_error(&fx->err, ROS_ERR_DUPLICATE_TABLE, "relation \"t\" already exists");
    assert_int_equal(catalog_rows(fx->db), before);
    /* Names are compared exactly. */
    ros_error_clear(&fx->err);
    assert_int_equal(create_table(fx->db, "T", NULL, &fx->err), 0);
}

static void test_table_zero_columns(void **state)
{
    fixture *fx = *state;
    cat_table t = {0};
    t.name = "empty";
    assert_int_equal(cat_table_create(fx->db, &t, &fx->err), 0);
    assert_non_null(t.data_table);
    cat_table *g = cat_table_get(fx->db, "empty", &fx->err);
    assert_int_equal(g->ncols, 0);
    assert_null(g->cols);
    cat_table_free(g);
    free(t.data_table);
}

static void test_table_drop_with_running_job(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    assert_int_equal(create_table(fx->db, "t", NULL, err), 0);
    assert_int_equal(create_table(fx->db, "u", NULL, err), 0);
    int64_t j1 = create_job(fx->db, "t", "running", err);
    int64_t j2 = create_job(fx->db, "t", "created", err);
    int64_t j3 = create_job(fx->db, "t", "finished", err);
    int64_t j4 = create_job(fx->db, "u", "failed", err);
    assert_true(j1 > 0 && j2 > 0 && j3 > 0 && j4 > 0);

    assert_int_equal(cat_table_drop(fx->db, "t", false, err), -1);
    assert_error(err, ROS_ERR_DEPENDENT_OBJECTS, "cannot drop table t because other objects depend on it");
    char detail[200];
    snprintf(detail, sizeof detail, "job %lld depends on table t\njob %lld depends on table t", (long long)j1,
             (long long)j2);
    assert_string_equal(err->detail, detail);
    assert_string_equal(err->hint, "Use DROP ... CASCADE to drop the dependent objects too.");
    cat_table *g = cat_table_get(fx->db, "t", NULL);
    assert_non_null(g);
    cat_table_free(g);

    /* Finished and failed jobs do not hold a table. */
    ros_error_clear(err);
    assert_int_equal(cat_table_drop(fx->db, "u", false, err), 0);

    assert_int_equal(cat_table_drop(fx->db, "t", true, err), 0);
    assert_false(err->set);
    assert_null(cat_job_get(fx->db, j1, err));
    assert_null(cat_job_get(fx->db, j2, err));
    cat_job *j = cat_job_get(fx->db, j3, err);
    assert_non_null(j);
    cat_job_free(j);
    assert_false(err->set);
}

/* ------------------------------------------------------------------ */
/* Functions */

static void test_function_create_get_replace_drop(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    assert_int_equal(create_function(fx->db, "f", NULL, err), 0);
    cat_function *f = cat_function_get(fx->db, "f", err);
    assert_non_null(f);
    int64_t id = f->id;
    assert_true(id > 0);
    assert_string_equal(f->language, "c");
    assert_string_equal(f->library, "/lib/libudf.so");
    assert_string_equal(f->symbol, "udf_fn");
    assert_null(f->service);
    assert_null(f->method);
    assert_int_equal(f->nargs, 2);
    assert_int_equal(f->arg_types[0], ROS_TYPE_TEXT);
    assert_int_equal(f->arg_types[1], ROS_TYPE_INT64);
    assert_int_equal(f->ret_type, ROS_TYPE_FLOAT32_ARRAY);
    assert_int_equal(f->volatility, 's');
    assert_true(f->strict);
    assert_int_equal(f->options.n, 2);
    assert_string_equal(f->options.items[0].key, "decoupled");
    assert_string_equal(f->options.items[1].value, "3");

    /* Duplicate without replace. */
    assert_int_equal(create_function(fx->db, "f", NULL, err), -1);
    assert_error(err, ROS_ERR_DUPLICATE_FUNCTION, "function \"f\" already exists");
    ros_error_clear(err);

    /* Replace keeps the id and rewrites everything. */
    ros_type one = ROS_TYPE_FLOAT64;
    cat_function r = {0};
    r.name = "f";
    r.language = "c";
    r.library = "/lib/other.so";
    r.symbol = "other";
    r.nargs = 1;
    r.arg_types = &one;
    r.ret_type = ROS_TYPE_BOOL;
    r.volatility = 'i';
    assert_int_equal(cat_function_create(fx->db, &r, true, err), 0);
    assert_int_equal(r.id, id);
    cat_function_free(f);
    f = cat_function_get(fx->db, "f", err);
    assert_int_equal(f->id, id);
    assert_string_equal(f->library, "/lib/other.so");
    assert_int_equal(f->nargs, 1);
    assert_int_equal(f->arg_types[0], ROS_TYPE_FLOAT64);
    assert_int_equal(f->ret_type, ROS_TYPE_BOOL);
    assert_int_equal(f->volatility, 'i');
    assert_false(f->strict);
    assert_int_equal(f->options.n, 0);
    cat_function_free(f);

    /* ALTER FUNCTION ... SET replaces the annotation options. */
    cat_options o = {0};
    cat_options_set(&o, "batch", "64");
    assert_int_equal(cat_function_set_options(fx->db, "f", &o, err), 0);
    f = cat_function_get(fx->db, "f", err);
    assert_int_equal(f->options.n, 1);
    assert_string_equal(cat_options_get(&f->options, "batch"), "64");
    cat_function_free(f);
    assert_int_equal(cat_function_set_options(fx->db, "nope", &o, err), -1);
    assert_error(err, ROS_ERR_UNDEFINED_FUNCTION, "function \"nope\" does not exist");
    ros_error_clear(err);
    cat_options_free(&o);

    /* A function with no arguments. */
    cat_function z = {0};
    z.name = "a_zero";
    z.ret_type = ROS_TYPE_INT64;
    assert_int_equal(cat_function_create(fx->db, &z, false, err), 0);
    f = cat_function_get(fx->db, "a_zero", err);
    assert_int_equal(f->nargs, 0);
    assert_null(f->arg_types);
    assert_string_equal(f->language, "c");
    assert_int_equal(f->volatility, 'v');
    cat_function_free(f);

    cat_function **list;
    int n;
    assert_int_equal(cat_function_list(fx->db, &list, &n, err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->name, "a_zero");
    assert_string_equal(list[1]->name, "f");
    CAT_FREE_LIST(list, n, cat_function_free);

    assert_int_equal(cat_function_drop(fx->db, "f", false, err), 0);
    assert_int_equal(cat_function_drop(fx->db, "f", false, err), 1);
    assert_null(cat_function_get(fx->db, "f", err));
    assert_int_equal(cat_function_drop(fx->db, "a_zero", true, err), 0);
    assert_false(err->set);
    assert_int_equal(catalog_rows(fx->db), 0);
}

static void test_function_missing_service(void **state)
{
    fixture *fx = *state;
    assert_int_equal(create_function(fx->db, "f", "ghost", &fx->err), -1);
    assert_error(&fx->err, ROS_ERR_UNDEFINED_OBJECT, "service \"ghost\" does not exist");
    assert_null(cat_function_get(fx->db, "f", NULL));
    assert_int_equal(catalog_rows(fx->db), 0);
}

/* ------------------------------------------------------------------ */
/* Services and instances */

static void test_service_create_get_update_list(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    assert_int_equal(create_service(fx->db, "svc", err), 0);
    cat_service *s = cat_service_get(fx->db, "svc", err);
    assert_non_null(s);
    assert_true(s->id > 0);
    assert_string_equal(s->handler, "builtin:echo");
    assert_int_equal(s->desired_instances, 2);
    assert_string_equal(s->state, "starting");
    assert_null(s->last_error);
    assert_null(s->owner_function);
    assert_int_equal(s->options.n, 2);
    assert_string_equal(s->options.items[1].key, "device");

    assert_int_equal(create_service(fx->db, "svc", err), -1);
    assert_error(err, ROS_ERR_DUPLICATE_OBJECT, "service \"svc\" already exists");
    ros_error_clear(err);

    free(s->state);
    s->state = strdup("failed");
    s->last_error = strdup("worker exited with status 1");
    s->desired_instances = 4;
    cat_options_set(&s->options, "max_batch", "128");
    cat_options_remove(&s->options, "instances");
    assert_int_equal(cat_service_update(fx->db, s, err), 0);
    cat_service *g = cat_service_get(fx->db, "svc", err);
    assert_string_equal(g->state, "failed");
    assert_string_equal(g->last_error, "worker exited with status 1");
    assert_int_equal(g->desired_instances, 4);
    assert_int_equal(g->options.n, 2);
    assert_string_equal(g->options.items[0].key, "device");
    assert_string_equal(g->options.items[1].key, "max_batch");
    cat_service_free(g);

    s->id = 9999;
    assert_int_equal(cat_service_update(fx->db, s, err), -1);
    assert_error(err, ROS_ERR_UNDEFINED_OBJECT, "service with id 9999 does not exist");
    ros_error_clear(err);
    cat_service_free(s);

    cat_service o = {0};
    o.name = "a_owned";
    o.handler = "lib/x.so:handler";
    o.owner_function = "embed";
    assert_int_equal(cat_service_create(fx->db, &o, err), 0);
    cat_service **list;
    int n;
    assert_int_equal(cat_service_list(fx->db, &list, &n, err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->name, "a_owned");
    assert_string_equal(list[0]->owner_function, "embed");
    assert_string_equal(list[0]->state, "stopped");
    assert_string_equal(list[1]->name, "svc");
    CAT_FREE_LIST(list, n, cat_service_free);

    assert_null(cat_service_get(fx->db, "nope", err));
    assert_false(err->set);
}

static void test_service_drop_restrict_cascade(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    assert_int_equal(create_service(fx->db, "s", err), 0);
    assert_int_equal(create_service(fx->db, "other", err), 0);
    assert_int_equal(create_function(fx->db, "g", "s", err), 0);
    assert_int_equal(create_function(fx->db, "f", "s", err), 0);
    assert_int_equal(create_function(fx->db, "h", "other", err), 0);
    cat_function *f = cat_function_get(fx->db, "f", err);
    assert_string_equal(f->service, "s");
    assert_string_equal(f->method, "embed");
    assert_string_equal(f->language, "service");
    cat_function_free(f);
    cat_service *s = cat_service_get(fx->db, "s", err);
    cat_instance in = {0};
    in.service_id = s->id;
    in.state = "ready";
    assert_int_equal(cat_instance_put(fx->db, &in, err), 0);
    cat_service_free(s);
    int64_t before = catalog_rows(fx->db);

    assert_int_equal(cat_service_drop(fx->db, "s", false, err), -1);
    assert_error(err, ROS_ERR_DEPENDENT_OBJECTS, "cannot drop service s because other objects depend on it");
    assert_string_equal(err->detail, "function f depends on service s\nfunction g depends on service s");
    assert_string_equal(err->hint, "Use DROP ... CASCADE to drop the dependent objects too.");
    assert_int_equal(catalog_rows(fx->db), before);
    ros_error_clear(err);

    assert_int_equal(cat_service_drop(fx->db, "s", true, err), 0);
    assert_null(cat_service_get(fx->db, "s", err));
    assert_null(cat_function_get(fx->db, "f", err));
    assert_null(cat_function_get(fx->db, "g", err));
    f = cat_function_get(fx->db, "h", err);
    assert_non_null(f);
    cat_function_free(f);
    cat_instance **list;
    int n;
    assert_int_equal(cat_instance_list(fx->db, 0, &list, &n, err), 0);
    assert_int_equal(n, 0);
    free(list);
    assert_int_equal(cat_service_drop(fx->db, "s", true, err), 1);
    assert_false(err->set);

    /* Without dependents RESTRICT succeeds. */
    assert_int_equal(cat_function_drop(fx->db, "h", false, err), 0);
    assert_int_equal(cat_service_drop(fx->db, "other", false, err), 0);
    assert_int_equal(catalog_rows(fx->db), 0);
}

static void test_instance_upsert_list_delete(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    assert_int_equal(create_service(fx->db, "b", err), 0);
    assert_int_equal(create_service(fx->db, "a", err), 0);
    cat_service *sa = cat_service_get(fx->db, "a", err);
    cat_service *sb = cat_service_get(fx->db, "b", err);

    cat_instance in = {0};
    in.service_id = sb->id;
    in.idx = 1;
    in.pid = 4242;
    in.endpoint = "ipc:///tmp/x.1";
    in.state = "starting";
    assert_int_equal(cat_instance_put(fx->db, &in, err), 0);
    int64_t first_id = in.id;
    assert_true(first_id > 0);
    assert_true(in.updated_at > 1e9);

    /* Same (service, idx): updated in place, same id. */
    in.state = "ready";
    in.requests = 10;
    in.rows = 1000;
    in.inflight = 2;
    in.queue_depth = 3;
    in.restarts = 1;
    in.last_error = "transient";
    assert_int_equal(cat_instance_put(fx->db, &in, err), 0);
    assert_int_equal(in.id, first_id);
    in.idx = 0;
    in.last_error = NULL;
    assert_int_equal(cat_instance_put(fx->db, &in, err), 0);
    assert_true(in.id != first_id);
    cat_instance ia = {0};
    ia.service_id = sa->id;
    ia.idx = 0;
    assert_int_equal(cat_instance_put(fx->db, &ia, err), 0);

    cat_instance **list;
    int n;
    assert_int_equal(cat_instance_list(fx->db, sb->id, &list, &n, err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0]->idx, 0);
    assert_int_equal(list[1]->idx, 1);
    assert_int_equal(list[1]->id, first_id);
    assert_string_equal(list[1]->state, "ready");
    assert_int_equal(list[1]->pid, 4242);
    assert_string_equal(list[1]->endpoint, "ipc:///tmp/x.1");
    assert_int_equal(list[1]->requests, 10);
    assert_int_equal(list[1]->rows, 1000);
    assert_int_equal(list[1]->inflight, 2);
    assert_int_equal(list[1]->queue_depth, 3);
    assert_int_equal(list[1]->restarts, 1);
    assert_string_equal(list[1]->last_error, "transient");
    assert_null(list[0]->last_error);
    CAT_FREE_LIST(list, n, cat_instance_free);

    /* All services, ordered by service then idx (b was created first). */
    assert_int_equal(cat_instance_list(fx->db, 0, &list, &n, err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0]->service_id, sb->id);
    assert_int_equal(list[2]->service_id, sa->id);
    assert_string_equal(list[2]->state, "starting");
    CAT_FREE_LIST(list, n, cat_instance_free);

    assert_int_equal(cat_instance_delete(fx->db, sb->id, 1, err), 0);
    assert_int_equal(cat_instance_delete(fx->db, sb->id, 1, err), 1);
    assert_int_equal(cat_instance_list(fx->db, sb->id, &list, &n, err), 0);
    assert_int_equal(n, 1);
    CAT_FREE_LIST(list, n, cat_instance_free);

    cat_instance ghost = {0};
    ghost.service_id = 9999;
    assert_int_equal(cat_instance_put(fx->db, &ghost, err), -1);
    assert_error(err, ROS_ERR_UNDEFINED_OBJECT, "service with id 9999 does not exist");
    cat_service_free(sa);
    cat_service_free(sb);
}

/* ------------------------------------------------------------------ */
/* Jobs and checkpoints */

/* Processes racing on a job change its state only from the states they
 * expect (STOP JOB against the job's own exit). */
static void test_job_transition_and_progress(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    int64_t a = create_job(fx->db, "t", "running", err);
    assert_true(a > 0);
    assert_int_equal(cat_job_transition(fx->db, a, "stopping", "stopped", NULL, err), 0);
    assert_int_equal(cat_job_transition(fx->db, a, "created,running", "stopping", NULL, err), 1);
    assert_int_equal(cat_job_transition(fx->db, a, "running", "failed", "x", err), 0);
    assert_int_equal(cat_job_transition(fx->db, a, NULL, "failed", "boom", err), 1);
    assert_int_equal(cat_job_transition(fx->db, 424242, NULL, "failed", NULL, err), -1);
    assert_error(err, ROS_ERR_UNDEFINED_OBJECT, "job 424242 does not exist");
    ros_error_clear(err);

    cat_job p = {0};
    p.id = a;
    p.pid = 123;
    p.rows_read = 10;
    p.rows_written = 9;
    p.last_checkpoint = 4;
    p.recomputed = 2;
    assert_int_equal(cat_job_progress(fx->db, &p, err), 0);
    assert_int_equal(cat_job_count_restart(fx->db, a, err), 0);
    assert_int_equal(cat_job_count_restart(fx->db, a, err), 0);
    cat_job *g = cat_job_get(fx->db, a, err);
    assert_non_null(g);
    assert_string_equal(g->state, "failed"); /* progress leaves the state */
    assert_string_equal(g->last_error, "boom");
    assert_int_equal(g->pid, 123);
    assert_int_equal(g->rows_read, 10);
    assert_int_equal(g->rows_written, 9);
    assert_int_equal(g->last_checkpoint, 4);
    assert_int_equal(g->recomputed, 2);
    assert_int_equal(g->restarts, 2);
    assert_null(g->options);
    free(g->options);
    g->options = strdup("checkpoint_interval=2s");
    assert_int_equal(cat_job_update(fx->db, g, err), 0);
    cat_job_free(g);
    g = cat_job_get(fx->db, a, err);
    assert_string_equal(g->options, "checkpoint_interval=2s");
    cat_job_free(g);
}

static void test_jobs(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    int64_t a = create_job(fx->db, "t", NULL, err);
    int64_t b = create_job(fx->db, NULL, "running", err);
    assert_true(a > 0 && b > a);

    cat_job *j = cat_job_get(fx->db, a, err);
    assert_non_null(j);
    assert_string_equal(j->sql, "INSERT INTO t SELECT * FROM src");
    assert_string_equal(j->state, "created");
    assert_string_equal(j->sink_table, "t");
    assert_null(j->last_error);
    assert_true(j->created_at > 1e9);

    free(j->state);
    j->state = strdup("failed");
    j->last_error = strdup("boom");
    j->pid = 77;
    j->rows_read = 5;
    j->rows_written = 4;
    j->last_checkpoint = 3;
    j->restarts = 2;
    j->recomputed = 1;
    assert_int_equal(cat_job_update(fx->db, j, err), 0);
    cat_job *g = cat_job_get(fx->db, a, err);
    assert_string_equal(g->state, "failed");
    assert_string_equal(g->last_error, "boom");
    assert_int_equal(g->pid, 77);
    assert_int_equal(g->rows_read, 5);
    assert_int_equal(g->rows_written, 4);
    assert_int_equal(g->last_checkpoint, 3);
    assert_int_equal(g->restarts, 2);
    assert_int_equal(g->recomputed, 1);
    assert_true(g->updated_at >= g->created_at);
    cat_job_free(g);

    j->id = 9999;
    assert_int_equal(cat_job_update(fx->db, j, err), -1);
    assert_error(err, ROS_ERR_UNDEFINED_OBJECT, "job 9999 does not exist");
    ros_error_clear(err);
    cat_job_free(j);

    cat_job **list;
    int n;
    assert_int_equal(cat_job_list(fx->db, &list, &n, err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0]->id, a);
    assert_int_equal(list[1]->id, b);
    assert_null(list[1]->sink_table);
    CAT_FREE_LIST(list, n, cat_job_free);

    assert_null(cat_job_get(fx->db, 9999, err));
    assert_int_equal(cat_job_delete(fx->db, b, err), 0);
    assert_int_equal(cat_job_delete(fx->db, b, err), 1);
    assert_false(err->set);
}

static void test_checkpoints_pruned(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    int64_t job = create_job(fx->db, NULL, "running", err);
    int64_t other = create_job(fx->db, NULL, "running", err);
    assert_null(cat_checkpoint_latest(fx->db, job, err));
    assert_false(err->set);

    cat_checkpoint oc = {0};
    oc.job_id = other;
    assert_int_equal(cat_checkpoint_add(fx->db, &oc, 1, err), 0);

    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        char st[16];
        int len = snprintf(st, sizeof st, "state-%d", i);
        cat_checkpoint c = {0};
        c.job_id = job;
        c.duration_ms = 1.5 * i;
        c.bytes = len;
        c.inflight = i;
        c.state = st;
        c.state_len = (size_t)len;
        assert_int_equal(cat_checkpoint_add(fx->db, &c, 3, err), 0);
        ids[i] = c.id;
        assert_true(c.created_at > 1e9);
    }

    cat_checkpoint **list;
    int n;
    assert_int_equal(cat_checkpoint_list(fx->db, job, &list, &n, err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0]->id, ids[4]);
    assert_int_equal(list[1]->id, ids[3]);
    assert_int_equal(list[2]->id, ids[2]);
    assert_null(list[0]->state);
    assert_int_equal(list[0]->inflight, 4);
    CAT_FREE_LIST(list, n, cat_checkpoint_free);

    cat_checkpoint *c = cat_checkpoint_latest(fx->db, job, err);
    assert_non_null(c);
    assert_int_equal(c->id, ids[4]);
    assert_int_equal(c->state_len, 7);
    assert_memory_equal(c->state, "state-4", 7);
    assert_int_equal(c->bytes, 7);
    assert_true(c->duration_ms == 6.0);
    cat_checkpoint_free(c);

    /* The other job's checkpoint was not pruned; list all is newest first. */
    assert_int_equal(cat_checkpoint_list(fx->db, 0, &list, &n, err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(list[0]->id, ids[4]);
    assert_int_equal(list[3]->id, oc.id);
    CAT_FREE_LIST(list, n, cat_checkpoint_free);
    c = cat_checkpoint_latest(fx->db, other, err);
    assert_null(c->state);
    assert_int_equal(c->state_len, 0);
    cat_checkpoint_free(c);

    /* keep <= 0 keeps everything. */
    assert_int_equal(cat_checkpoint_add(fx->db, &oc, 0, err), 0);
    assert_int_equal(cat_checkpoint_list(fx->db, other, &list, &n, err), 0);
    assert_int_equal(n, 2);
    CAT_FREE_LIST(list, n, cat_checkpoint_free);

    cat_checkpoint bad = {0};
    bad.job_id = 9999;
    assert_int_equal(cat_checkpoint_add(fx->db, &bad, 3, err), -1);
    assert_error(err, ROS_ERR_UNDEFINED_OBJECT, "job 9999 does not exist");
    ros_error_clear(err);

    /* Checkpoints go with their job. */
    assert_int_equal(cat_job_delete(fx->db, job, err), 0);
    assert_int_equal(cat_checkpoint_list(fx->db, job, &list, &n, err), 0);
    assert_int_equal(n, 0);
    free(list);
}

/* ------------------------------------------------------------------ */
/* Transactions and atomicity */

static void test_transaction_rollback(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    assert_int_equal(cat_begin(fx->db, err), 0);
    assert_true(cat_in_transaction(fx->db));
    assert_int_equal(cat_begin(fx->db, err), -1); /* not nestable */
    assert_string_equal(err->code, ROS_ERR_INTERNAL);
    ros_error_clear(err);
    assert_int_equal(create_table(fx->db, "t", NULL, err), 0);
    assert_int_equal(create_service(fx->db, "s", err), 0);
    assert_int_equal(create_function(fx->db, "f", "s", err), 0);
    assert_true(create_job(fx->db, "t", "created", err) > 0);
    cat_table *t = cat_table_get(fx->db, "t", err); /* visible inside */
    assert_non_null(t);
    cat_table_free(t);
    cat_rollback(fx->db);
    assert_false(cat_in_transaction(fx->db));
    assert_int_equal(catalog_rows(fx->db), 0);
    cat_rollback(fx->db); /* safe without a transaction */

    /* A failed operation inside a transaction undoes only itself. */
    assert_int_equal(cat_begin(fx->db, err), 0);
    assert_int_equal(create_table(fx->db, "t", NULL, err), 0);
    assert_int_equal(create_table(fx->db, "t", NULL, err), -1);
    assert_string_equal(err->code, ROS_ERR_DUPLICATE_TABLE);
    ros_error_clear(err);
    assert_true(cat_in_transaction(fx->db));
    assert_int_equal(create_service(fx->db, "s", err), 0);
    assert_int_equal(cat_commit(fx->db, err), 0);
    assert_false(cat_in_transaction(fx->db));
    cat_table **list;
    int n;
    assert_int_equal(cat_table_list(fx->db, &list, &n, err), 0);
    assert_int_equal(n, 1);
    CAT_FREE_LIST(list, n, cat_table_free);
    cat_service *s = cat_service_get(fx->db, "s", err);
    assert_non_null(s);
    cat_service_free(s);
}

/* After an operation under fault injection: either it succeeded, or it
 * failed with the injected error.  Clears err. */
static void check_injected(ros_error *err, int rc)
{
    if (rc < 0)
        assert_error(err, ROS_ERR_IO, "could not write catalog: injected");
    else
        assert_false(err->set);
    ros_error_clear(err);
}

/*
 * Makes every insert into one catalog table fail, then checks that each
 * create leaves the catalog exactly as it was: the statements before the
 * failing one are undone too.
 */
static void test_failure_midway_leaves_nothing(void **state)
{
    fixture *fx = *state;
    static const char *const targets[] = {
        "rosql_tables", "rosql_columns", "rosql_table_options", "rosql_services",
        "rosql_service_options", "rosql_functions", "rosql_function_args", "rosql_function_options",
    };
    sqlite3 *sq = cat_sqlite(fx->db);
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        for (int in_tx = 0; in_tx < 2; in_tx++) {
            /* A service to hang functions on, made before the fault. */
            ros_error err = {0};
            assert_int_equal(create_service(fx->db, "base", &err), 0);
            int64_t before = catalog_rows(fx->db);
            char sql[256];
            snprintf(sql, sizeof sql,
                     "CREATE TEMP TRIGGER fault BEFORE INSERT ON main.%s BEGIN SELECT RAISE(ABORT, 'injected'); END",
                     targets[i]);
            exec_ok(sq, sql);
            if (in_tx)
                assert_int_equal(cat_begin(fx->db, &err), 0);

            int rcs[3];
            rcs[0] = create_table(fx->db, "t", NULL, &err);
            check_injected(&err, rcs[0]);
            rcs[1] = create_service(fx->db, "s", &err);
            check_injected(&err, rcs[1]);
            rcs[2] = create_function(fx->db, "f", "base", &err);
            check_injected(&err, rcs[2]);
            int failures = (rcs[0] < 0) + (rcs[1] < 0) + (rcs[2] < 0);
            assert_int_equal(failures, 1); /* each target is written by exactly one create */
            if (in_tx)
                assert_int_equal(cat_commit(fx->db, &err), 0);
            exec_ok(sq, "DROP TRIGGER temp.fault");

            /* The two that succeeded are whole; the one that failed left nothing. */
            cat_table *t = cat_table_get(fx->db, "t", &err);
            cat_service *s = cat_service_get(fx->db, "s", &err);
            cat_function *f = cat_function_get(fx->db, "f", &err);
            assert_false(err.set);
            int64_t expect = before + (t ? 7 + (t->data_table ? 1 : 0) : 0) + (s ? 3 : 0) + (f ? 5 : 0);
            assert_int_equal(catalog_rows(fx->db), expect);
            assert_int_equal((t != NULL) + (s != NULL) + (f != NULL), 2);
            cat_table_free(t);
            cat_service_free(s);
            cat_function_free(f);
            assert_true(cat_table_drop(fx->db, "t", true, &err) >= 0);
            assert_true(cat_function_drop(fx->db, "f", true, &err) >= 0);
            assert_true(cat_service_drop(fx->db, "s", true, &err) >= 0);
            assert_int_equal(cat_service_drop(fx->db, "base", true, &err), 0);
            assert_int_equal(catalog_rows(fx->db), 0);
        }
    }
}

/* The data table is created last: when it cannot be, the table's rows go. */
static void test_failure_creating_data_table(void **state)
{
    fixture *fx = *state;
    /* The next table id is 1 (ids are never reused), so squat data_1. */
    exec_ok(cat_sqlite(fx->db), "CREATE TABLE data_1 (x)");
    cat_table *t = make_table("t", NULL);
    assert_int_equal(cat_table_create(fx->db, t, &fx->err), -1);
    assert_error(&fx->err, ROS_ERR_IO, "could not write catalog: table data_1 already exists");
    assert_int_equal(t->id, 0);
    assert_null(t->data_table);
    cat_table_free(t);
    assert_null(cat_table_get(fx->db, "t", NULL));
    assert_int_equal(query_int(fx->db, "SELECT count(*) FROM rosql_columns"), 0);
    assert_int_equal(query_int(fx->db, "SELECT count(*) FROM rosql_table_options"), 0);
}

/* ------------------------------------------------------------------ */
/* Several connections */

static void test_second_connection(void **state)
{
    fixture *fx = *state;
    ros_error *err = &fx->err;
    cat_db *db2 = cat_open(fx->path, err);
    assert_non_null(db2);

    assert_int_equal(create_table(fx->db, "t", NULL, err), 0);
    cat_table *t = cat_table_get(db2, "t", err);
    assert_non_null(t);
    assert_int_equal(t->ncols, 4);
    cat_table_free(t);

    /* Uncommitted work is invisible to the other connection, which can
     * still read, but cannot write while the first holds the lock. */
    assert_int_equal(cat_begin(fx->db, err), 0);
    assert_int_equal(create_service(fx->db, "s", err), 0);
    assert_null(cat_service_get(db2, "s", err));
    assert_false(err->set);
    sqlite3_busy_timeout(cat_sqlite(db2), 50);
    assert_int_equal(create_table(db2, "u", NULL, err), -1);
    assert_error(err, ROS_ERR_IO, "could not write catalog: database is locked");
    ros_error_clear(err);
    assert_int_equal(cat_commit(fx->db, err), 0);

    cat_service *s = cat_service_get(db2, "s", err);
    assert_non_null(s);
    cat_service_free(s);
    assert_int_equal(create_table(db2, "u", NULL, err), 0);
    t = cat_table_get(fx->db, "u", err);
    assert_non_null(t);
    cat_table_free(t);
    cat_close(db2);
}

/*
 * Several processes open the same new file at once: the schema is created
 * once (each migration step re-reads the version under the write lock) and
 * every process's writes land.
 */
static void test_concurrent_processes(void **state)
{
    fixture *fx = *state;
    enum { NPROC = 6 };
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            ros_error err = {0};
            cat_db *db = cat_open(fx->path, &err);
            char name[16];
            snprintf(name, sizeof name, "t%d", i);
            int ok = db && create_table(db, name, NULL, &err) == 0;
            snprintf(name, sizeof name, "s%d", i);
            ok = ok && create_service(db, name, &err) == 0;
            if (!ok)
                fprintf(stderr, "child %d: %s\n", i, err.message);
            cat_close(db);
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < NPROC; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    fx->db = cat_open(fx->path, &fx->err);
    assert_non_null(fx->db);
    cat_table **tables;
    cat_service **services;
    int nt, ns;
    assert_int_equal(cat_table_list(fx->db, &tables, &nt, &fx->err), 0);
    assert_int_equal(cat_service_list(fx->db, &services, &ns, &fx->err), 0);
    assert_int_equal(nt, NPROC);
    assert_int_equal(ns, NPROC);
    assert_string_equal(tables[0]->name, "t0");
    assert_string_equal(services[NPROC - 1]->name, "s5");
    CAT_FREE_LIST(tables, nt, cat_table_free);
    CAT_FREE_LIST(services, ns, cat_service_free);
    assert_int_equal(query_int(fx->db, "SELECT count(*) FROM rosql_meta"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_new_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_sees_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_sqlite_file, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_unopenable_path, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_empty_version_zero_file_is_created, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_1_file_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_zero_runs_every_step, setup_dir, teardown),
        cmocka_unit_test(test_options_helpers),
        cmocka_unit_test_setup_teardown(test_table_create_get_list_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_zero_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_drop_with_running_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_create_get_replace_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_missing_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_create_get_update_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_drop_restrict_cascade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_upsert_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_pruned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transaction_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_midway_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_creating_data_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_processes, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_job_transition_and_progress, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * sqlite_table.c
 *    The sqlite connector (the default): a table's rows live in the catalog
 *    database, in the SQLite table t->data_table with columns c0..cN-1.
 *
 * Storage: INTEGER for booleans and integers, REAL for real and double
 * precision (NaN, which SQLite would turn into NULL, is stored as the text
 * 'NaN'), TEXT, and BLOB for bytea and for real[] (packed little-endian
 * float32).
 *
 * The source reads in rowid order, one batch per execution of a prepared
 * statement ("rowid > last ... LIMIT n"), so no read transaction stays open
 * between batches and rows appended meanwhile are found by the next batch.
 * A bounded source stops at the largest rowid present when it was opened
 * (so INSERT INTO t SELECT * FROM t terminates); a tail source has no bound
 * and returns 2 when no row is new.  The offset is the last rowid returned.
 *
 * The sink inserts through one reused prepared statement.  Inside a
 * transaction the catalog (or anyone else) has open it joins it and leaves
 * commit and rollback to that owner; otherwise it opens its own BEGIN
 * IMMEDIATE transaction at the first row and commit()/abort() end it.
 */
#include "runtime/connectors/connector_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core/types.h"

/* real[] values are stored as the vector's bytes, which must be the
 * little-endian float32 the storage format promises. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the sqlite connector stores real[] as little-endian float32: add byte swapping for this host"
#endif

typedef struct sqlite_source {
    rt_source base;
    sqlite3 *db;            /* the catalog's connection (borrowed) */
    sqlite3_stmt *stmt;     /* the batch query */
    char *table;            /* table name, for messages */
    int nproj;              /* projected columns */
    ros_type *ptypes;       /* their types */
    int64_t last;           /* rowid of the last row returned */
    int64_t max_rowid;      /* bounded: last rowid to read; tail: INT64_MAX */
} sqlite_source;

typedef struct sqlite_sink {
    rt_sink base;
    cat_db *cat;            /* the catalog (borrowed) */
    sqlite3 *db;            /* its connection */
    sqlite3_stmt *ins;      /* INSERT ... VALUES (?1, ...) */
    char *table;            /* table name, for messages */
    int ncols;
    ros_type *types;        /* column types */
    bool *not_null;         /* NOT NULL columns */
    char **names;           /* column names, for messages */
    bool own_txn;           /* we opened the transaction now open */
} sqlite_sink;

static int sqlite_cfg(const cat_table *t, bool *tail, ros_error *err);
static int sqlite_fail(sqlite3 *db, const char *what, const char *table, ros_error *err);
static void sqlite_quote_ident(ros_strbuf *sb, const char *name);

static int ssrc_next(rt_source *src, ros_batch *out, uint32_t max_rows, ros_error *err);
static int64_t ssrc_offset(rt_source *src);
static int ssrc_seek(rt_source *src, int64_t off, ros_error *err);
static void ssrc_close(rt_source *src);
static int ssrc_value(sqlite_source *ss, sqlite3_value *val, ros_vector *v, uint32_t row, ros_error *err);

static int ssink_write(rt_sink *sink, const ros_batch *b, ros_error *err);
static int ssink_commit(rt_sink *sink, ros_error *err);
static void ssink_abort(rt_sink *sink);
static void ssink_close(rt_sink *sink);

static const rt_source_ops sqlite_source_ops = {ssrc_next, ssrc_offset, ssrc_seek, ssrc_close};
static const rt_sink_ops sqlite_sink_ops = {ssink_write, ssink_commit, ssink_abort, ssink_close};

/* ================================================================== */
/* Options and helpers */

/* Parses the options (only `mode`).  Returns 0 or -1 with err set. */
static int sqlite_cfg(const cat_table *t, bool *tail, ros_error *err)
{
    *tail = false;
    for (int i = 0; i < t->options.n; i++) {
        const char *k = t->options.items[i].key;
        const char *v = t->options.items[i].value ? t->options.items[i].value : "";
        if (rt_opt_is_connector_key(k))
            continue;
        if (strcmp(k, "mode") == 0) {
            if (rt_opt_mode(k, v, tail, err) < 0)
                return -1;
        } else {
            return rt_opt_unknown("sqlite", k, "mode", err);
        }
    }
    return 0;
}

/* Records a SQLite failure on table; returns -1. */
static int sqlite_fail(sqlite3 *db, const char *what, const char *table, ros_error *err)
{
    return ros_error_set(err, ROS_ERR_IO, "could not %s table \"%s\": %s", what, table, sqlite3_errmsg(db));
}

static void sqlite_quote_ident(ros_strbuf *sb, const char *name)
{
    ros_strbuf_appendc(sb, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            ros_strbuf_appendc(sb, '"');
        ros_strbuf_appendc(sb, *p);
    }
    ros_strbuf_appendc(sb, '"');
}

int rt_sqlite_validate(cat_db *db, const cat_table *t, ros_error *err)
{
    bool tail;
    return sqlite_cfg(t, &tail, err);
}

/* ================================================================== */
/* Source */

rt_source *rt_sqlite_source_open(cat_db *cat, const cat_table *t, const rt_source_opts *opts, ros_error *err)
{
    bool tail;
    if (sqlite_cfg(t, &tail, err) < 0)
        return NULL;
    if (!t->data_table) {
        ros_error_set(err, ROS_ERR_INTERNAL, "table \"%s\" has no data table", t->name);
        return NULL;
    }
    sqlite_source *ss = calloc(1, sizeof *ss);
    if (!ss) {
        ros_error_oom(err);
        return NULL;
    }
    ss->base.ops = &sqlite_source_ops;
    ss->base.unbounded = tail || (opts && opts->tail);
    ss->db = cat_sqlite(cat);
    ss->nproj = opts ? opts->nproj : t->ncols;
    ss->ptypes = malloc(sizeof *ss->ptypes * (size_t)(ss->nproj ? ss->nproj : 1));
    ss->table = strdup(t->name ? t->name : "");
    ros_strbuf sql = ROS_STRBUF_INIT;
    if (!ss->ptypes || !ss->table)
        goto oom;
    ros_strbuf_append(&sql, "SELECT rowid");
    for (int i = 0; i < ss->nproj; i++) {
        int c = opts ? opts->proj[i] : i;
        ss->ptypes[i] = t->cols[c].type;
        ros_strbuf_appendf(&sql, ", c%d", c);
    }
    ros_strbuf_append(&sql, " FROM ");
    sqlite_quote_ident(&sql, t->data_table);
    ros_strbuf_append(&sql, " WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid LIMIT ?3");
    if (sql.oom)
        goto oom;
    if (sqlite3_prepare_v3(ss->db, sql.data, -1, SQLITE_PREPARE_PERSISTENT, &ss->stmt, NULL) != SQLITE_OK) {
        sqlite_fail(ss->db, "read", ss->table, err);
        goto fail;
    }
    ss->max_rowid = INT64_MAX;
    if (!ss->base.unbounded) {
        ros_strbuf_reset(&sql);
        ros_strbuf_append(&sql, "SELECT max(rowid) FROM ");
        sqlite_quote_ident(&sql, t->data_table);
        if (sql.oom)
            goto oom;
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(ss->db, sql.data, -1, &st, NULL) != SQLITE_OK) {
            sqlite_fail(ss->db, "read", ss->table, err);
            goto fail;
        }
        int rc = sqlite3_step(st);
        ss->max_rowid = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW) {
            sqlite_fail(ss->db, "read", ss->table, err);
            goto fail;
        }
    }
    ros_strbuf_free(&sql);
    return &ss->base;
oom:
    ros_error_oom(err);
fail:
    ros_strbuf_free(&sql);
    ssrc_close(&ss->base);
    return NULL;
}

static void ssrc_close(rt_source *src)
{
    sqlite_source *ss = (sqlite_source *)src;
    if (!ss)
        return;
    sqlite3_finalize(ss->stmt);
    free(ss->ptypes);
    free(ss->table);
    free(ss);
}

static int64_t ssrc_offset(rt_source *src)
{
    return ((sqlite_source *)src)->last;
}

static int ssrc_seek(rt_source *src, int64_t off, ros_error *err)
{
    ((sqlite_source *)src)->last = off;
    return 0;
}

/*
 * Stores val (a column of the current row) into row `row` of v.  Fixed-width
 * vectors were sized in advance; varlen ones are appended to.  Returns 0 or
 * -1 with err set.
 */
static int ssrc_value(sqlite_source *ss, sqlite3_value *val, ros_vector *v, uint32_t row, ros_error *err)
{
    int ct = sqlite3_value_type(val);
    if (ct == SQLITE_NULL) {
        if (ros_type_is_varlen(v->type))
            return ros_vector_append_null(v) < 0 ? ros_error_oom(err) : 0;
        ros_vector_set_valid(v, row, false);
        memset((uint8_t *)v->values + row * ros_type_width(v->type), 0, ros_type_width(v->type));
        return 0;
    }
    switch (v->type) {
    case ROS_TYPE_BOOL:
        ROS_VEC_BOOL(v)[row] = sqlite3_value_int64(val) != 0;
        return 0;
    case ROS_TYPE_INT16:
    case ROS_TYPE_INT32: {
        int64_t x = sqlite3_value_int64(val);
        int64_t lo = v->type == ROS_TYPE_INT16 ? INT16_MIN : INT32_MIN;
        int64_t hi = v->type == ROS_TYPE_INT16 ? INT16_MAX : INT32_MAX;
        if (x < lo || x > hi)
            return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value \"%lld\" is out of range for type %s",
                                 (long long)x, ros_type_name(v->type));
        if (v->type == ROS_TYPE_INT16)
            ROS_VEC_I16(v)[row] = (int16_t)x;
        else
            ROS_VEC_I32(v)[row] = (int32_t)x;
        return 0;
    }
    case ROS_TYPE_INT64:
        ROS_VEC_I64(v)[row] = sqlite3_value_int64(val);
        return 0;
    case ROS_TYPE_FLOAT32:
    case ROS_TYPE_FLOAT64: {
        double d;
        if (ct == SQLITE_FLOAT || ct == SQLITE_INTEGER)
            d = sqlite3_value_double(val);
        else { /* 'NaN' stored as text */
            const char *txt = (const char *)sqlite3_value_text(val);
            d = txt ? strtod(txt, NULL) : NAN;
        }
        if (v->type == ROS_TYPE_FLOAT32)
            ROS_VEC_F32(v)[row] = (float)d;
        else
            ROS_VEC_F64(v)[row] = d;
        return 0;
    }
    case ROS_TYPE_TEXT: {
        const unsigned char *p = sqlite3_value_text(val);
        int n = sqlite3_value_bytes(val);
        if (!p && sqlite3_errcode(ss->db) == SQLITE_NOMEM)
            return ros_error_oom(err);
        return ros_vector_append_bytes(v, p ? (const void *)p : "", (uint32_t)n) < 0 ? ros_error_oom(err) : 0;
    }
    case ROS_TYPE_BYTEA:
    case ROS_TYPE_FLOAT32_ARRAY: {
        const void *p = sqlite3_value_blob(val);
        int n = sqlite3_value_bytes(val);
        if (v->type == ROS_TYPE_FLOAT32_ARRAY && n % 4 != 0)
            return ros_error_set(err, ROS_ERR_INTERNAL, "corrupt real[] value in table \"%s\"", ss->table);
        if (ros_vector_append_bytes(v, p ? p : "", (uint32_t)(p ? n : 0)) < 0)
            return ros_error_oom(err);
        return 0;
    }
    case ROS_TYPE_NULL:
        break;
    }
    return ros_error_set(err, ROS_ERR_INTERNAL, "unexpected column type %d", (int)v->type);
}

static int ssrc_next(rt_source *src, ros_batch *out, uint32_t max_rows, ros_error *err)
{
    sqlite_source *ss = (sqlite_source *)src;
    if (rt_batch_prepare(out, ss->nproj, ss->ptypes, err) < 0)
        return -1;
    if (max_rows == 0)
        max_rows = RT_DEFAULT_BATCH;
    if (ss->last >= ss->max_rowid)
        return ss->base.unbounded ? 2 : 0;
    /* Size fixed-width columns for the whole batch up front; the row loop
     * then stores values directly. */
    for (int j = 0; j < ss->nproj; j++) {
        ros_vector *v = &out->cols[j];
        int rc = ros_type_is_varlen(v->type) ? ros_vector_reserve(v, max_rows) : ros_vector_resize_fixed(v, max_rows);
        if (rc < 0)
            return ros_error_oom(err);
    }
    sqlite3_stmt *st = ss->stmt;
    sqlite3_bind_int64(st, 1, ss->last);
    sqlite3_bind_int64(st, 2, ss->max_rowid);
    sqlite3_bind_int64(st, 3, max_rows);
    uint32_t rows = 0;
    int64_t last = ss->last;
    int rc;
    /* Holding the connection's mutex for the whole batch makes the column
     * values protected, so they can be read with the cheap sqlite3_value_*
     * calls, and spares a lock per call (NULL, a no-op, when SQLite runs
     * without mutexes). */
    sqlite3_mutex *mx = sqlite3_db_mutex(ss->db);
    sqlite3_mutex_enter(mx);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
        for (int j = 0; j < ss->nproj; j++) {
            if (ssrc_value(ss, sqlite3_column_value(st, j + 1), &out->cols[j], rows, err) < 0) {
                sqlite3_reset(st);
                sqlite3_mutex_leave(mx);
                return -1;
            }
        }
        rows++;
    }
    if (rc != SQLITE_DONE)
        sqlite_fail(ss->db, "read", ss->table, err);
    sqlite3_reset(st);
    sqlite3_mutex_leave(mx);
    if (rc != SQLITE_DONE)
        return -1;
    for (int j = 0; j < ss->nproj; j++)
        if (!ros_type_is_varlen(out->cols[j].type))
            out->cols[j].len = rows;
    out->nrows = rows;
    ss->last = last;
    if (rows > 0)
        return 1;
    return ss->base.unbounded ? 2 : 0;
}

/* ================================================================== */
/* Sink */

rt_sink *rt_sqlite_sink_open(cat_db *cat, const cat_table *t, ros_error *err)
{
    if (!t->data_table) {
        ros_error_set(err, ROS_ERR_INTERNAL, "table \"%s\" has no data table", t->name);
        return NULL;
    }
    sqlite_sink *sk = calloc(1, sizeof *sk);
    if (!sk) {
        ros_error_oom(err);
        return NULL;
    }
    sk->base.ops = &sqlite_sink_ops;
    sk->cat = cat;
    sk->db = cat_sqlite(cat);
    sk->ncols = t->ncols;
    size_t n = (size_t)(t->ncols ? t->ncols : 1);
    sk->table = strdup(t->name ? t->name : "");
    sk->types = malloc(sizeof *sk->types * n);
    sk->not_null = malloc(sizeof *sk->not_null * n);
    sk->names = calloc(n, sizeof *sk->names);
    ros_strbuf sql = ROS_STRBUF_INIT;
    if (!sk->table || !sk->types || !sk->not_null || !sk->names)
        goto oom;
    for (int i = 0; i < t->ncols; i++) {
        sk->types[i] = t->cols[i].type;
        sk->not_null[i] = t->cols[i].not_null;
        if (!(sk->names[i] = strdup(t->cols[i].name ? t->cols[i].name : "")))
            goto oom;
    }
    ros_strbuf_append(&sql, "INSERT INTO ");
    sqlite_quote_ident(&sql, t->data_table);
    if (t->ncols == 0) {
        ros_strbuf_append(&sql, " DEFAULT VALUES");
    } else {
        ros_strbuf_append(&sql, " (");
        for (int i = 0; i < t->ncols; i++)
            ros_strbuf_appendf(&sql, "%sc%d", i ? ", " : "", i);
        ros_strbuf_append(&sql, ") VALUES (");
        for (int i = 0; i < t->ncols; i++)
            ros_strbuf_appendf(&sql, "%s?%d", i ? ", " : "", i + 1);
        ros_strbuf_appendc(&sql, ')');
    }
    if (sql.oom)
        goto oom;
    if (sqlite3_prepare_v3(sk->db, sql.data, -1, SQLITE_PREPARE_PERSISTENT, &sk->ins, NULL) != SQLITE_OK) {
        sqlite_fail(sk->db, "write to", sk->table, err);
        goto fail;
    }
    ros_strbuf_free(&sql);
    return &sk->base;
oom:
    ros_error_oom(err);
fail:
    ros_strbuf_free(&sql);
    ssink_close(&sk->base);
    return NULL;
}

static int ssink_write(rt_sink *sink, const ros_batch *b, ros_error *err)
{
    sqlite_sink *sk = (sqlite_sink *)sink;
    if ((int)b->ncols != sk->ncols)
        return ros_error_set(err, ROS_ERR_INTERNAL, "batch has %u columns, table \"%s\" has %d", b->ncols, sk->table,
                             sk->ncols);
    for (int c = 0; c < sk->ncols; c++) {
        const ros_vector *v = &b->cols[c];
        if (v->type != sk->types[c] || v->len < b->nrows)
            return ros_error_set(err, ROS_ERR_INTERNAL, "batch column %d does not match table \"%s\"", c, sk->table);
        if (sk->not_null[c] && v->validity) {
            for (uint32_t i = 0; i < b->nrows; i++)
                if (ros_vector_is_null(v, i))
                    return ros_error_set(err, RT_ERR_NOT_NULL,
                                         "null value in column \"%s\" of relation \"%s\" violates not-null constraint",
                                         sk->names[c], sk->table);
        }
    }
    if (b->nrows == 0)
        return 0;
    if (!sk->own_txn && !cat_in_transaction(sk->cat) && sqlite3_get_autocommit(sk->db)) {
        if (sqlite3_exec(sk->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return sqlite_fail(sk->db, "write to", sk->table, err);
        sk->own_txn = true;
    }
    sqlite3_stmt *st = sk->ins;
    /* One lock for the batch instead of one per bind and step. */
    sqlite3_mutex *mx = sqlite3_db_mutex(sk->db);
    int rc = 0;
    sqlite3_mutex_enter(mx);
    for (uint32_t i = 0; i < b->nrows && rc == 0; i++) {
        for (int c = 0; c < sk->ncols; c++) {
            const ros_vector *v = &b->cols[c];
            int k = c + 1;
            if (ros_vector_is_null(v, i)) {
                rc = sqlite3_bind_null(st, k);
            } else {
                switch (v->type) {
                case ROS_TYPE_BOOL: rc = sqlite3_bind_int(st, k, ROS_VEC_BOOL(v)[i] != 0); break;
                case ROS_TYPE_INT16: rc = sqlite3_bind_int(st, k, ROS_VEC_I16(v)[i]); break;
                case ROS_TYPE_INT32: rc = sqlite3_bind_int(st, k, ROS_VEC_I32(v)[i]); break;
                case ROS_TYPE_INT64: rc = sqlite3_bind_int64(st, k, ROS_VEC_I64(v)[i]); break;
                case ROS_TYPE_FLOAT32:
                case ROS_TYPE_FLOAT64: {
                    double d = v->type == ROS_TYPE_FLOAT32 ? (double)ROS_VEC_F32(v)[i] : ROS_VEC_F64(v)[i];
                    rc = isnan(d) ? sqlite3_bind_text(st, k, "NaN", 3, SQLITE_STATIC) : sqlite3_bind_double(st, k, d);
                    break;
                }
                case ROS_TYPE_TEXT: {
                    uint32_t len;
                    const uint8_t *p = ros_vector_bytes(v, i, &len);
                    rc = sqlite3_bind_text(st, k, len ? (const char *)p : "", (int)len, SQLITE_STATIC);
                    break;
                }
                case ROS_TYPE_BYTEA:
                case ROS_TYPE_FLOAT32_ARRAY: {
                    uint32_t len;
                    const uint8_t *p = ros_vector_bytes(v, i, &len);
                    rc = sqlite3_bind_blob(st, k, len ? (const void *)p : "", (int)len, SQLITE_STATIC);
                    break;
                }
                default: rc = sqlite3_bind_null(st, k); break;
                }
            }
            if (rc != SQLITE_OK)
                break;
        }
        if (rc == SQLITE_OK && sqlite3_step(st) != SQLITE_DONE)
            rc = -1;
        if (rc != SQLITE_OK)
            sqlite_fail(sk->db, "write to", sk->table, err);
        sqlite3_reset(st);
    }
    /* Drop the borrowed pointers into b before the caller frees it. */
    sqlite3_clear_bindings(st);
    sqlite3_mutex_leave(mx);
    return rc == SQLITE_OK ? 0 : -1;
}

static int ssink_commit(rt_sink *sink, ros_error *err)
{
    sqlite_sink *sk = (sqlite_sink *)sink;
    if (!sk->own_txn)
        return 0; /* none, or the owner of the open transaction commits */
    if (sqlite3_exec(sk->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return sqlite_fail(sk->db, "commit to", sk->table, err);
    sk->own_txn = false;
    return 0;
}

static void ssink_abort(rt_sink *sink)
{
    sqlite_sink *sk = (sqlite_sink *)sink;
    if (!sk->own_txn)
        return;
    if (!sqlite3_get_autocommit(sk->db))
        sqlite3_exec(sk->db, "ROLLBACK", NULL, NULL, NULL);
    sk->own_txn = false;
}

static void ssink_close(rt_sink *sink)
{
    sqlite_sink *sk = (sqlite_sink *)sink;
    if (!sk)
        return;
    ssink_abort(sink);
    sqlite3_finalize(sk->ins);
    for (int i = 0; sk->names && i < sk->ncols; i++)
        free(sk->names[i]);
    free(sk->names);
    free(sk->types);
    free(sk->not_null);
    free(sk->table);
    free(sk);
}

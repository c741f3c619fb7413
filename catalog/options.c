/*
 * options.c
 *    Ordered key/value option lists: the in-memory helpers of catalog.h and
 *    their storage in the per-kind option tables (owner_id, position, key,
 *    value), where position keeps the order the user wrote.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int options_find(const cat_options *o, const char *key);

/* ------------------------------------------------------------------ */
/* In memory */

/* Index of key in o, or -1. */
static int options_find(const cat_options *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->items[i].key, key) == 0)
            return i;
    return -1;
}

const char *cat_options_get(const cat_options *o, const char *key)
{
    int i = options_find(o, key);
    return i < 0 ? NULL : o->items[i].value;
}

int cat_options_set(cat_options *o, const char *key, const char *value)
{
    char *v = strdup(value ? value : "");
    if (!v)
        return -1;
    int i = options_find(o, key);
    if (i >= 0) {
        free(o->items[i].value);
        o->items[i].value = v;
        return 0;
    }
    char *k = strdup(key);
    cat_option *items = k ? realloc(o->items, (size_t)(o->n + 1) * sizeof *items) : NULL;
    if (!items) {
        free(k);
        free(v);
        return -1;
    }
    items[o->n].key = k;
    items[o->n].value = v;
    o->items = items;
    o->n++;
    return 0;
}

void cat_options_remove(cat_options *o, const char *key)
{
    int i = options_find(o, key);
    if (i < 0)
        return;
    free(o->items[i].key);
    free(o->items[i].value);
    memmove(&o->items[i], &o->items[i + 1], (size_t)(o->n - i - 1) * sizeof o->items[0]);
    o->n--;
}

int cat_options_copy(cat_options *dst, const cat_options *src)
{
    dst->n = 0;
    dst->items = NULL;
    for (int i = 0; i < src->n; i++) {
        if (cat_options_set(dst, src->items[i].key, src->items[i].value) < 0) {
            cat_options_free(dst);
            return -1;
        }
    }
    return 0;
}

void cat_options_free(cat_options *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++) {
        free(o->items[i].key);
        free(o->items[i].value);
    }
    free(o->items);
    o->items = NULL;
    o->n = 0;
}

char *cat_options_to_text(const cat_options *o)
{
    ros_strbuf sb = ROS_STRBUF_INIT;
    ros_strbuf_append(&sb, "");
    for (int i = 0; i < o->n; i++)
        ros_strbuf_appendf(&sb, "%s=%s\n", o->items[i].key, o->items[i].value);
    if (sb.oom) {
        ros_strbuf_free(&sb);
        return NULL;
    }
    return ros_strbuf_steal(&sb);
}

/* ------------------------------------------------------------------ */
/* Stored */

int cat_options_load(cat_db *db, const char *table, int64_t owner, cat_options *o, ros_error *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT key, value FROM %s WHERE owner_id = ? ORDER BY position", table);
    sqlite3_stmt *st;
    if (cat_prepare(db, sql, &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, owner);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (cat_options_set(o, k ? k : "", v ? v : "") < 0) {
            sqlite3_finalize(st);
            return ros_error_oom(err);
        }
    }
    if (rc != SQLITE_DONE) {
        cat_sqlerr(db, err);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

int cat_options_store(cat_db *db, const char *table, int64_t owner, const cat_options *o, ros_error *err)
{
    char sql[128];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE owner_id = ?", table);
    if (cat_prepare(db, sql, &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, owner);
    if (cat_step_done(db, st, err) < 0)
        return -1;
    if (!o || o->n == 0)
        return 0;

    snprintf(sql, sizeof sql, "INSERT INTO %s (owner_id, position, key, value) VALUES (?, ?, ?, ?)", table);
    if (cat_prepare(db, sql, &st, err) < 0)
        return -1;
    for (int i = 0; i < o->n; i++) {
        sqlite3_bind_int64(st, 1, owner);
        sqlite3_bind_int(st, 2, i);
        cat_bind_text(st, 3, o->items[i].key);
        cat_bind_text(st, 4, o->items[i].value ? o->items[i].value : "");
        if (sqlite3_step(st) != SQLITE_DONE) {
            cat_sqlerr(db, err);
            sqlite3_finalize(st);
            return -1;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return 0;
}

/*
 * parse.c
 *    sql_parse(): route one statement to libpg_query or to the extension
 *    grammar; helpers both grammars share (lists, errors, options, types);
 *    the keyword list for tab completion.
 *
 * Routing looks only at the leading tokens (see sql_ext_wants in
 * ext_parse.c).  SUBMIT INSERT is the one hybrid: the SUBMIT keyword is
 * blanked out in a copy of the text and the rest goes to libpg_query, so
 * every byte offset and character position stays that of the original text.
 */
#include "sql_int.h"

#include <stdarg.h>
#include <string.h>

#include "runtime/core/types.h"

static sql_stmt *parse_submit(const char *stmt, const sql_tokens *toks, ros_arena *arena,
                              ros_error *err);
static const char *quote_option_keys(const char *stmt, const sql_tokens *toks, ros_arena *arena);

/* ------------------------------------------------------------------ */
/* Entry point */

sql_stmt *sql_parse(const char *stmt, ros_arena *arena, ros_error *err)
{
    sql_tokens toks;
    if (sql_lex(stmt, arena, &toks, err) < 0)
        return NULL;
    if (sql_tok_is_word(&toks, 0, "submit"))
        return parse_submit(stmt, &toks, arena, err);
    if (sql_ext_wants(&toks))
        return sql_ext_parse(&toks, arena, err);
    if (sql_tok_is_word(&toks, 0, "create")) {
        const char *copy = quote_option_keys(stmt, &toks, arena);
        if (!copy)
            return ros_error_oom(err), NULL;
        toks.text = copy;
        return sql_pg_parse(copy, &toks, arena, err);
    }
    return sql_pg_parse(stmt, &toks, arena, err);
}

/*
 * CREATE TABLE ... WITH ('fields.id.kind' = 'sequence'): connector options
 * are written Flink-style with quoted dotted keys, which PostgreSQL's
 * reloption grammar does not take ('x' is a string there, and a bare key has
 * at most one dot).  In a copy of the text, a simple '...' key right after
 * "(" or "," and before "=" inside the top-level WITH ( ... ) becomes the
 * quoted identifier "...": same length, so every position stays right.
 * Returns stmt itself when there is nothing to change, NULL on OOM.
 */
static const char *quote_option_keys(const char *stmt, const sql_tokens *toks, ros_arena *arena)
{
    int depth = 0, with_open = -1;
    char *copy = NULL;
    for (int i = 0; i < toks->n; i++) {
        if (sql_tok_is_punct(toks, i, '(')) {
            if (depth == 0 && i > 0 && sql_tok_is_word(toks, i - 1, "with"))
                with_open = depth + 1;
            depth++;
        } else if (sql_tok_is_punct(toks, i, ')')) {
            if (depth == with_open)
                with_open = -1;
            depth--;
        } else if (depth == with_open && with_open > 0 && toks->toks[i].cls == SQL_TOK_STRING &&
                   sql_tok_is_punct(toks, i + 1, '=') &&
                   (sql_tok_is_punct(toks, i - 1, '(') || sql_tok_is_punct(toks, i - 1, ','))) {
            const sql_token *t = &toks->toks[i];
            if (stmt[t->start] != '\'' || stmt[t->end - 1] != '\'' || t->end - t->start < 3 ||
                memchr(stmt + t->start + 1, '\'', (size_t)(t->end - t->start - 2)) ||
                memchr(stmt + t->start + 1, '"', (size_t)(t->end - t->start - 2)))
                continue;
            if (!copy && !(copy = ros_arena_strdup(arena, stmt)))
                return NULL;
            copy[t->start] = '"';
            copy[t->end - 1] = '"';
        }
    }
    return copy ? copy : stmt;
}

/* SUBMIT INSERT ...: an INSERT that runs detached. */
static sql_stmt *parse_submit(const char *stmt, const sql_tokens *toks, ros_arena *arena,
                              ros_error *err)
{
    if (!sql_tok_is_word(toks, 1, "insert")) {
        sql_syntax_error(toks, 1, err);
        return NULL;
    }
    char *copy = ros_arena_strdup(arena, stmt);
    if (!copy)
        return ros_error_oom(err), NULL;
    memset(copy + toks->toks[0].start, ' ', (size_t)(toks->toks[0].end - toks->toks[0].start));
    sql_tokens rest = *toks;
    rest.text = copy;
    sql_stmt *s = sql_pg_parse(copy, &rest, arena, err);
    if (!s)
        return NULL;
    if (s->kind != SQL_S_INSERT) /* cannot happen: one statement starting with INSERT */
        return ros_error_set(err, ROS_ERR_INTERNAL, "SUBMIT did not parse as INSERT"), NULL;
    s->u.insert.submit = true;
    return s;
}

/* ------------------------------------------------------------------ */
/* Lists and nodes */

/* Doubles the array when full.  On allocation failure the list is left as
 * it was (n unchanged): callers that must know compare n before and after. */
void sql_list_push(ros_arena *arena, sql_list *list, void *item)
{
    if (list->n == list->cap) {
        int cap = list->cap ? list->cap * 2 : 4;
        void **items = ROS_ARENA_ARRAY(arena, void *, cap);
        if (!items)
            return;
        if (list->n)
            memcpy(items, list->items, sizeof(void *) * (size_t)list->n);
        list->items = items;
        list->cap = cap;
    }
    list->items[list->n++] = item;
}

sql_expr *sql_expr_new(ros_arena *arena, sql_expr_kind kind, int location)
{
    sql_expr *e = ROS_ARENA_NEW(arena, sql_expr);
    if (e) {
        e->kind = kind;
        e->location = location;
    }
    return e;
}

/* ------------------------------------------------------------------ */
/* Errors */

int sql_char_position(const char *text, int offset)
{
    if (offset < 0)
        return 0;
    int chars = 0;
    for (int i = 0; i < offset && text[i]; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80)
            chars++;
    return chars + 1;
}

int sql_syntax_error(const sql_tokens *t, int i, ros_error *err)
{
    if (i >= t->n) {
        ros_error_set(err, ROS_ERR_SYNTAX, "syntax error at end of input");
        ros_error_position(err, sql_char_position(t->text, (int)strlen(t->text)));
        return -1;
    }
    const sql_token *tok = &t->toks[i];
    return sql_error_at(err, t->text, tok->start, ROS_ERR_SYNTAX, "syntax error at or near \"%.*s\"",
                        tok->end - tok->start, t->text + tok->start);
}

int sql_error_at(ros_error *err, const char *text, int offset, const char *code,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ros_error_setv(err, code, fmt, ap);
    va_end(ap);
    if (offset >= 0)
        ros_error_position(err, sql_char_position(text, offset));
    return -1;
}

/* ------------------------------------------------------------------ */
/* Options and types */

int sql_option_add(ros_arena *arena, sql_list *list, sql_option *opt, const char *text,
                   ros_error *err)
{
    for (int i = 0; i < list->n; i++) {
        const sql_option *o = list->items[i];
        if (strcmp(o->key, opt->key) == 0)
            return sql_error_at(err, text, opt->location, ROS_ERR_SYNTAX,
                                "option \"%s\" specified more than once", opt->key);
    }
    int before = list->n;
    sql_list_push(arena, list, opt);
    return list->n > before ? 0 : ros_error_oom(err);
}

int sql_resolve_type(const char *name, bool is_array, int location, sql_typename *tn,
                     const char *text, ros_error *err)
{
    ros_type t;
    if (!ros_type_from_name(name, is_array, &t))
        return sql_error_at(err, text, location, ROS_ERR_UNDEFINED_OBJECT,
                            "type \"%s%s\" does not exist", name, is_array ? "[]" : "");
    tn->type = t;
    tn->name = ros_type_name(t);
    tn->location = location;
    return 0;
}

char *sql_lower(char *s)
{
    if (s)
        for (char *p = s; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    return s;
}

/* ------------------------------------------------------------------ */
/* Keywords for tab completion */

const char *const *sql_keywords(void)
{
    static const char *const keywords[] = {
        /* queries */
        "SELECT", "DISTINCT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC",
        "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "ALL", "AS", "VALUES",
        /* expressions */
        "AND", "OR", "NOT", "IS", "NULL", "TRUE", "FALSE", "UNKNOWN", "IN", "BETWEEN",
        "SYMMETRIC", "LIKE", "ILIKE", "ESCAPE", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST",
        "COALESCE", "NULLIF", "GREATEST", "LEAST", "ARRAY", "FILTER", "POSITION", "SUBSTRING",
        "TRIM", "BOTH", "LEADING", "TRAILING", "FOR",
        /* data changes */
        "INSERT", "INTO", "DELETE", "SUBMIT",
        /* definitions */
        "CREATE", "ALTER", "DROP", "TABLE", "FUNCTION", "SERVICE", "IF", "EXISTS", "CASCADE",
        "RESTRICT", "REPLACE", "RETURNS", "LANGUAGE", "STRICT", "IMMUTABLE", "STABLE",
        "VOLATILE", "CALLED", "ON", "INPUT", "WITH", "USING", "METHOD", "SET", "RESET",
        "DEFAULT", "TO", "DECOUPLED",
        /* types */
        "INTEGER", "INT", "BIGINT", "SMALLINT", "REAL", "DOUBLE", "PRECISION", "FLOAT", "TEXT",
        "VARCHAR", "BOOLEAN", "BYTEA",
        /* utility */
        "SHOW", "TABLES", "FUNCTIONS", "SERVICES", "JOBS", "JOB", "CHECKPOINTS", "EVENTS", "COLUMNS",
        "EXPLAIN", "ANALYZE", "VERBOSE", "REWRITE", "BEGIN", "COMMIT", "ROLLBACK", "STOP", "RESUME", "CHECKPOINT",
        NULL,
    };
    return keywords;
}

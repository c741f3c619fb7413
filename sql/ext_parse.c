/*
 * ext_parse.c
 *    rosql's extension statements, which PostgreSQL's grammar lacks:
 *
 *      CREATE SERVICE [IF NOT EXISTS] name USING 'handler' [WITH (opts)]
 *      ALTER SERVICE name SET (opts)
 *      DROP SERVICE [IF EXISTS] name [, ...] [CASCADE | RESTRICT]
 *      CREATE [OR REPLACE] FUNCTION f(args) RETURNS type  clauses...
 *          with WITH (opts) and/or SERVICE name [METHOD 'm'] among them
 *      ALTER FUNCTION name [(argtypes)] SET (opts)
 *      SHOW TABLES | FUNCTIONS | SERVICES | JOBS | CHECKPOINTS [FOR JOB n]
 *      SHOW COLUMNS FROM table
 *         | SERVICE EVENTS | ALL | name
 *      STOP JOB n | RESUME JOB n | CHECKPOINT JOB n
 *
 *    opts:  key [= value] [, ...]   value: 'string' | number | word
 *
 * A hand-written recursive descent over the tokens of lex.c.  Syntax errors
 * read exactly like PostgreSQL's (`syntax error at or near "X"`, `syntax
 * error at end of input`) and point at the offending token.  The CREATE
 * FUNCTION grammar covers everything libpg_query's path accepts (LANGUAGE,
 * AS, STRICT, volatility, ON NULL INPUT) so both produce the same AST.
 */
#include "sql_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Parser state. */
typedef struct ext {
    const sql_tokens *t;
    int pos;           /* next token */
    ros_arena *arena;
    ros_error *err;
} ext;

static sql_stmt *ext_create_service(ext *p);
static sql_stmt *ext_create_function(ext *p, bool or_replace);
static sql_stmt *ext_alter(ext *p);
static sql_stmt *ext_drop_service(ext *p);
static sql_stmt *ext_show(ext *p);
static sql_stmt *ext_job(ext *p);
static int ext_options(ext *p, sql_list *out);
static int ext_type(ext *p, sql_typename *out);
static int ext_end(ext *p);

/* ------------------------------------------------------------------ */
/* Routing */

/* Statement words that make SHOW ours (SHOW <setting> stays PostgreSQL's). */
static const char *const show_words[] = {"tables", "functions", "services", "jobs", "checkpoints",
                                         "service", "columns", NULL};

/* Is there, at parenthesis depth 0 after token from, a SERVICE or METHOD
 * word or a WITH followed by "("? */
static bool function_has_extension(const sql_tokens *t, int from)
{
    int depth = 0;
    for (int i = from; i < t->n; i++) {
        if (sql_tok_is_punct(t, i, '('))
            depth++;
        else if (sql_tok_is_punct(t, i, ')'))
            depth--;
        else if (depth == 0 && (sql_tok_is_word(t, i, "service") || sql_tok_is_word(t, i, "method") ||
                                (sql_tok_is_word(t, i, "with") && sql_tok_is_punct(t, i + 1, '('))))
            return true;
    }
    return false;
}

bool sql_ext_wants(const sql_tokens *t)
{
    if (sql_tok_is_word(t, 0, "create")) {
        int i = 1;
        if (sql_tok_is_word(t, 1, "or") && sql_tok_is_word(t, 2, "replace"))
            i = 3;
        if (sql_tok_is_word(t, i, "service"))
            return true;
        return sql_tok_is_word(t, i, "function") && function_has_extension(t, i + 1);
    }
    if (sql_tok_is_word(t, 0, "alter"))
        return sql_tok_is_word(t, 1, "service") || sql_tok_is_word(t, 1, "function");
    if (sql_tok_is_word(t, 0, "drop"))
        return sql_tok_is_word(t, 1, "service");
    if (sql_tok_is_word(t, 0, "show"))
        for (int k = 0; show_words[k]; k++)
            if (sql_tok_is_word(t, 1, show_words[k]))
                return true;
    /* PostgreSQL's CHECKPOINT takes no argument; STOP and RESUME are ours */
    if (sql_tok_is_word(t, 0, "stop") || sql_tok_is_word(t, 0, "resume") || sql_tok_is_word(t, 0, "checkpoint"))
        return sql_tok_is_word(t, 1, "job");
    return false;
}

sql_stmt *sql_ext_parse(const sql_tokens *toks, ros_arena *arena, ros_error *err)
{
    ext p = {toks, 0, arena, err};
    sql_stmt *s = NULL;
    if (sql_tok_is_word(toks, 0, "create")) {
        p.pos = 1;
        bool or_replace = false;
        if (sql_tok_is_word(toks, 1, "or") && sql_tok_is_word(toks, 2, "replace")) {
            or_replace = true;
            p.pos = 3;
        }
        if (!or_replace && sql_tok_is_word(toks, p.pos, "service")) {
            p.pos++;
            s = ext_create_service(&p);
        } else if (sql_tok_is_word(toks, p.pos, "function")) {
            p.pos++;
            s = ext_create_function(&p, or_replace);
        } else {
            sql_syntax_error(toks, p.pos, err);
        }
    } else if (sql_tok_is_word(toks, 0, "alter")) {
        p.pos = 1;
        s = ext_alter(&p);
    } else if (sql_tok_is_word(toks, 0, "drop") && sql_tok_is_word(toks, 1, "service")) {
        p.pos = 2;
        s = ext_drop_service(&p);
    } else if (sql_tok_is_word(toks, 0, "show")) {
        p.pos = 1;
        s = ext_show(&p);
    } else if (sql_tok_is_word(toks, 1, "job")) {
        s = ext_job(&p);
    } else {
        sql_syntax_error(toks, 0, err);
    }
    if (!s || ext_end(&p) < 0)
        return NULL;
    s->location = 0;
    return s;
}

/* ------------------------------------------------------------------ */
/* Token helpers */

static bool accept_word(ext *p, const char *w)
{
    if (!sql_tok_is_word(p->t, p->pos, w))
        return false;
    p->pos++;
    return true;
}

static bool accept_punct(ext *p, char c)
{
    if (!sql_tok_is_punct(p->t, p->pos, c))
        return false;
    p->pos++;
    return true;
}

static int expect_word(ext *p, const char *w)
{
    return accept_word(p, w) ? 0 : sql_syntax_error(p->t, p->pos, p->err);
}

static int expect_punct(ext *p, char c)
{
    return accept_punct(p, c) ? 0 : sql_syntax_error(p->t, p->pos, p->err);
}

static int syntax_error(ext *p)
{
    return sql_syntax_error(p->t, p->pos, p->err);
}

static int oom(ext *p)
{
    return ros_error_oom(p->err);
}

static int push(ext *p, sql_list *list, void *item)
{
    int before = list->n;
    sql_list_push(p->arena, list, item);
    return list->n > before ? 0 : oom(p);
}

/* The byte offset of the current token (or of the end of the text). */
static int here(const ext *p)
{
    return p->pos < p->t->n ? p->t->toks[p->pos].start : (int)strlen(p->t->text);
}

/* A name: an identifier, a "quoted identifier" or a non-reserved keyword. */
static int ext_name(ext *p, const char **out)
{
    if (p->pos >= p->t->n)
        return syntax_error(p);
    const sql_token *tok = &p->t->toks[p->pos];
    if (!(tok->cls == SQL_TOK_QIDENT || (tok->cls == SQL_TOK_WORD && !tok->reserved)))
        return syntax_error(p);
    if (!(*out = sql_tok_ident(p->t, p->pos, p->arena)))
        return oom(p);
    p->pos++;
    return 0;
}

/* A quoted string's contents. */
static int ext_string(ext *p, const char **out)
{
    if (p->pos >= p->t->n || p->t->toks[p->pos].cls != SQL_TOK_STRING)
        return syntax_error(p);
    if (!(*out = sql_tok_string(p->t, p->pos, p->arena)))
        return oom(p);
    p->pos++;
    return 0;
}

/* An optional ';', then nothing. */
static int ext_end(ext *p)
{
    accept_punct(p, ';');
    return p->pos < p->t->n ? syntax_error(p) : 0;
}

/* ------------------------------------------------------------------ */
/* Options: ( key [= value] [, ...] ) */

static int ext_option_value(ext *p, sql_option *o)
{
    if (p->pos >= p->t->n)
        return syntax_error(p);
    const sql_token *tok = &p->t->toks[p->pos];
    const char *sign = "";
    if (tok->cls == SQL_TOK_PUNCT && (p->t->text[tok->start] == '-' || p->t->text[tok->start] == '+') &&
        p->pos + 1 < p->t->n &&
        (p->t->toks[p->pos + 1].cls == SQL_TOK_INT || p->t->toks[p->pos + 1].cls == SQL_TOK_FLOAT)) {
        sign = p->t->text[tok->start] == '-' ? "-" : "";
        tok = &p->t->toks[++p->pos];
    }
    switch (tok->cls) {
    case SQL_TOK_STRING:
        o->quoted = true;
        o->value = sql_tok_string(p->t, p->pos, p->arena);
        break;
    case SQL_TOK_INT:
    case SQL_TOK_FLOAT:
        o->value = ros_arena_printf(p->arena, "%s%.*s", sign, tok->end - tok->start, p->t->text + tok->start);
        break;
    case SQL_TOK_WORD:
    case SQL_TOK_QIDENT:
        o->value = sql_tok_ident(p->t, p->pos, p->arena);
        break;
    default:
        return syntax_error(p);
    }
    if (!o->value)
        return oom(p);
    p->pos++;
    return 0;
}

static int ext_options(ext *p, sql_list *out)
{
    if (expect_punct(p, '(') < 0)
        return -1;
    do {
        if (p->pos >= p->t->n)
            return syntax_error(p);
        const sql_token *tok = &p->t->toks[p->pos];
        if (tok->cls != SQL_TOK_WORD && tok->cls != SQL_TOK_QIDENT)
            return syntax_error(p);
        sql_option *o = ROS_ARENA_NEW(p->arena, sql_option);
        if (!o)
            return oom(p);
        o->location = tok->start;
        if (!(o->key = sql_lower(sql_tok_ident(p->t, p->pos, p->arena))))
            return oom(p);
        p->pos++;
        if (accept_punct(p, '=') && ext_option_value(p, o) < 0)
            return -1;
        if (sql_option_add(p->arena, out, o, p->t->text, p->err) < 0)
            return -1;
    } while (accept_punct(p, ','));
    return expect_punct(p, ')');
}

/* ------------------------------------------------------------------ */
/* Types: real, double precision, character varying, varchar(10), real[] */

static bool type_starts_here(const ext *p)
{
    return p->pos < p->t->n &&
           (p->t->toks[p->pos].cls == SQL_TOK_WORD || p->t->toks[p->pos].cls == SQL_TOK_QIDENT);
}

/* In a parameter list, does the current word name the parameter?  It does
 * when another word follows that does not continue a two-word type. */
static bool param_has_name(const ext *p)
{
    int next = p->pos + 1;
    return type_starts_here(p) && next < p->t->n &&
           (p->t->toks[next].cls == SQL_TOK_WORD || p->t->toks[next].cls == SQL_TOK_QIDENT) &&
           !sql_tok_is_word(p->t, next, "precision") && !sql_tok_is_word(p->t, next, "varying");
}

static int ext_type(ext *p, sql_typename *out)
{
    if (!type_starts_here(p))
        return syntax_error(p);
    int loc = here(p);
    const char *name = sql_tok_ident(p->t, p->pos, p->arena);
    if (!name)
        return oom(p);
    p->pos++;
    if (strcmp(name, "double") == 0 && accept_word(p, "precision"))
        name = "double precision";
    else if (strcmp(name, "character") == 0 && accept_word(p, "varying"))
        name = "character varying";
    if (accept_punct(p, '(')) {
        /* typmods are accepted and not enforced, as on the libpg_query path */
        do {
            if (p->pos >= p->t->n || p->t->toks[p->pos].cls != SQL_TOK_INT)
                return syntax_error(p);
            p->pos++;
        } while (accept_punct(p, ','));
        if (expect_punct(p, ')') < 0)
            return -1;
    }
    bool is_array = false;
    if (accept_punct(p, '[')) {
        if (p->pos < p->t->n && p->t->toks[p->pos].cls == SQL_TOK_INT)
            p->pos++;
        if (expect_punct(p, ']') < 0)
            return -1;
        is_array = true;
        if (sql_tok_is_punct(p->t, p->pos, '['))
            return sql_error_at(p->err, p->t->text, loc, ROS_ERR_NOT_SUPPORTED,
                                "multidimensional arrays are not supported");
    }
    return sql_resolve_type(name, is_array, loc, out, p->t->text, p->err);
}

/* ------------------------------------------------------------------ */
/* Services */

static sql_stmt *new_stmt(ext *p, sql_stmt_kind kind)
{
    sql_stmt *s = ROS_ARENA_NEW(p->arena, sql_stmt);
    if (!s)
        return oom(p), NULL;
    s->kind = kind;
    return s;
}

/* CREATE SERVICE [IF NOT EXISTS] name USING 'handler' [WITH (opts)] */
static sql_stmt *ext_create_service(ext *p)
{
    sql_stmt *s = new_stmt(p, SQL_S_CREATE_SERVICE);
    if (!s)
        return NULL;
    if (accept_word(p, "if")) {
        if (expect_word(p, "not") < 0 || expect_word(p, "exists") < 0)
            return NULL;
        s->u.create_service.if_not_exists = true;
    }
    if (ext_name(p, &s->u.create_service.name) < 0 || expect_word(p, "using") < 0 ||
        ext_string(p, &s->u.create_service.handler) < 0)
        return NULL;
    if (accept_word(p, "with") && ext_options(p, &s->u.create_service.options) < 0)
        return NULL;
    return s;
}

/* DROP SERVICE [IF EXISTS] name [, ...] [CASCADE | RESTRICT] */
static sql_stmt *ext_drop_service(ext *p)
{
    sql_stmt *s = new_stmt(p, SQL_S_DROP);
    if (!s)
        return NULL;
    s->u.drop.object = SQL_OBJ_SERVICE;
    if (accept_word(p, "if")) {
        if (expect_word(p, "exists") < 0)
            return NULL;
        s->u.drop.if_exists = true;
    }
    do {
        const char *name;
        if (ext_name(p, &name) < 0 || push(p, &s->u.drop.names, (void *)name) < 0)
            return NULL;
    } while (accept_punct(p, ','));
    if (accept_word(p, "cascade"))
        s->u.drop.cascade = true;
    else
        accept_word(p, "restrict");
    return s;
}

/* ALTER SERVICE name SET (opts) | ALTER FUNCTION name [(types)] SET (opts) */
static sql_stmt *ext_alter(ext *p)
{
    if (accept_word(p, "service")) {
        sql_stmt *s = new_stmt(p, SQL_S_ALTER_SERVICE);
        if (!s || ext_name(p, &s->u.alter_service.name) < 0 || expect_word(p, "set") < 0 ||
            ext_options(p, &s->u.alter_service.options) < 0)
            return NULL;
        return s;
    }
    if (expect_word(p, "function") < 0)
        return NULL;
    sql_stmt *s = new_stmt(p, SQL_S_ALTER_FUNCTION);
    if (!s || ext_name(p, &s->u.alter_function.name) < 0)
        return NULL;
    sql_lower((char *)s->u.alter_function.name); /* function names are always folded */
    if (accept_punct(p, '(') && !accept_punct(p, ')')) {
        /* argument types identify the function in PostgreSQL; rosql has no
         * overloading, so they are checked for syntax and not kept */
        do {
            sql_typename tn;
            if (param_has_name(p))
                p->pos++; /* a parameter name */
            if (ext_type(p, &tn) < 0)
                return NULL;
        } while (accept_punct(p, ','));
        if (expect_punct(p, ')') < 0)
            return NULL;
    }
    if (expect_word(p, "set") < 0 || ext_options(p, &s->u.alter_function.options) < 0)
        return NULL;
    return s;
}

/* ------------------------------------------------------------------ */
/* CREATE FUNCTION */

/* One parameter: `type` or `name type`.  A word followed by a type word is
 * a name; `double precision` and `character varying` are types. */
static int ext_param(ext *p, sql_stmt *s)
{
    const char *name = NULL;
    if (param_has_name(p) && ext_name(p, &name) < 0)
        return -1;
    sql_typename *tn = ROS_ARENA_NEW(p->arena, sql_typename);
    if (!tn)
        return oom(p);
    if (ext_type(p, tn) < 0)
        return -1;
    if (push(p, &s->u.create_function.arg_types, tn) < 0 ||
        push(p, &s->u.create_function.arg_names, (void *)name) < 0)
        return -1;
    return 0;
}

static int redundant(ext *p, int location)
{
    return sql_error_at(p->err, p->t->text, location, ROS_ERR_SYNTAX, "conflicting or redundant options");
}

/*
 * CREATE [OR REPLACE] FUNCTION name ( [param [, ...]] ) RETURNS type
 *   { LANGUAGE lang | AS 'lib' [, 'symbol'] | STRICT | CALLED ON NULL INPUT
 *   | RETURNS NULL ON NULL INPUT | IMMUTABLE | STABLE | VOLATILE
 *   | WITH (opts) | SERVICE name | METHOD 'm' } ...
 */
static sql_stmt *ext_create_function(ext *p, bool or_replace)
{
    sql_stmt *s = new_stmt(p, SQL_S_CREATE_FUNCTION);
    if (!s)
        return NULL;
    s->u.create_function.or_replace = or_replace;
    s->u.create_function.volatility = 'v';
    if (ext_name(p, &s->u.create_function.name) < 0 || expect_punct(p, '(') < 0)
        return NULL;
    sql_lower((char *)s->u.create_function.name); /* as calls fold them */
    if (!accept_punct(p, ')')) {
        do {
            if (ext_param(p, s) < 0)
                return NULL;
        } while (accept_punct(p, ','));
        if (expect_punct(p, ')') < 0)
            return NULL;
    }
    if (expect_word(p, "returns") < 0 || ext_type(p, &s->u.create_function.ret_type) < 0)
        return NULL;

    bool seen_strict = false, seen_volatility = false, seen_with = false;
    while (p->pos < p->t->n && !sql_tok_is_punct(p->t, p->pos, ';')) {
        int at = here(p);
        if (accept_word(p, "language")) {
            if (s->u.create_function.language)
                return redundant(p, at), NULL;
            const char *lang;
            if (p->pos < p->t->n && p->t->toks[p->pos].cls == SQL_TOK_STRING) {
                if (ext_string(p, &lang) < 0)
                    return NULL;
            } else if (ext_name(p, &lang) < 0) {
                return NULL;
            }
            s->u.create_function.language = sql_lower((char *)lang);
        } else if (accept_word(p, "as")) {
            if (s->u.create_function.library)
                return redundant(p, at), NULL;
            if (ext_string(p, &s->u.create_function.library) < 0)
                return NULL;
            if (accept_punct(p, ',') && ext_string(p, &s->u.create_function.symbol) < 0)
                return NULL;
        } else if (sql_tok_is_word(p->t, p->pos, "strict") || sql_tok_is_word(p->t, p->pos, "called") ||
                   sql_tok_is_word(p->t, p->pos, "returns")) {
            if (seen_strict)
                return redundant(p, at), NULL;
            seen_strict = true;
            if (accept_word(p, "strict")) {
                s->u.create_function.strict = true;
            } else {
                bool strict = accept_word(p, "returns");
                if (strict ? expect_word(p, "null") < 0 : expect_word(p, "called") < 0)
                    return NULL;
                if (expect_word(p, "on") < 0 || expect_word(p, "null") < 0 || expect_word(p, "input") < 0)
                    return NULL;
                s->u.create_function.strict = strict;
            }
        } else if (sql_tok_is_word(p->t, p->pos, "immutable") || sql_tok_is_word(p->t, p->pos, "stable") ||
                   sql_tok_is_word(p->t, p->pos, "volatile")) {
            if (seen_volatility)
                return redundant(p, at), NULL;
            seen_volatility = true;
            s->u.create_function.volatility = sql_tok_is_word(p->t, p->pos, "immutable") ? 'i'
                                            : sql_tok_is_word(p->t, p->pos, "stable")    ? 's'
                                                                                         : 'v';
            p->pos++;
        } else if (accept_word(p, "with")) {
            if (seen_with)
                return redundant(p, at), NULL;
            seen_with = true;
            if (ext_options(p, &s->u.create_function.options) < 0)
                return NULL;
        } else if (accept_word(p, "service")) {
            if (s->u.create_function.service)
                return redundant(p, at), NULL;
            if (ext_name(p, &s->u.create_function.service) < 0)
                return NULL;
        } else if (accept_word(p, "method")) {
            if (s->u.create_function.method)
                return redundant(p, at), NULL;
            if (ext_string(p, &s->u.create_function.method) < 0)
                return NULL;
        } else {
            return syntax_error(p), NULL;
        }
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* STOP / RESUME / CHECKPOINT JOB n */

static sql_stmt *ext_job(ext *p)
{
    sql_stmt *s = new_stmt(p, SQL_S_JOB);
    if (!s)
        return NULL;
    s->u.job.action = accept_word(p, "stop") ? "stop" : accept_word(p, "resume") ? "resume" : "checkpoint";
    if (!strcmp(s->u.job.action, "checkpoint") && expect_word(p, "checkpoint") < 0)
        return NULL;
    if (expect_word(p, "job") < 0)
        return NULL;
    if (p->pos >= p->t->n || p->t->toks[p->pos].cls != SQL_TOK_INT)
        return syntax_error(p), NULL;
    errno = 0;
    s->u.job.id = strtoll(p->t->text + p->t->toks[p->pos].start, NULL, 10);
    if (errno || s->u.job.id <= 0)
        return sql_error_at(p->err, p->t->text, here(p), ROS_ERR_OUT_OF_RANGE, "job id is out of range"), NULL;
    p->pos++;
    return s;
}

/* ------------------------------------------------------------------ */
/* SHOW */

static sql_stmt *ext_show(ext *p)
{
    sql_stmt *s = new_stmt(p, SQL_S_SHOW);
    if (!s)
        return NULL;
    s->u.show.job_id = -1;
    if (accept_word(p, "service")) {
        if (expect_word(p, "events") < 0)
            return NULL;
        s->u.show.what = "service events";
        return s;
    }
    if (accept_word(p, "checkpoints")) {
        s->u.show.what = "checkpoints";
        if (accept_word(p, "for")) {
            if (expect_word(p, "job") < 0)
                return NULL;
            if (p->pos >= p->t->n || p->t->toks[p->pos].cls != SQL_TOK_INT)
                return syntax_error(p), NULL;
            errno = 0;
            s->u.show.job_id = strtoll(p->t->text + p->t->toks[p->pos].start, NULL, 10);
            if (errno)
                return sql_error_at(p->err, p->t->text, here(p), ROS_ERR_OUT_OF_RANGE,
                                    "job id is out of range"), NULL;
            p->pos++;
        }
        return s;
    }
    if (accept_word(p, "all")) {
        s->u.show.what = "all";
        return s;
    }
    if (accept_word(p, "columns")) {
        /* SHOW COLUMNS FROM table: what \d table prints */
        if (!accept_word(p, "from") && expect_word(p, "in") < 0)
            return NULL;
        s->u.show.what = "columns";
        if (ext_name(p, &s->u.show.object) < 0)
            return NULL;
        return s;
    }
    /* TABLES, FUNCTIONS, SERVICES, JOBS or a setting (possibly dotted) */
    const char *name;
    if (ext_name(p, &name) < 0)
        return NULL;
    while (accept_punct(p, '.')) {
        const char *part;
        if (ext_name(p, &part) < 0)
            return NULL;
        if (!(name = ros_arena_printf(p->arena, "%s.%s", name, part)))
            return oom(p), NULL;
    }
    s->u.show.what = name;
    return s;
}

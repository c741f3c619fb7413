/*
 * ast.h
 *    rosql's own syntax tree: what sql/ hands to the planner.
 *
 * Standard statements come from libpg_query's protobuf parse tree
 * (sql/pg_convert.c); rosql's extensions (services, SHOW, function
 * annotations) come from the small hand-written grammar in sql/ext_parse.c.
 * Both produce these nodes, so the planner never sees libpg_query's types.
 *
 * Every node starts with its tag and carries `location`, the 0-based byte
 * offset of the construct in the statement text (-1 when unknown); errors
 * turn it into a 1-based character position.  All nodes and strings live in
 * the statement's arena and are freed with it.  Identifiers are already
 * case-folded the way PostgreSQL folds them (unquoted -> lower case).
 */
#ifndef SQL_AST_H
#define SQL_AST_H

#include <stdbool.h>
#include <stdint.h>

#include <rosql/vector.h>

/* ------------------------------------------------------------------ */
/* Lists */

/* A growable array of node pointers (in the arena). */
typedef struct sql_list {
    int n;        /* elements in use */
    int cap;      /* elements allocated */
    void **items; /* the elements */
} sql_list;

/* ------------------------------------------------------------------ */
/* Expressions */

typedef enum sql_expr_kind {
    SQL_E_CONST,     /* literal: see sql_const_kind */
    SQL_E_COLUMN,    /* [qualifier.]name */
    SQL_E_STAR,      /* [qualifier.]*  (select list, count(*) uses func.star) */
    SQL_E_OP,        /* binary or unary operator: op, left (NULL if prefix), right */
    SQL_E_AND,       /* args: 2 or more */
    SQL_E_OR,        /* args: 2 or more */
    SQL_E_NOT,       /* arg */
    SQL_E_NULLTEST,  /* arg IS [NOT] NULL */
    SQL_E_BOOLTEST,  /* arg IS [NOT] TRUE/FALSE/UNKNOWN */
    SQL_E_BETWEEN,   /* arg [NOT] BETWEEN [SYMMETRIC] lo AND hi */
    SQL_E_IN,        /* arg [NOT] IN (list) */
    SQL_E_LIKE,      /* arg [NOT] LIKE/ILIKE pattern [ESCAPE esc] */
    SQL_E_CASE,      /* CASE [arg] WHEN .. THEN .. [ELSE ..] END */
    SQL_E_COALESCE,  /* COALESCE(args) */
    SQL_E_NULLIF,    /* NULLIF(left, right) */
    SQL_E_MINMAX,    /* GREATEST/LEAST(args) */
    SQL_E_CAST,      /* CAST(arg AS type) and arg::type */
    SQL_E_FUNC,      /* name(args) incl. aggregates: distinct, star, filter */
    SQL_E_ARRAY,     /* ARRAY[args] */
    SQL_E_SUBSCRIPT, /* arg[index] (1-based, PostgreSQL style) */
} sql_expr_kind;

typedef enum sql_const_kind {
    SQL_C_NULL,
    SQL_C_BOOL,   /* b */
    SQL_C_INT,    /* i: fits in int64 */
    SQL_C_FLOAT,  /* str: the literal text, e.g. "1.5" or "1e10" (also integers too big for int64) */
    SQL_C_STRING, /* str: an untyped string literal ('...'), typed by context like PostgreSQL's unknown */
} sql_const_kind;

typedef enum sql_booltest_kind {
    SQL_BT_IS_TRUE, SQL_BT_IS_NOT_TRUE, SQL_BT_IS_FALSE,
    SQL_BT_IS_NOT_FALSE, SQL_BT_IS_UNKNOWN, SQL_BT_IS_NOT_UNKNOWN
} sql_booltest_kind;

/* A type as written: resolved to a ros_type by the parser. */
typedef struct sql_typename {
    ros_type type;     /* resolved type */
    const char *name;  /* as written, for messages */
    int location;
} sql_typename;

typedef struct sql_expr sql_expr;

typedef struct sql_when {
    sql_expr *cond;    /* WHEN cond (or the value compared with the CASE arg) */
    sql_expr *result;  /* THEN result */
} sql_when;

struct sql_expr {
    sql_expr_kind kind;
    int location;              /* byte offset in the statement, -1 unknown */
    union {
        struct {
            sql_const_kind kind;
            bool b;
            int64_t i;
            const char *str;
        } cnst;                /* SQL_E_CONST */
        struct {
            const char *qualifier; /* table name or alias, or NULL */
            const char *name;
        } column;              /* SQL_E_COLUMN */
        struct {
            const char *qualifier;
        } star;                /* SQL_E_STAR */
        struct {
            const char *op;    /* "+", "-", "*", "/", "%", "=", "<>", "<", "<=", ">", ">=", "||", "~~" ... */
            sql_expr *left;    /* NULL for a prefix operator */
            sql_expr *right;
        } op;                  /* SQL_E_OP */
        struct {
            sql_list args;     /* of sql_expr* */
        } list;                /* SQL_E_AND, SQL_E_OR, SQL_E_COALESCE, SQL_E_ARRAY */
        struct {
            sql_expr *arg;
        } not_;                /* SQL_E_NOT */
        struct {
            sql_expr *arg;
            bool is_not;       /* IS NOT NULL */
        } nulltest;            /* SQL_E_NULLTEST */
        struct {
            sql_expr *arg;
            sql_booltest_kind test;
        } booltest;            /* SQL_E_BOOLTEST */
        struct {
            sql_expr *arg, *lo, *hi;
            bool is_not;
            bool symmetric;
        } between;             /* SQL_E_BETWEEN */
        struct {
            sql_expr *arg;
            sql_list values;   /* of sql_expr* */
            bool is_not;
        } in;                  /* SQL_E_IN */
        struct {
            sql_expr *arg, *pattern;
            sql_expr *escape;  /* NULL: default backslash */
            bool is_not;
            bool ilike;
        } like;                /* SQL_E_LIKE */
        struct {
            sql_expr *arg;     /* NULL for the searched form */
            sql_list whens;    /* of sql_when* */
            sql_expr *else_;   /* NULL: ELSE NULL */
        } case_;               /* SQL_E_CASE */
        struct {
            sql_expr *left, *right;
        } nullif;              /* SQL_E_NULLIF */
        struct {
            sql_list args;
            bool greatest;     /* GREATEST, else LEAST */
        } minmax;              /* SQL_E_MINMAX */
        struct {
            sql_expr *arg;
            sql_typename type;
        } cast;                /* SQL_E_CAST */
        struct {
            const char *name;  /* lower-cased, schema dropped */
            sql_list args;     /* of sql_expr* */
            bool star;         /* count(*) */
            bool distinct;     /* agg(DISTINCT ...) */
            sql_expr *filter;  /* FILTER (WHERE ...) or NULL */
        } func;                /* SQL_E_FUNC */
        struct {
            sql_expr *arg;
            sql_expr *index;
        } subscript;           /* SQL_E_SUBSCRIPT */
    } u;
};

/* ------------------------------------------------------------------ */
/* Queries */

typedef struct sql_target {
    sql_expr *expr;        /* the expression (SQL_E_STAR for * and t.*) */
    const char *alias;     /* AS alias, or NULL */
    int location;
} sql_target;

typedef struct sql_sortby {
    sql_expr *expr;        /* may be an integer constant: ordinal */
    bool desc;
    int nulls;             /* 0 default, 1 NULLS FIRST, 2 NULLS LAST */
    int location;
} sql_sortby;

typedef struct sql_from {
    const char *table;     /* relation name */
    const char *alias;     /* or NULL */
    int location;
} sql_from;

typedef struct sql_select {
    bool distinct;         /* SELECT DISTINCT (DISTINCT ON is rejected) */
    sql_list targets;      /* of sql_target* */
    sql_list from;         /* of sql_from*; 0 or 1 entries are supported by the planner */
    sql_expr *where;       /* or NULL */
    sql_list group_by;     /* of sql_expr* */
    sql_expr *having;      /* or NULL */
    sql_list order_by;     /* of sql_sortby* */
    sql_expr *limit;       /* or NULL (LIMIT ALL is NULL) */
    sql_expr *offset;      /* or NULL */
    sql_list values;       /* VALUES (...), (...): of sql_list* rows of sql_expr*; targets empty then */
} sql_select;

/* ------------------------------------------------------------------ */
/* Statements */

typedef enum sql_stmt_kind {
    SQL_S_SELECT,
    SQL_S_INSERT,
    SQL_S_CREATE_TABLE,      /* also CREATE TABLE ... AS SELECT */
    SQL_S_DROP,              /* DROP TABLE / FUNCTION / SERVICE */
    SQL_S_CREATE_FUNCTION,
    SQL_S_ALTER_FUNCTION,    /* ALTER FUNCTION f SET (...) */
    SQL_S_CREATE_SERVICE,
    SQL_S_ALTER_SERVICE,     /* ALTER SERVICE s SET (...) */
    SQL_S_SHOW,              /* SHOW TABLES | FUNCTIONS | SERVICES | JOBS | CHECKPOINTS [FOR JOB n] | <setting> | ALL */
    SQL_S_SET,               /* SET name = value / SET name TO value / RESET name */
    SQL_S_EXPLAIN,
    SQL_S_DELETE,            /* DELETE FROM t [WHERE ...] */
    SQL_S_TRANSACTION,       /* BEGIN / COMMIT / ROLLBACK: accepted, each statement is atomic */
    SQL_S_JOB,               /* STOP JOB n | RESUME JOB n | CHECKPOINT JOB n */
} sql_stmt_kind;

typedef enum sql_object_kind {
    SQL_OBJ_TABLE,
    SQL_OBJ_FUNCTION,
    SQL_OBJ_SERVICE,
} sql_object_kind;

/* One `key = value` of a WITH (...) or SET (...) option list. */
typedef struct sql_option {
    const char *key;       /* lower-cased */
    const char *value;     /* the value's text: string contents, number, true/false, or NULL for a bare key */
    bool quoted;           /* value was a quoted string */
    int location;
} sql_option;

typedef struct sql_column_def {
    const char *name;
    sql_typename type;
    bool not_null;
    int location;
} sql_column_def;

typedef struct sql_stmt sql_stmt;

struct sql_stmt {
    sql_stmt_kind kind;
    int location;              /* offset of the statement in the text it was parsed from */
    union {
        sql_select *select;    /* SQL_S_SELECT */
        struct {
            const char *table;
            int table_location;
            sql_list columns;  /* of const char*: explicit column list, or empty */
            sql_select *source;/* VALUES or SELECT */
            bool submit;       /* SUBMIT INSERT ...: run detached (issue: jobs) */
        } insert;
        struct {
            const char *name;
            bool if_not_exists;
            sql_list columns;  /* of sql_column_def*; empty for AS SELECT */
            sql_list options;  /* of sql_option*: WITH (connector = ..., ...) */
            sql_select *as_select; /* CREATE TABLE ... AS SELECT, or NULL */
        } create_table;
        struct {
            sql_object_kind object;
            sql_list names;    /* of const char* */
            bool if_exists;
            bool cascade;      /* CASCADE, else RESTRICT */
        } drop;
        struct {
            const char *name;
            bool or_replace;
            sql_list arg_types;   /* of sql_typename* */
            sql_list arg_names;   /* of const char* (NULL entries for unnamed) */
            sql_typename ret_type;
            const char *language; /* "c" for AS 'lib', 'sym'; NULL with SERVICE */
            const char *library;  /* AS 'lib.so' */
            const char *symbol;   /* , 'symbol' */
            const char *service;  /* SERVICE name, or NULL */
            const char *method;   /* METHOD 'm', or NULL */
            sql_list options;     /* WITH (...) annotation: of sql_option* */
            int volatility;       /* 'v' (default), 's', 'i' */
            bool strict;          /* STRICT / RETURNS NULL ON NULL INPUT */
        } create_function;
        struct {
            const char *name;     /* ALTER FUNCTION name [(types)] SET (...) */
            sql_list options;
        } alter_function;
        struct {
            const char *name;
            bool if_not_exists;
            const char *handler;  /* USING 'builtin:echo' or 'path/lib.so:symbol' */
            sql_list options;
        } create_service;
        struct {
            const char *name;
            sql_list options;     /* SET (...) */
        } alter_service;
        struct {
            const char *what;     /* lower-cased: "tables", "functions", "services", "jobs",
                                     "checkpoints", "all", or a setting name */
            int64_t job_id;       /* SHOW CHECKPOINTS FOR JOB n, else -1 */
            const char *object;   /* SHOW COLUMNS FROM t / SHOW SERVICE EVENTS FOR s: the name, else NULL */
        } show;
        struct {
            const char *name;     /* lower-cased setting name */
            const char *value;    /* value text; NULL for RESET / SET name TO DEFAULT */
        } set;
        struct {
            const char *action;   /* "stop", "resume" or "checkpoint" */
            int64_t id;
        } job;
        struct {
            sql_stmt *stmt;       /* the statement explained */
            bool analyze;
            bool rewrite;         /* false for EXPLAIN (REWRITE off) */
            bool verbose;
        } explain;
        struct {
            const char *table;
            int table_location;
            sql_expr *where;      /* or NULL */
        } delete_;
        struct {
            const char *what;     /* "begin", "commit", "rollback" */
        } transaction;
    } u;
};

#endif /* SQL_AST_H */

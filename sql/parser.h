/*
 * parser.h
 *    The SQL front end: split a script into statements, parse one statement
 *    into rosql's AST (sql/ast.h).
 *
 * Standard PostgreSQL statements go through libpg_query (PostgreSQL 15
 * grammar, protobuf output read with libprotobuf-c).  Statements that
 * PostgreSQL lacks (CREATE/ALTER/DROP SERVICE, SHOW TABLES..., CREATE FUNCTION
 * ... WITH (...) / SERVICE name, ALTER FUNCTION ... SET (...), SUBMIT INSERT)
 * are recognised by their leading keywords and parsed by the extension
 * grammar in ext_parse.c.
 */
#ifndef SQL_PARSER_H
#define SQL_PARSER_H

#include <stdbool.h>

#include "ast.h"
#include "runtime/core/arena.h"
#include "runtime/core/error.h"

/* One statement of a script: its byte range in the script text. */
typedef struct sql_span {
    int offset;   /* byte offset of the statement's first character */
    int length;   /* bytes, not counting the terminating semicolon */
} sql_span;

/*
 * Splits script into statements with libpg_query's splitter (so semicolons
 * in strings, comments and dollar quotes are handled).  Statements that are
 * empty or only comments are dropped.  On success returns 0, with *spans a
 * malloc'd array of *n spans (free() it).  On failure (the script cannot be
 * tokenised, e.g. an unterminated quote) returns -1 with err set (position
 * relative to the script) and *spans NULL.
 */
int sql_split(const char *script, sql_span **spans, int *n, ros_error *err);

/*
 * True when text holds at least one complete statement and nothing after
 * the last semicolon but whitespace and comments: what the interactive shell
 * uses to decide whether to read another line.  Semicolons inside quotes,
 * dollar quotes and comments do not count.
 */
bool sql_is_complete(const char *text);

/*
 * Parses exactly one statement (no trailing statements; a trailing semicolon
 * is allowed).  Returns the statement allocated in arena, or NULL with err
 * set: syntax errors carry the position of the offending token (1-based
 * characters into stmt) and the message `syntax error at or near "TOKEN"`
 * (or `syntax error at end of input`), as PostgreSQL prints them.
 */
sql_stmt *sql_parse(const char *stmt, ros_arena *arena, ros_error *err);

/* Helpers shared by the two grammars and the planner. */
void sql_list_push(ros_arena *arena, sql_list *list, void *item);
sql_expr *sql_expr_new(ros_arena *arena, sql_expr_kind kind, int location);

/* Appends the keywords of the SQL dialect (for tab completion): returns a
 * NULL-terminated static array. */
const char *const *sql_keywords(void);

#endif /* SQL_PARSER_H */

/*
 * sql_int.h
 *    Internal interface between the parts of the SQL front end: the token
 *    array (lex.c), the libpg_query converter (pg_convert.c), the extension
 *    grammar (ext_parse.c) and the shared error and option helpers (parse.c).
 *
 * Nothing here is seen outside sql/; the planner includes only parser.h.
 */
#ifndef SQL_INT_H
#define SQL_INT_H

#include <stdbool.h>

#include "parser.h"

/* ------------------------------------------------------------------ */
/* Tokens (lex.c) */

/* Token classes the grammars care about; libpg_query's own token number is
 * kept in `pgtok` for the rest (operators, punctuation). */
typedef enum sql_tok_class {
    SQL_TOK_WORD,    /* identifier or keyword, unquoted */
    SQL_TOK_QIDENT,  /* "quoted identifier" */
    SQL_TOK_STRING,  /* 'string', E'string', $$string$$ */
    SQL_TOK_INT,     /* 123 */
    SQL_TOK_FLOAT,   /* 1.5, 1e10 */
    SQL_TOK_PUNCT,   /* one character: ( ) , ; = [ ] . + - ... */
    SQL_TOK_OTHER,   /* operators and anything else */
} sql_tok_class;

typedef struct sql_token {
    sql_tok_class cls;
    int start;       /* byte offset of the first character */
    int end;         /* byte offset just past the token */
    bool reserved;   /* a reserved keyword of PostgreSQL's grammar */
} sql_token;

/* The comment-free tokens of one text. */
typedef struct sql_tokens {
    const char *text;
    sql_token *toks; /* in the arena */
    int n;
} sql_tokens;

/*
 * Tokenises text with libpg_query's scanner, dropping comments.  Returns 0,
 * or -1 with err set (ROS_ERR_SYNTAX, position of the bad token) when text
 * cannot be tokenised (an unterminated quote or comment).
 */
int sql_lex(const char *text, ros_arena *arena, sql_tokens *out, ros_error *err);

/* True when token i exists and is the word w (case-insensitive, unquoted). */
bool sql_tok_is_word(const sql_tokens *t, int i, const char *w);
/* True when token i exists and is the single character c. */
bool sql_tok_is_punct(const sql_tokens *t, int i, char c);
/* Identifier text of a WORD or QIDENT token: folded to lower case, or with
 * the quotes removed.  NULL on out of memory. */
char *sql_tok_ident(const sql_tokens *t, int i, ros_arena *arena);
/* Contents of a STRING token with quotes and escapes resolved. */
char *sql_tok_string(const sql_tokens *t, int i, ros_arena *arena);
/* The token exactly as written. */
char *sql_tok_text(const sql_tokens *t, int i, ros_arena *arena);
/* Index of the first token starting at or after byte offset off, or n. */
int sql_tok_at(const sql_tokens *t, int off);

/* ------------------------------------------------------------------ */
/* Errors and shared helpers (parse.c) */

/* Converts a byte offset in text to a 1-based character position (0 when
 * offset is negative). */
int sql_char_position(const char *text, int offset);

/* Sets err with code and message, positioned at byte offset `offset` of
 * text (no position when offset < 0).  Returns -1. */
int sql_error_at(ros_error *err, const char *text, int offset, const char *code,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sets err to PostgreSQL's `syntax error at or near "TOKEN"` at token i, or
 * `syntax error at end of input` when i is past the last token.  Returns -1. */
int sql_syntax_error(const sql_tokens *t, int i, ros_error *err);

/* Appends opt to list unless its key is already there: then sets err
 * (`option "x" specified more than once`, at opt's location) and returns -1. */
int sql_option_add(ros_arena *arena, sql_list *list, sql_option *opt,
                   const char *text, ros_error *err);

/* Resolves a type name (already folded, without "pg_catalog.") into tn;
 * tn->name becomes the canonical name.  Returns -1 with err set
 * (`type "x" does not exist`, ROS_ERR_UNDEFINED_OBJECT) when unknown. */
int sql_resolve_type(const char *name, bool is_array, int location, sql_typename *tn,
                     const char *text, ros_error *err);

/* Lower-cases s in place (ASCII only, as PostgreSQL folds identifiers). */
char *sql_lower(char *s);

/* ------------------------------------------------------------------ */
/* The two grammars */

/* Parses text (one standard statement) with libpg_query and converts it.
 * Returns NULL with err set on failure. */
sql_stmt *sql_pg_parse(const char *text, const sql_tokens *toks, ros_arena *arena,
                       ros_error *err);

/* True when the extension grammar should parse this statement. */
bool sql_ext_wants(const sql_tokens *toks);

/* Parses an extension statement.  Returns NULL with err set on failure. */
sql_stmt *sql_ext_parse(const sql_tokens *toks, ros_arena *arena, ros_error *err);

#endif /* SQL_INT_H */

/*
 * shell.h
 *    State and parts of the rosql shell.
 *
 * main.c reads the options and picks a mode; run.c executes SQL and script
 * streams and owns signal handling; meta.c holds the backslash commands;
 * repl.c is the interactive loop (libedit); print.c the output formats.
 * Everything reaches the database through the public API (rosql.h) only.
 */
#ifndef SHELL_SHELL_H
#define SHELL_SHELL_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include <rosql/rosql.h>

#include "print.h"
#include "runtime/core/strbuf.h"

typedef struct shell {
    ros_session *session;
    const char *dbpath;    /* DBFILE as given, NULL when transient */
    char name[128];        /* prompt name: DBFILE's base name or "rosql" */
    printer pr;            /* output format and the result being printed */
    bool interactive;      /* reading a terminal: errors do not stop us */
    bool timing;           /* \timing: print each statement's time */
    bool quit;             /* \q seen */
    int depth;             /* \i nesting, to stop include loops */
} shell;

/* Set by SIGINT; cleared by whoever acts on it. */
extern volatile sig_atomic_t sh_sigint;

/* ---- run.c ---- */

/* Installs the SIGINT handler.  While a statement runs, Ctrl-C cancels it
 * (ros_session_cancel); otherwise a script is ended and the interactive
 * prompt is given the interrupt (at_prompt: system calls are interrupted
 * rather than restarted, so the line editor sees it). */
void sh_signals_install(shell *sh);
void sh_signals_at_prompt(bool at_prompt);

/* Runs one statement and prints its result; on failure prints the error
 * (positioned in stmt) to stderr.  Returns 0 or -1. */
int sh_execute(shell *sh, const char *stmt);

/* Splits script into statements and runs them in order.  Stops at the first
 * failing statement unless interactive.  Returns 0, or -1 if any failed. */
int sh_run_sql(shell *sh, const char *script);

/* Reads f line by line as psql does: backslash commands at the start of a
 * line, SQL otherwise, run each time the text read so far is complete.
 * Returns 0, or -1 at the first error (non-interactive). */
int sh_run_stream(shell *sh, FILE *f);

/* Runs a file with sh_run_stream ("-" is standard input).  -1 (with a
 * message) when it cannot be opened. */
int sh_run_file(shell *sh, const char *path);

/* Prints "rosql: " + message to stderr. */
void sh_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- meta.c ---- */

/* Runs the backslash command at the start of line.  query is the query
 * buffer (\g runs it, \r empties it).  Returns 0, or -1 after printing an
 * error. */
int meta_run(shell *sh, const char *line, ros_strbuf *query);

/* Names of the backslash commands (NULL-terminated), for completion. */
const char *const *meta_names(void);

/* ---- repl.c ---- */

/* The interactive loop on the terminal; returns the exit status. */
int repl_run(shell *sh);

#endif /* SHELL_SHELL_H */

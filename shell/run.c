/*
 * run.c
 *    Executing SQL for the shell: one statement, a script, a stream of
 *    lines with backslash commands; and what Ctrl-C does meanwhile.
 *
 * Every path ends in sh_execute, which runs one statement through
 * ros_session_execute with the printer as sink and reports a failure with
 * ros_error_format against that statement's own text, so the LINE/caret
 * lines point into what the user wrote.
 */
#include "shell.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/core/error.h"
#include "sql/parser.h"

volatile sig_atomic_t sh_sigint;

/* What the handler needs: a pointer and two flags, nothing else. */
static ros_session *volatile run_session;
static volatile sig_atomic_t run_executing;
static volatile sig_atomic_t run_interactive;

static void run_on_sigint(int sig);
static void run_print_timing(shell *sh, double ms);
static bool run_blank(const char *s);

/* ---------------------------------------------------------------- */
/* Signals */

static void run_on_sigint(int sig)
{
    sh_sigint = 1;
    if (run_executing) {
        ros_session_cancel(run_session);
    } else if (!run_interactive) {
        /* a script between statements: die of SIGINT as a shell would */
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

void sh_signals_install(shell *sh)
{
    run_session = sh->session;
    run_interactive = sh->interactive;
    sh_signals_at_prompt(false);
}

void sh_signals_at_prompt(bool at_prompt)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = run_on_sigint;
    sigemptyset(&sa.sa_mask);
    /* Restart interrupted system calls while the engine works, so a read in
     * a connector does not fail with EINTR instead of noticing the cancel
     * flag; at the prompt let read() fail so the line editor hears ^C. */
    sa.sa_flags = at_prompt ? 0 : SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
}

/* ---------------------------------------------------------------- */
/* Statements */

void sh_error(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("rosql: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* psql's \timing line: milliseconds, and past a second also [[d] h:]m:s. */
static void run_print_timing(shell *sh, double ms)
{
    FILE *out = sh->pr.out;
    if (ms < 1000) {
        fprintf(out, "Time: %.3f ms\n", ms);
        return;
    }
    double secs = ms / 1000.0;
    long mins = (long)(secs / 60);
    secs -= (double)mins * 60;
    if (mins < 60) {
        fprintf(out, "Time: %.3f ms (%02ld:%06.3f)\n", ms, mins, secs);
        return;
    }
    long hours = mins / 60;
    mins %= 60;
    if (hours < 24) {
        fprintf(out, "Time: %.3f ms (%02ld:%02ld:%06.3f)\n", ms, hours, mins, secs);
        return;
    }
    fprintf(out, "Time: %.3f ms (%ld d %02ld:%02ld:%06.3f)\n", ms, hours / 24, hours % 24, mins, secs);
}

int sh_execute(shell *sh, const char *stmt)
{
    ros_error err;
    ros_error_clear(&err);
    ros_result_sink sink = pr_sink(&sh->pr);
    struct timespec t0, t1;

    sh_sigint = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_executing = 1;
    int rc = ros_session_execute(sh->session, stmt, &sink, &err);
    run_executing = 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    bool oom = sh->pr.oom;
    pr_reset(&sh->pr);
    sh->pr.title = NULL;
    fflush(sh->pr.out);

    if (rc < 0 || oom) {
        if (!err.set)
            ros_error_set(&err, oom ? ROS_ERR_OUT_OF_MEMORY : ROS_ERR_INTERNAL,
                          oom ? "out of memory" : "statement failed without an error report");
        ros_strbuf sb = ROS_STRBUF_INIT;
        ros_error_format(&err, stmt, &sb);
        fputs(ros_strbuf_cstr(&sb), stderr);
        ros_strbuf_free(&sb);
    }
    if (sh->timing) {
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        run_print_timing(sh, ms);
        fflush(sh->pr.out);
    }
    return rc < 0 || oom ? -1 : 0;
}

int sh_run_sql(shell *sh, const char *script)
{
    sql_span *spans = NULL;
    int n = 0;
    ros_error err;
    ros_error_clear(&err);
    if (sql_split(script, &spans, &n, &err) < 0) {
        ros_strbuf sb = ROS_STRBUF_INIT;
        ros_error_format(&err, script, &sb);
        fflush(stdout);
        fputs(ros_strbuf_cstr(&sb), stderr);
        ros_strbuf_free(&sb);
        return -1;
    }
    int result = 0;
    for (int i = 0; i < n && !sh->quit; i++) {
        /* keep the semicolon, as psql sends it: the LINE shown under an
         * error then reads exactly as typed */
        size_t len = (size_t)spans[i].length;
        if (script[spans[i].offset + spans[i].length] == ';')
            len++;
        char *stmt = strndup(script + spans[i].offset, len);
        if (!stmt) {
            sh_error("out of memory");
            result = -1;
            break;
        }
        int rc = sh_execute(sh, stmt);
        free(stmt);
        if (rc < 0) {
            result = -1;
            if (!sh->interactive)
                break;
        }
    }
    free(spans);
    return result;
}

/* ---------------------------------------------------------------- */
/* Streams of lines */

static bool run_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

int sh_run_stream(shell *sh, FILE *f)
{
    ros_strbuf query = ROS_STRBUF_INIT;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int result = 0;

    while (!sh->quit && (n = getline(&line, &cap, f)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        const char *p = line + strspn(line, " \t");
        if (*p == '\\') {
            if (meta_run(sh, p, &query) < 0) {
                result = -1;
                if (!sh->interactive)
                    break;
            }
            continue;
        }
        ros_strbuf_append(&query, line);
        ros_strbuf_appendc(&query, '\n');
        if (query.oom) {
            sh_error("out of memory");
            result = -1;
            break;
        }
        if (sql_is_complete(ros_strbuf_cstr(&query))) {
            int rc = sh_run_sql(sh, ros_strbuf_cstr(&query));
            ros_strbuf_reset(&query);
            if (rc < 0) {
                result = -1;
                if (!sh->interactive)
                    break;
            }
        }
    }
    /* an unterminated last statement still runs, as psql runs it at EOF */
    if (result == 0 && !sh->quit && !run_blank(ros_strbuf_cstr(&query)))
        result = sh_run_sql(sh, ros_strbuf_cstr(&query));
    if (ferror(f) && result == 0) {
        sh_error("could not read input: %s", strerror(errno));
        result = -1;
    }
    free(line);
    ros_strbuf_free(&query);
    return result;
}

int sh_run_file(shell *sh, const char *path)
{
    if (strcmp(path, "-") == 0)
        return sh_run_stream(sh, stdin);
    if (sh->depth >= 16) {
        sh_error("%s: files included too deeply", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        sh_error("%s: %s", path, strerror(errno));
        return -1;
    }
    sh->depth++;
    int rc = sh_run_stream(sh, f);
    sh->depth--;
    fclose(f);
    return rc;
}

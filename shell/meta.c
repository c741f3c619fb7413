/*
 * meta.c
 *    The shell's backslash commands (\d, \x, \timing, \i, ...).
 *
 * Listings are SQL statements run through the session like any other
 * (SHOW TABLES, SHOW COLUMNS FROM t, ...), so the shell never looks at the
 * catalog itself and prints them with the current output format.
 */
#include "shell.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_MAX_ARGS 8

typedef struct meta_cmd {
    const char *name;
    int (*run)(shell *sh, int argc, char **argv, ros_strbuf *query);
    const char *args;   /* for \? */
    const char *help;   /* for \? */
} meta_cmd;

static int meta_help(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_quit(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_describe(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_tables(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_functions(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_services(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_timing(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_expanded(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_pset(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_include(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_echo(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_go(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_reset(shell *sh, int argc, char **argv, ros_strbuf *query);
static int meta_conninfo(shell *sh, int argc, char **argv, ros_strbuf *query);

static int meta_parse_bool(const char *cmd, const char *arg, bool *value);
static int meta_listing(shell *sh, const char *sql, const char *title);
static void meta_info(shell *sh, const char *msg);

static const meta_cmd meta_cmds[] = {
    {"\\?", meta_help, "", "show this help"},
    {"\\q", meta_quit, "", "quit rosql"},
    {"\\d", meta_describe, "[NAME]", "list tables, or describe table NAME"},
    {"\\dt", meta_tables, "", "list tables (SHOW TABLES)"},
    {"\\df", meta_functions, "", "list functions (SHOW FUNCTIONS)"},
    {"\\ds", meta_services, "", "list services (SHOW SERVICES)"},
    {"\\x", meta_expanded, "[on|off|auto]", "toggle expanded output"},
    {"\\timing", meta_timing, "[on|off]", "toggle timing of statements"},
    {"\\pset", meta_pset, "format table|csv|json", "set the output format"},
    {"\\i", meta_include, "FILE", "execute statements from FILE"},
    {"\\include", meta_include, NULL, NULL},
    {"\\echo", meta_echo, "[TEXT]", "write TEXT to standard output"},
    {"\\g", meta_go, "", "execute the query buffer"},
    {"\\r", meta_reset, "", "reset (clear) the query buffer"},
    {"\\conninfo", meta_conninfo, "", "show the database file in use"},
    {NULL, NULL, NULL, NULL},
};

/* ---------------------------------------------------------------- */
/* Dispatch */

/*
 * Splits the command line into words: whitespace separates, 'single
 * quotes' group (with '' for a quote).  Words are written into buf.
 */
static int meta_split(const char *line, char *buf, char **argv)
{
    int argc = 0;
    const char *p = line;
    char *o = buf;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (!*p || argc == META_MAX_ARGS)
            break;
        argv[argc++] = o;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            if (*p == '\'') {
                p++;
                while (*p && !(*p == '\'' && p[1] != '\'')) {
                    if (*p == '\'')
                        p++; /* '' */
                    *o++ = *p++;
                }
                if (*p)
                    p++;
            } else {
                *o++ = *p++;
            }
        }
        *o++ = '\0';
    }
    return argc;
}

int meta_run(shell *sh, const char *line, ros_strbuf *query)
{
    char *buf = malloc(strlen(line) + 1);
    char *argv[META_MAX_ARGS];
    if (!buf) {
        sh_error("out of memory");
        return -1;
    }
    int argc = meta_split(line, buf, argv);
    int rc = -1;
    const meta_cmd *cmd = meta_cmds;
    for (; cmd->name; cmd++)
        if (argc > 0 && strcmp(cmd->name, argv[0]) == 0)
            break;
    if (cmd->name) {
        rc = cmd->run(sh, argc, argv, query);
    } else {
        fflush(stdout);
        fprintf(stderr, "invalid command %s\nTry \\? for help.\n", argc > 0 ? argv[0] : "\\");
    }
    free(buf);
    return rc;
}

const char *const *meta_names(void)
{
    static const char *names[sizeof meta_cmds / sizeof meta_cmds[0]];
    if (!names[0])
        for (size_t i = 0; meta_cmds[i].name; i++)
            names[i] = meta_cmds[i].name;
    return names;
}

/* ---------------------------------------------------------------- */
/* Helpers */

/* Informational messages ("Timing is on.") are quiet under -q, as psql's. */
static void meta_info(shell *sh, const char *msg)
{
    if (!sh->pr.quiet)
        fprintf(sh->pr.out, "%s\n", msg);
    fflush(sh->pr.out);
}

/* on/off/true/false/1/0; a missing argument toggles (value unchanged). */
static int meta_parse_bool(const char *cmd, const char *arg, bool *value)
{
    if (!arg) {
        *value = !*value;
        return 0;
    }
    if (!strcmp(arg, "on") || !strcmp(arg, "true") || !strcmp(arg, "1")) {
        *value = true;
        return 0;
    }
    if (!strcmp(arg, "off") || !strcmp(arg, "false") || !strcmp(arg, "0")) {
        *value = false;
        return 0;
    }
    fflush(stdout);
    fprintf(stderr, "unrecognized value \"%s\" for \"%s\": Boolean expected\n", arg, cmd);
    return -1;
}

static int meta_listing(shell *sh, const char *sql, const char *title)
{
    sh->pr.title = title;
    int rc = sh_execute(sh, sql);
    sh->pr.title = NULL;
    return rc;
}

/* ---------------------------------------------------------------- */
/* Commands */

static int meta_help(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    FILE *out = sh->pr.out;
    fputs("General\n", out);
    for (const meta_cmd *c = meta_cmds; c->name; c++) {
        if (!c->help)
            continue;
        char left[64];
        snprintf(left, sizeof left, "%s %s", c->name, c->args);
        fprintf(out, "  %-24s %s\n", left, c->help);
    }
    fputs("\nStatements end with a semicolon and may span lines.  Ctrl-C cancels a\n"
          "running statement or clears the input; Ctrl-D at an empty prompt quits.\n",
          out);
    fflush(out);
    return 0;
}

static int meta_quit(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    sh->quit = true;
    return 0;
}

static int meta_describe(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    if (argc < 2)
        return meta_listing(sh, "SHOW TABLES", "List of tables");
    ros_strbuf sql = ROS_STRBUF_INIT;
    ros_strbuf title = ROS_STRBUF_INIT;
    ros_strbuf_appendf(&sql, "SHOW COLUMNS FROM %s", argv[1]);
    ros_strbuf_appendf(&title, "Table \"%s\"", argv[1]);
    int rc = -1;
    if (sql.oom || title.oom)
        sh_error("out of memory");
    else {
        sh->pr.no_footer = true; /* psql's \d NAME shows no row count */
        rc = meta_listing(sh, ros_strbuf_cstr(&sql), ros_strbuf_cstr(&title));
        sh->pr.no_footer = false;
    }
    ros_strbuf_free(&sql);
    ros_strbuf_free(&title);
    return rc;
}

static int meta_tables(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    if (argc >= 2)
        return meta_describe(sh, argc, argv, query);
    return meta_listing(sh, "SHOW TABLES", "List of tables");
}

static int meta_functions(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    return meta_listing(sh, "SHOW FUNCTIONS", "List of functions");
}

static int meta_services(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    return meta_listing(sh, "SHOW SERVICES", "List of services");
}

static int meta_timing(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    if (meta_parse_bool("\\timing", argc > 1 ? argv[1] : NULL, &sh->timing) < 0)
        return -1;
    meta_info(sh, sh->timing ? "Timing is on." : "Timing is off.");
    return 0;
}

static int meta_expanded(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    if (argc > 1 && strcmp(argv[1], "auto") == 0) {
        sh->pr.expanded = PR_X_AUTO;
    } else {
        bool on = sh->pr.expanded == PR_X_ON;
        if (meta_parse_bool("\\x", argc > 1 ? argv[1] : NULL, &on) < 0)
            return -1;
        sh->pr.expanded = on ? PR_X_ON : PR_X_OFF;
    }
    meta_info(sh, sh->pr.expanded == PR_X_AUTO ? "Expanded display is used automatically."
                  : sh->pr.expanded == PR_X_ON ? "Expanded display is on."
                                               : "Expanded display is off.");
    return 0;
}

static int meta_pset(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    if (argc < 2 || strcmp(argv[1], "format") != 0) {
        fflush(stdout);
        fprintf(stderr, "\\pset: only \"format\" is supported\n");
        return -1;
    }
    if (argc < 3) {
        static const char *const names[] = {"table", "csv", "json"};
        fprintf(sh->pr.out, "Output format is %s.\n", names[sh->pr.format]);
        return 0;
    }
    if (!pr_format_parse(argv[2], &sh->pr.format)) {
        fflush(stdout);
        fprintf(stderr, "\\pset: allowed formats are table, csv, json\n");
        return -1;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "Output format is %s.", argv[2]);
    meta_info(sh, msg);
    return 0;
}

static int meta_include(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    if (argc < 2) {
        fflush(stdout);
        fprintf(stderr, "\\i: missing required argument\n");
        return -1;
    }
    return sh_run_file(sh, argv[1]);
}

static int meta_echo(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    for (int i = 1; i < argc; i++)
        fprintf(sh->pr.out, "%s%s", i > 1 ? " " : "", argv[i]);
    fputc('\n', sh->pr.out);
    fflush(sh->pr.out);
    return 0;
}

static int meta_go(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    if (query->len == 0)
        return 0;
    char *text = ros_strbuf_steal(query);
    int rc = text ? sh_run_sql(sh, text) : -1;
    free(text);
    return rc;
}

static int meta_reset(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    ros_strbuf_reset(query);
    meta_info(sh, "Query buffer reset (cleared).");
    return 0;
}

static int meta_conninfo(shell *sh, int argc, char **argv, ros_strbuf *query)
{
    const char *path = ros_session_path(sh->session);
    if (sh->dbpath)
        fprintf(sh->pr.out, "You are connected to database \"%s\" in file \"%s\".\n", sh->name, path ? path : sh->dbpath);
    else
        fprintf(sh->pr.out, "You are connected to a transient database (file \"%s\").\n", path ? path : "");
    fflush(sh->pr.out);
    return 0;
}

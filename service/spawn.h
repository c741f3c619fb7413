/*
 * spawn.h
 *    Process helpers of the coordinator (spawn.c).
 */
#ifndef SVC_SPAWN_H
#define SVC_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Path of the rosd binary: $ROSQL_ROSD, next to the running program, the
 * build tree's service/rosd, then PATH.  Returns 0 or -1 when not found. */
int svc_find_rosd(char *out, size_t n);

/* mkdir -p with mode 0700.  Returns 0 or -1 (errno set). */
int svc_mkdir_p(const char *dir);

/*
 * Starts argv (argv[0] a path) in a new session with stdin from /dev/null and
 * stdout/stderr appended to log_path, other descriptors closed.  Returns the
 * child's pid, or -1.  detach: the program runs as a grandchild re-parented to
 * init; the returned pid is the short-lived intermediate child, which the
 * caller reaps with waitpid.
 */
pid_t svc_spawn(char *const argv[], const char *log_path, bool detach);

/*
 * True when pid is a live rosd process (a pid in the catalog may have been
 * reused by something else): its program name contains "rosd", its first
 * argument is command (NULL: any) and, when arg is not NULL, a later
 * argument equals arg (e.g. the job id of `rosd job DB ID`).
 */
bool svc_rosd_process(pid_t pid, const char *command, const char *arg);

#endif /* SVC_SPAWN_H */

/*
 * coordinator.h
 *    The per-database supervisor of service instances (`rosd coordinator DB`).
 *
 * It reconciles the catalog's services with running `rosd worker`
 * processes: starts desired instances, pings them, writes their live state
 * (pid, endpoint, state, counters) to the catalog, restarts a crashed one
 * with backoff, marks a crash-looping service failed, drains and stops
 * instances that are no longer wanted, and pushes membership changes to
 * clients (see "Discovery and control" in service/README.md).
 */
#ifndef SVC_COORDINATOR_H
#define SVC_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/core/error.h"

/* `rosd coordinator DBFILE` main. */
int svc_coord_main(int argc, char **argv);

/* The run directory of database db_path ("DB.run", or a short directory
 * under /tmp when that path is too long for ipc:// sockets), without a
 * trailing slash.  Returns 0 or -1 when it does not fit in n bytes. */
int svc_run_dir(const char *db_path, char *out, size_t n);

/* Control and publish URLs of the coordinator of db_path. */
int svc_coord_ctl_url(const char *db_path, char *out, size_t n);
int svc_coord_pub_url(const char *db_path, char *out, size_t n);

/*
 * Sends cmd ("reconcile", ...) to the coordinator of db_path; the reply goes
 * to reply (may be NULL).  With start, a coordinator is started (`rosd
 * coordinator`, detached) when none answers.  Returns 0; 1 when none runs
 * and start is false; -1 with err set when it cannot be started or does not
 * answer within timeout_ms.
 */
int svc_coord_request(const char *db_path, const char *cmd, char *reply, size_t reply_len,
                      int timeout_ms, bool start, ros_error *err);

/*
 * Opens a client of service cfg->service of database db_path, subscribed to
 * the membership pushes of its coordinator (started when none runs).  With
 * must_exist, a service the coordinator does not know is an error
 * (ROS_ERR_UNDEFINED_OBJECT `service "s" does not exist`) instead of a wait
 * for instances that will never come.  NULL with err set on failure.
 */
struct svc_client;
struct svc_client_config;
struct svc_client *svc_coord_client(const char *db_path, const struct svc_client_config *cfg, bool must_exist,
                                    ros_error *err);

#endif /* SVC_COORDINATOR_H */

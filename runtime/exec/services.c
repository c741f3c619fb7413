/*
 * services.c
 *    What a session tells the coordinator (service/coordinator.h): that the
 *    services in the catalog changed, and, for DROP SERVICE, waiting until
 *    the dropped services' instances have stopped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/core/clock.h"
#include "runtime/exec/session_int.h"
#include "service/coordinator.h"

#define COORD_TIMEOUT_MS 5000
#define DROP_WAIT_MS 35000

/* True when some service should have instances running. */
static bool services_wanted(ros_session *s)
{
    ros_error err = {0};
    cat_service **sv;
    int n;
    if (cat_service_list(s->db, &sv, &n, &err) < 0)
        return true;
    bool wanted = false;
    for (int i = 0; i < n; i++)
        wanted |= sv[i]->desired_instances > 0 && strcmp(sv[i]->state, "failed") != 0;
    CAT_FREE_LIST(sv, n, cat_service_free);
    return wanted;
}

int rt_services_changed(ros_session *s, const sql_list *dropped, ros_error *err)
{
    const char *db = cat_path(s->db);
    /* no coordinator is started just to be told there is nothing to run */
    int rc = svc_coord_request(db, "reconcile", NULL, 0, COORD_TIMEOUT_MS, services_wanted(s), err);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return 0; /* none runs, so no instance does either */
    for (int i = 0; dropped && i < dropped->n; i++) {
        const char *name = dropped->items[i];
        char cmd[300], reply[64] = "";
        snprintf(cmd, sizeof cmd, "instances %s", name);
        int64_t deadline = ros_mono_ms() + DROP_WAIT_MS;
        for (;;) {
            rc = svc_coord_request(db, cmd, reply, sizeof reply, COORD_TIMEOUT_MS, false, err);
            if (rc < 0)
                return -1;
            if (rc == 1 || strcmp(reply, "0") == 0)
                break;
            if (ros_mono_ms() > deadline)
                return ros_error_set(err, ROS_ERR_CANCELED,
                                     "instances of service \"%s\" did not stop within %d s (still %s running)", name,
                                     DROP_WAIT_MS / 1000, reply);
            if (s->cancel)
                return ros_error_set(err, ROS_ERR_CANCELED, "canceling statement due to user request");
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    return 0;
}

void rt_services_resume(ros_session *s)
{
    ros_error err = {0};
    if (services_wanted(s))
        svc_coord_request(cat_path(s->db), "ping", NULL, 0, COORD_TIMEOUT_MS, true, &err);
}

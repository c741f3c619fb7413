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
#include "service/handler.h"

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
    /* a job to run, restart or stop (e.g. after the coordinator was killed) */
    cat_job **jl;
    if (!wanted && cat_job_list(s->db, &jl, &n, &err) == 0) {
        for (int i = 0; i < n; i++)
            wanted |= strcmp(jl[i]->state, "running") == 0 || strcmp(jl[i]->state, "stopping") == 0;
        CAT_FREE_LIST(jl, n, cat_job_free);
    }
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

int rt_service_create(ros_session *s, cat_service *sv, ros_error *err)
{
    const char *dev = cat_options_get(&sv->options, "device");
    if (dev && strcmp(dev, "gpu") == 0 && svc_gpu_count() <= 0) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "device \"gpu\" was requested but no GPU is available");
        ros_error_hint(err, "Use device = 'auto' to take a GPU when one is present and the CPU otherwise.");
        return -1;
    }
    const char *inst = cat_options_get(&sv->options, "instances");
    sv->desired_instances = inst ? atoi(inst) : 1;
    sv->state = (char *)(sv->desired_instances > 0 ? "starting" : "stopped");
    if (cat_begin(s->db, err) < 0)
        return -1;
    if (cat_service_create(s->db, sv, err) < 0 || cat_commit(s->db, err) < 0) {
        cat_rollback(s->db);
        return -1;
    }
    /* the coordinator starts the instances; the statement does not wait for
     * them to load (a model may take minutes): SHOW SERVICES shows progress */
    if (rt_services_changed(s, NULL, err) < 0) {
        ros_error dropped = {0};
        cat_service_drop(s->db, sv->name, true, &dropped);
        return -1;
    }
    return 0;
}

/* The options of function f's annotation that configure its service. */
static const char *const service_keys[] = {"instances", "device", "max_batch", "max_delay_ms",
                                           "min_instances", "max_instances", NULL};

static int service_options(const cat_function *f, cat_options *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; service_keys[i]; i++) {
        const char *v = cat_options_get(&f->options, service_keys[i]);
        if (v && cat_options_set(out, service_keys[i], v) < 0)
            return -1;
    }
    return 0;
}

/* The service of decoupled function name, or NULL (err set on failure or
 * when a service of that name belongs to something else). */
static cat_service *owned_service(ros_session *s, const char *name, ros_error *err)
{
    cat_service *sv = cat_service_get(s->db, name, err);
    if (!sv || (sv->owner_function && strcmp(sv->owner_function, name) == 0))
        return sv;
    ros_error_set(err, ROS_ERR_DUPLICATE_OBJECT,
                  "service \"%s\" already exists and is not the service of decoupled function %s", name, name);
    ros_error_hint(err, "A decoupled function runs in a service named after it: drop or rename the other service, "
                        "or bind the function to it with SERVICE %s instead.", name);
    cat_service_free(sv);
    return NULL;
}

int rt_service_drop_owned(ros_session *s, const char *function, ros_error *err)
{
    cat_service *sv = cat_service_get(s->db, function, err);
    if (!sv)
        return err->set ? -1 : 0;
    bool owned = sv->owner_function && strcmp(sv->owner_function, function) == 0;
    cat_service_free(sv);
    if (!owned)
        return 0;
    if (cat_begin(s->db, err) < 0)
        return -1;
    if (cat_service_drop(s->db, function, true, err) < 0 || cat_commit(s->db, err) < 0) {
        cat_rollback(s->db);
        return -1;
    }
    rt_udf_cache_clear(&s->udfs);
    void *name = (void *)function;
    sql_list dropped = {1, 1, &name};
    return rt_services_changed(s, &dropped, err);
}

int rt_service_apply(ros_session *s, cat_service *sv, ros_error *err)
{
    const char *inst = cat_options_get(&sv->options, "instances");
    if (inst)
        sv->desired_instances = atoi(inst);
    /* any change is also a new try for a service that failed */
    char *state = strdup(sv->desired_instances > 0 ? "starting" : "stopped");
    if (!state)
        return ros_error_oom(err);
    free(sv->state);
    sv->state = state;
    free(sv->last_error);
    sv->last_error = NULL;
    if (cat_begin(s->db, err) < 0)
        return -1;
    if (cat_service_update(s->db, sv, err) < 0 || cat_commit(s->db, err) < 0) {
        cat_rollback(s->db);
        return -1;
    }
    return rt_services_changed(s, NULL, err);
}

int rt_service_update_owned(ros_session *s, const cat_function *f, ros_error *err)
{
    cat_service *sv = cat_service_get(s->db, f->name, err);
    if (!sv)
        return err->set ? -1 : 0;
    int rc = -1;
    if (!sv->owner_function || strcmp(sv->owner_function, f->name) != 0) {
        rc = 0;
        goto done;
    }
    cat_options o;
    if (service_options(f, &o) < 0) {
        ros_error_oom(err);
        goto done;
    }
    for (int i = 0; i < o.n; i++)
        if (cat_options_set(&sv->options, o.items[i].key, o.items[i].value) < 0) {
            cat_options_free(&o);
            ros_error_oom(err);
            goto done;
        }
    cat_options_free(&o);
    rc = rt_service_apply(s, sv, err);
done:
    cat_service_free(sv);
    return rc;
}

/* Creates the service of decoupled function name unless it exists. */
static int ensure_decoupled(ros_session *s, const char *name, ros_error *err)
{
    cat_service *sv = owned_service(s, name, err);
    if (sv) {
        cat_service_free(sv);
        return 0;
    }
    if (err->set)
        return -1;
    cat_function *f = cat_function_get(s->db, name, err);
    if (!f) {
        if (!err->set)
            ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "function %s does not exist", name);
        return -1;
    }
    int rc = -1;
    cat_service nsv;
    memset(&nsv, 0, sizeof nsv);
    size_t n = strlen(f->library) + strlen(f->symbol) + 2;
    char *handler = malloc(n);
    if (!handler || service_options(f, &nsv.options) < 0) {
        ros_error_oom(err);
        goto done;
    }
    snprintf(handler, n, "%s:%s", f->library, f->symbol);
    nsv.name = f->name;
    nsv.handler = handler;
    nsv.owner_function = f->name;
    rc = rt_service_create(s, &nsv, err);
    if (rc < 0 && !err->detail[0])
        ros_error_detail(err, "While creating the service of decoupled function %s.", name);
done:
    free(handler);
    cat_options_free(&nsv.options);
    cat_function_free(f);
    return rc;
}

int rt_services_prepare(ros_session *s, const plan_node *plan, ros_error *err)
{
    for (const plan_node *p = plan; p; p = p->child)
        if (p->kind == PN_PROXY && p->u.proxy.decoupled && ensure_decoupled(s, p->u.proxy.service, err) < 0)
            return -1;
    return 0;
}

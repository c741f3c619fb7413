/*
 * udf.c
 *    Loading, checking, caching and calling user C functions.
 */
#include "runtime/exec/udf.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include <rosql/client.h>

#include "runtime/core/types.h"
#include "service/client.h"
#include "service/coordinator.h"

static ros_client *host_get_client(ros_func_ctx *ctx, const char *service);

static const ros_host_api host_api = {ROS_UDF_ABI_VERSION, host_get_client};

/*
 * getRosClient: the client of a service for a C function, one per service
 * and session, created on first use (it subscribes to the coordinator's
 * membership pushes, starting the coordinator when none runs).
 */
static ros_client *host_get_client(ros_func_ctx *ctx, const char *service)
{
    plan_udf *u = ctx->host_private;
    rt_udf_cache *c = u ? u->cache : NULL;
    if (!c || !c->db_path) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "services cannot be called from here");
        return NULL;
    }
    for (rt_host_client *h = c->clients; h; h = h->next)
        if (strcmp(h->service, service) == 0)
            return h->client;
    ros_error err = {0};
    svc_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.service = service;
    cfg.max_retries = 3;
    cfg.op = 0xffff0000u; /* job 0: the client draws a random job id */
    svc_client *sc = svc_coord_client(c->db_path, &cfg, true, &err);
    if (!sc) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "%.500s", err.message);
        return NULL;
    }
    rt_host_client *h = sc ? calloc(1, sizeof *h) : NULL;
    ros_client *rc = h ? svc_ros_client_wrap(sc) : NULL;
    if (!rc || !(h->service = strdup(service))) {
        if (rc)
            svc_ros_client_free(rc);
        else if (sc)
            svc_client_close(sc);
        free(h);
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "could not connect to service \"%.100s\": %.300s", service,
                 err.set ? err.message : "out of memory");
        return NULL;
    }
    h->client = rc;
    h->next = c->clients;
    c->clients = h;
    return rc;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void rt_udf_unload(plan_udf *u)
{
    if (!u)
        return;
    if (u->inited && u->desc && u->desc->fini)
        u->desc->fini(&u->fctx);
    if (u->handle)
        dlclose(u->handle);
    free(u->name);
    free(u->library);
    free(u->symbol);
    free(u->options_text);
    free(u);
}

static void sig_text(ros_strbuf *sb, int nargs, const ros_type *types, ros_type ret)
{
    ros_strbuf_appendc(sb, '(');
    for (int i = 0; i < nargs; i++)
        ros_strbuf_appendf(sb, "%s%s", i ? ", " : "", ros_type_name(types[i]));
    ros_strbuf_appendf(sb, ") returns %s", ros_type_name(ret));
}

plan_udf *rt_udf_load(const char *name, const char *library, const char *symbol, int nargs,
                      const ros_type *arg_types, ros_type ret_type, const char *options, ros_error *err)
{
    plan_udf *u = calloc(1, sizeof *u);
    if (!u) {
        ros_error_oom(err);
        return NULL;
    }
    /* a relative path names a file relative to the current directory, not the
     * loader's search path, so say so explicitly */
    char path[PATH_MAX];
    if (!strchr(library, '/'))
        snprintf(path, sizeof path, "./%s", library);
    else
        snprintf(path, sizeof path, "%s", library);
    u->name = xstrdup(name);
    u->library = xstrdup(library);
    u->symbol = xstrdup(symbol);
    u->options_text = xstrdup(options ? options : "");
    if (!u->name || !u->library || !u->symbol || !u->options_text) {
        ros_error_oom(err);
        goto fail;
    }
    u->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!u->handle) {
        const char *why = dlerror();
        ros_error_set(err, ROS_ERR_UNDEFINED_FILE, "could not load library \"%s\": %s", library,
                      why ? why : "unknown error");
        goto fail;
    }
    dlerror();
    u->desc = dlsym(u->handle, symbol);
    if (!u->desc) {
        ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "could not find function \"%s\" in file \"%s\"", symbol, library);
        ros_error_hint(err, "The symbol must be an exported `const ros_udf` (see include/rosql/udf.h).");
        goto fail;
    }
    const ros_udf *d = u->desc;
    if (d->abi_version != ROS_UDF_ABI_VERSION) {
        ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "function \"%s\" in file \"%s\" does not match its declaration",
                      symbol, library);
        ros_error_detail(err, "The library was built for interface version %u; this rosql uses version %d.",
                         d->abi_version, ROS_UDF_ABI_VERSION);
        goto fail;
    }
    bool match = d->fn && d->nargs == nargs && d->ret_type == ret_type && d->nargs >= 0 && d->nargs <= ROS_UDF_MAX_ARGS;
    for (int i = 0; match && i < nargs; i++)
        match = d->arg_types[i] == arg_types[i];
    if (!match) {
        ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "function \"%s\" in file \"%s\" does not match its declaration",
                      symbol, library);
        ros_strbuf a = ROS_STRBUF_INIT, b = ROS_STRBUF_INIT;
        if (d->nargs >= 0 && d->nargs <= ROS_UDF_MAX_ARGS)
            sig_text(&a, d->nargs, d->arg_types, d->ret_type);
        sig_text(&b, nargs, arg_types, ret_type);
        ros_error_detail(err, "The library defines %s%s; the declaration says %s.", name,
                         d->fn ? ros_strbuf_cstr(&a) : " with no function pointer", ros_strbuf_cstr(&b));
        ros_strbuf_free(&a);
        ros_strbuf_free(&b);
        goto fail;
    }
    u->fctx.options = u->options_text;
    u->fctx.device = -1;
    u->fctx.host = &host_api;
    u->fctx.host_private = u;
    u->inited = d->init == NULL;
    return u;
fail:
    rt_udf_unload(u);
    return NULL;
}

plan_udf *rt_udf_cache_get(rt_udf_cache *c, const cat_function *f, ros_error *err)
{
    for (plan_udf *u = c->head; u; u = u->next)
        if (strcmp(u->name, f->name) == 0 && strcmp(u->library, f->library) == 0 && strcmp(u->symbol, f->symbol) == 0)
            return u;
    char *opts = cat_options_to_text(&f->options);
    plan_udf *u = rt_udf_load(f->name, f->library, f->symbol, f->nargs, f->arg_types, f->ret_type, opts, err);
    free(opts);
    if (!u)
        return NULL;
    u->cache = c;
    u->next = c->head;
    c->head = u;
    return u;
}

void rt_udf_cache_clear(rt_udf_cache *c)
{
    plan_udf *u = c->head;
    while (u) {
        plan_udf *next = u->next;
        rt_udf_unload(u);
        u = next;
    }
    c->head = NULL;
    while (c->clients) {
        rt_host_client *n = c->clients->next;
        svc_ros_client_free(c->clients->client);
        free(c->clients->service);
        free(c->clients);
        c->clients = n;
    }
}

int rt_udf_call(plan_udf *u, const ros_vector *const *args, uint32_t n, ros_vector *out, ros_error *err)
{
    if (!u->inited) {
        u->fctx.errmsg[0] = '\0';
        if (u->desc->init(&u->fctx) != 0)
            return ros_error_set(err, ROS_ERR_EXTERNAL, "could not initialise function %s: %s", u->name,
                                 u->fctx.errmsg[0] ? u->fctx.errmsg : "init failed");
        u->inited = true;
    }
    u->fctx.errmsg[0] = '\0';
    if (u->desc->fn(&u->fctx, args, n, out) != 0) {
        u->fctx.errmsg[sizeof u->fctx.errmsg - 1] = '\0';
        return ros_error_set(err, ROS_ERR_EXTERNAL, "function %s failed: %s", u->name,
                             u->fctx.errmsg[0] ? u->fctx.errmsg : "no message");
    }
    if (out->len != n || out->type != u->desc->ret_type)
        return ros_error_set(err, ROS_ERR_EXTERNAL, "function %s returned %u rows for %u input rows", u->name,
                             out->len, n);
    return 0;
}

/*
 * shm.c
 *    Shared-memory segments of service clients and the worker's cache of
 *    their mappings (see shm.h).
 *
 * A segment starts with a 64-byte header: "ROSM", version 1 (uint32), the
 * segment's random id (uint64) and its size (uint64), the rest zero.
 */
#include "service/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/core/clock.h"

#define SEG_MAGIC "ROSM"
#define SEG_VERSION 1u

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* ---------------------------------------------------------------- */
/* Client side */

int svc_shm_seg_create(svc_shm_seg *s, size_t size, ros_error *err)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size < SVC_SHM_SEG_HEADER || size > SIZE_MAX - page)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "shared memory segment of %zu bytes", size);
    size = (size + page - 1) / page * page;
    uint64_t id = 0;
    while (id == 0)
        if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
            return ros_error_set(err, SVC_ERR_SHM_UNAVAILABLE, "getrandom: %s", strerror(errno));
    int fd = memfd_create("rosql-svc", MFD_CLOEXEC);
    if (fd < 0)
        return ros_error_set(err, SVC_ERR_SHM_UNAVAILABLE, "memfd_create: %s", strerror(errno));
    if (ftruncate(fd, (off_t)size) != 0) {
        int e = errno;
        close(fd);
        return ros_error_set(err, SVC_ERR_SHM_UNAVAILABLE, "ftruncate of a %zu-byte segment: %s", size,
                             strerror(e));
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        int e = errno;
        close(fd);
        return ros_error_set(err, SVC_ERR_SHM_UNAVAILABLE, "mmap of a %zu-byte segment: %s", size,
                             strerror(e));
    }
    uint8_t *h = base;
    memcpy(h, SEG_MAGIC, 4);
    put_u32(h + 4, SEG_VERSION);
    put_u64(h + 8, id);
    put_u64(h + 16, size);
    s->fd = fd;
    s->id = id;
    s->base = base;
    s->size = size;
    return 0;
}

void svc_shm_seg_destroy(svc_shm_seg *s)
{
    if (s->base)
        munmap(s->base, s->size);
    if (s->fd >= 0)
        close(s->fd);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* ---------------------------------------------------------------- */
/* Worker side */

/* Mappings unused this long are unmapped when the cache is next touched:
 * a caller that went away does not keep its memory alive through us. */
#define IDLE_UNMAP_MS 5000

struct svc_shm_map {
    pid_t pid;
    uint32_t fd;
    uint64_t seg_id;
    uint8_t *base;
    size_t size;
    unsigned users;
    int64_t used_ms;
    svc_shm_map *next; /* most recently used first */
};

struct svc_shm_maps {
    pthread_mutex_t mu;
    unsigned cap, n;
    svc_shm_map *head;
};

svc_shm_maps *svc_shm_maps_new(unsigned cap)
{
    svc_shm_maps *ms = calloc(1, sizeof *ms);
    if (!ms)
        return NULL;
    pthread_mutex_init(&ms->mu, NULL);
    ms->cap = cap ? cap : 1;
    return ms;
}

static void unmap_one(svc_shm_map *m)
{
    munmap(m->base, m->size);
    free(m);
}

void svc_shm_maps_free(svc_shm_maps *ms)
{
    if (!ms)
        return;
    for (svc_shm_map *m = ms->head, *next; m; m = next) {
        next = m->next;
        unmap_one(m);
    }
    pthread_mutex_destroy(&ms->mu);
    free(ms);
}

/* Unmaps unused mappings that are idle, replaced (same pid and fd, another
 * id: the caller closed that segment) or, while the cache is full, the
 * least recently used.  Caller holds ms->mu. */
static void sweep_locked(svc_shm_maps *ms, pid_t pid, uint32_t fd, int64_t now)
{
    svc_shm_map **pp = &ms->head, **lru = NULL;
    while (*pp) {
        svc_shm_map *m = *pp;
        bool stale = m->users == 0 && (now - m->used_ms > IDLE_UNMAP_MS || (m->pid == pid && m->fd == fd));
        if (stale) {
            *pp = m->next;
            ms->n--;
            unmap_one(m);
            continue;
        }
        if (m->users == 0)
            lru = pp;
        pp = &m->next;
    }
    if (ms->n >= ms->cap && lru) {
        svc_shm_map *m = *lru;
        *lru = m->next;
        ms->n--;
        unmap_one(m);
    }
}

/* Maps the segment of ref in pid; NULL with err set when it is not one. */
static svc_shm_map *map_new(pid_t pid, const svc_shm_ref *ref, ros_error *err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%u", (int)pid, ref->fd);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        ros_error_set(err, SVC_ERR_SHM_UNAVAILABLE, "cannot open the caller's shared memory %s: %s", path,
                      strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != ref->seg_size ||
        ref->seg_size < SVC_SHM_SEG_HEADER || ref->seg_size > SIZE_MAX) {
        close(fd);
        ros_error_set(err, SVC_ERR_SHM_UNAVAILABLE,
                      "the caller's descriptor %u is not a shared memory segment of %llu bytes", ref->fd,
                      (unsigned long long)ref->seg_size);
        return NULL;
    }
    void *base = mmap(NULL, (size_t)ref->seg_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED) {
        ros_error_set(err, SVC_ERR_SHM_UNAVAILABLE, "mmap of the caller's shared memory: %s", strerror(e));
        return NULL;
    }
    const uint8_t *h = base;
    if (memcmp(h, SEG_MAGIC, 4) != 0 || get_u32(h + 4) != SEG_VERSION || get_u64(h + 8) != ref->seg_id ||
        get_u64(h + 16) != ref->seg_size) {
        munmap(base, (size_t)ref->seg_size);
        ros_error_set(err, SVC_ERR_SHM_UNAVAILABLE,
                      "the caller's descriptor %u does not hold the shared memory segment named", ref->fd);
        return NULL;
    }
    svc_shm_map *m = calloc(1, sizeof *m);
    if (!m) {
        munmap(base, (size_t)ref->seg_size);
        ros_error_oom(err);
        return NULL;
    }
    m->pid = pid;
    m->fd = ref->fd;
    m->seg_id = ref->seg_id;
    m->base = base;
    m->size = (size_t)ref->seg_size;
    return m;
}

svc_shm_map *svc_shm_attach(svc_shm_maps *ms, pid_t pid, const svc_shm_ref *ref, ros_error *err)
{
    if (pid <= 0) {
        ros_error_set(err, SVC_ERR_SHM_UNAVAILABLE, "the caller's process is not known (not an ipc connection)");
        return NULL;
    }
    int64_t now = ros_mono_ms();
    pthread_mutex_lock(&ms->mu);
    for (svc_shm_map **pp = &ms->head; *pp; pp = &(*pp)->next) {
        svc_shm_map *m = *pp;
        if (m->pid == pid && m->fd == ref->fd && m->seg_id == ref->seg_id && m->size == ref->seg_size) {
            *pp = m->next; /* to the front */
            m->next = ms->head;
            ms->head = m;
            m->users++;
            m->used_ms = now;
            pthread_mutex_unlock(&ms->mu);
            return m;
        }
    }
    sweep_locked(ms, pid, ref->fd, now);
    pthread_mutex_unlock(&ms->mu);
    /* mapped unlocked: other requests go on meanwhile */
    svc_shm_map *m = map_new(pid, ref, err);
    if (!m)
        return NULL;
    m->users = 1;
    m->used_ms = now;
    pthread_mutex_lock(&ms->mu);
    m->next = ms->head;
    ms->head = m;
    ms->n++;
    pthread_mutex_unlock(&ms->mu);
    return m;
}

uint8_t *svc_shm_base(const svc_shm_map *m)
{
    return m->base;
}

void svc_shm_retain(svc_shm_maps *ms, svc_shm_map *m)
{
    pthread_mutex_lock(&ms->mu);
    m->users++;
    pthread_mutex_unlock(&ms->mu);
}

void svc_shm_release(svc_shm_maps *ms, svc_shm_map *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&ms->mu);
    m->users--;
    m->used_ms = ros_mono_ms();
    pthread_mutex_unlock(&ms->mu);
}

void svc_shm_sweep(svc_shm_maps *ms)
{
    int64_t now = ros_mono_ms();
    pthread_mutex_lock(&ms->mu);
    for (svc_shm_map **pp = &ms->head; *pp;) {
        svc_shm_map *m = *pp;
        if (m->users == 0 &&
            (now - m->used_ms > IDLE_UNMAP_MS || (kill(m->pid, 0) < 0 && errno == ESRCH))) {
            *pp = m->next;
            ms->n--;
            unmap_one(m);
            continue;
        }
        pp = &m->next;
    }
    pthread_mutex_unlock(&ms->mu);
}

unsigned svc_shm_mapped(svc_shm_maps *ms)
{
    pthread_mutex_lock(&ms->mu);
    unsigned n = ms->n;
    pthread_mutex_unlock(&ms->mu);
    return n;
}

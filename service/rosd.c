/*
 * rosd.c
 *    The rosd binary: `rosd worker ...` runs one service instance
 *    (service/worker.h), `rosd coordinator DB` supervises the services of a
 *    database (service/coordinator.h), `rosd job DB ID` runs the data plane
 *    of one streaming job (runtime/exec/job.h).
 */
#include <stdio.h>
#include <string.h>

#include "runtime/exec/job.h"
#include "service/coordinator.h"
#include "service/worker.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rosd worker --handler SPEC --listen URL [options]   (rosd worker --help)\n"
               "       rosd coordinator DBFILE\n"
               "       rosd job DBFILE JOB_ID\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "worker") == 0)
        return svc_worker_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "job") == 0)
        return rt_job_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "coordinator") == 0)
        return svc_coord_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "rosd: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}

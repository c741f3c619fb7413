/*
 * job.h
 *    Streaming jobs: the job process (job.c) and what the shell does with
 *    jobs (jobctl.c).
 */
#ifndef RT_JOB_H
#define RT_JOB_H

/* `rosd job DBFILE ID` main: runs job ID's data plane with checkpoints
 * until its input ends (state finished), it is stopped (SIGTERM: a final
 * checkpoint), or it fails (state failed with the error).  Exit status 0
 * when it ended as it should, 1 on a failure of the statement, 3 when a
 * checkpoint could not be written (the coordinator restarts it). */
int rt_job_main(int argc, char **argv);

#endif /* RT_JOB_H */

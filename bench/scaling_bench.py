#!/usr/bin/env python3
"""Elastic scaling benchmark (issue: non-disruptive elastic scaling), one run.

A streaming job (unbounded datagen -> builtin:delay service -> sqlite sink,
1-second checkpoints) runs while its service is resized with ALTER SERVICE
through COUNTS (default 1,2,4,8,4,2,1), PHASE seconds per count.  The
service stands in for a model: DELAY ms per batch of BATCH rows, INIT ms of
model load per instance.  Measured, each against its baseline:

1. Throughput per phase against the ideal: rows/s in the phase (from one
   second after the instances are ready to the next ALTER) / (instances x
   rows/s of the first, one-instance phase).  Target >= 0.9.
2. Output gaps: the longest gap between two output batches during each
   scaling step (ALTER to one second after the new count is ready) against
   the steady state's longest gap in the phase before.  Target < 2x.  The
   job's output cadence comes from SET job_output_trace.
3. ALTER SERVICE to the first batch a new instance computes, minus its init
   and warm-up time (the worker log says both): what scaling out costs
   beyond the model load itself.

  bench/scaling_bench.py [--counts 1,2,4,8,4,2,1] [--phase S] [--build DIR] [--fixed-window]

Prints Markdown tables (record them in docs/benchmarks.md with the command).
"""
import argparse
import csv
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

DELAY_MS = 20
BATCH = 16
INIT_MS = 2000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1,2,4,8,4,2,1")
    ap.add_argument("--phase", type=float, default=5.0)
    ap.add_argument("--fixed-window", action="store_true",
                    help="baseline: the proxy's in-flight window fixed at its plan-time size for the first "
                         "count (max_inflight), as before it followed the service's size")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    build = os.path.abspath(args.build)
    rosql = os.path.join(build, "shell", "rosql")
    tmp = tempfile.mkdtemp(prefix="rosql-scalebench-", dir="/tmp")
    db = os.path.join(tmp, "b.db")
    run_dir = db + ".run"

    def sql(stmt, timeout=600):
        p = subprocess.run([rosql, db, "-q", "--csv", "-c", stmt], capture_output=True, text=True, timeout=timeout,
                           cwd=tmp)
        if p.returncode != 0:
            sys.exit("failed: %s\n%s" % (stmt, p.stderr))
        return list(csv.DictReader(io.StringIO(p.stdout)))

    def ready_count():
        return len([r for r in sql("SHOW SERVICES") if r["service"] == "dl" and r["state"] == "ready"
                    and r["instance"].isdigit()])

    def wait(fn, timeout, what):
        t = time.time() + timeout
        while time.time() < t:
            v = fn()
            if v:
                return v
            time.sleep(0.05)
        sys.exit("timed out waiting for " + what)

    def trace():
        out = []
        with open(os.path.join(tmp, "trace.txt")) as f:
            for line in f:
                p = line.split()
                if len(p) == 2:
                    out.append((int(p[0]) / 1000.0, int(p[1])))
        return out

    def worker_log(idx):
        path = os.path.join(run_dir, "dl-%d.log" % idx)
        with open(path) as f:
            text = f.read()
        init = re.findall(r"after (\d+) ms of init and warm-up, at unix ms (\d+)", text)
        first = re.findall(r"first batch computed at unix ms (\d+)", text)
        return init, first

    try:
        sql("CREATE TABLE g (x bigint) WITH (connector = 'datagen', rows_per_second = '1000000', "
            "'fields.x.start' = '1')")
        sql("CREATE TABLE out (x bigint, y bigint)")
        sql("CREATE SERVICE dl USING 'builtin:delay' WITH (delay_ms = %d, max_batch = %d, max_delay_ms = 1, "
            "init_ms = %d, instances = %d)" % (DELAY_MS, BATCH, INIT_MS, counts[0]))
        fixed = ", max_inflight = %d" % (4 * BATCH * counts[0]) if args.fixed_window else ""
        sql("CREATE FUNCTION slow(bigint) RETURNS bigint IMMUTABLE SERVICE dl WITH (max_batch = %d%s)" % (BATCH, fixed))
        wait(lambda: ready_count() == counts[0], 60, "the first instances")
        jid = sql("SET checkpoint_interval = '1s'; SET job_output_trace = 'trace.txt'; "
                  "SUBMIT INSERT INTO out SELECT x, slow(x) FROM g")[0]["job"]
        wait(lambda: os.path.exists(os.path.join(tmp, "trace.txt")) and len(trace()) > 50, 60, "output")
        phases = []   # (instances, start, end)
        steps = []    # (from, to, alter unix s, ready unix s)
        start = time.time()
        for k in range(1, len(counts) + 1):
            time.sleep(args.phase)
            phases.append((counts[k - 1], start, time.time()))
            if k == len(counts):
                break
            n = counts[k]
            t_alter = time.time()
            sql("ALTER SERVICE dl SET (instances = %d)" % n)
            wait(lambda: ready_count() == n, 120, "%d ready instances" % n)
            t_ready = time.time()
            steps.append((counts[k - 1], n, t_alter, t_ready))
            start = t_ready + 1.0
            time.sleep(1.0)
        sql("STOP JOB %s" % jid)
        job = wait(lambda: [r for r in sql("SHOW JOBS") if r["id"] == jid and r["state"] == "stopped"], 60,
                   "the job to stop")[0]
        tr = trace()

        def rate(t0, t1):
            return sum(n for t, n in tr if t0 <= t < t1) / (t1 - t0)

        def gaps(t0, t1):
            ts = [t for t, _ in tr if t0 <= t <= t1]
            return [b - a for a, b in zip(ts, ts[1:])]

        single = rate(phases[0][1], phases[0][2])
        print("Job %s: %s rows, %s restarts; service builtin:delay %d ms per batch of %d rows, init %d ms; "
              "capacity %.0f rows/s per instance\n" % (jid, job["rows_written"], job["restarts"], DELAY_MS, BATCH,
                                                        INIT_MS, 1000.0 / DELAY_MS * BATCH))
        print("| phase | instances | rows/s | ideal (instances x phase 1) | ratio (target >= 0.9) |")
        print("|---|---|---|---|---|")
        for k, (n, t0, t1) in enumerate(phases):
            r = rate(t0, t1)
            print("| %d | %d | %.0f | %.0f | **%.2f** |" % (k + 1, n, r, n * single, r / (n * single)))
        print()
        print("| step | longest gap during the step (ms) | steady longest gap before (ms) | steady median gap (ms) "
              "| ratio (target < 2) |")
        print("|---|---|---|---|---|")
        for (a, b, t_alter, t_ready), (n, p0, p1) in zip(steps, phases):
            during = max(gaps(t_alter, t_ready + 1.0))
            steady = gaps(p0 + 0.5, p1)
            print("| %d -> %d | %.1f | %.1f | %.1f | **%.2f** |" % (a, b, during * 1000, max(steady) * 1000,
                                                                  statistics.median(steady) * 1000,
                                                                  during / max(steady)))
        print()
        print("| step | new instance | ALTER -> ready (ms) | init + warm-up (ms) | ready -> first batch (ms) "
              "| ALTER -> first batch - init (ms) |")
        print("|---|---|---|---|---|---|")
        started = set(range(counts[0]))
        for a, b, t_alter, _ in steps:
            for idx in range(a, b):
                if idx in started:
                    continue
                started.add(idx)
                init, first = worker_log(idx)
                if not init or not first:
                    print("| %d -> %d | %d | (no log line) | | | |" % (a, b, idx))
                    continue
                init_ms, ready_ms = int(init[0][0]), int(init[0][1])
                first_ms = int(first[0])
                alter_ms = t_alter * 1000
                print("| %d -> %d | %d | %.0f | %d | %d | **%.0f** |" % (a, b, idx, ready_ms - alter_ms, init_ms,
                                                                       first_ms - ready_ms,
                                                                       first_ms - alter_ms - init_ms))
    finally:
        subprocess.run([rosql, db, "-q", "-c", "DROP FUNCTION slow"], capture_output=True, timeout=60)
        subprocess.run([rosql, db, "-q", "-c", "DROP SERVICE dl"], capture_output=True, timeout=60)
        time.sleep(1.0)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

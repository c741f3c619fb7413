#!/usr/bin/env python3
"""Streaming jobs benchmark (issue: jobs, checkpoints, exactly-once), all parts
in one run, each measured side by side with its baseline.

1. Throughput of a job with 1-second checkpoints against the same job with no
   checkpoint but its last (checkpoint_interval = 1h): a decoupled add_one
   over ROWS datagen rows into a sqlite sink, runs interleaved, median of
   REPEAT.  Target: ratio >= 0.95.
2. Checkpoint duration against the requests in flight: a job calling a
   builtin:delay service (slow answers keep requests outstanding) with
   max_inflight raised step by step; CHECKPOINT JOB's duration and in-flight
   count from SHOW CHECKPOINTS.
3. Recovery: kill -9 of the job process in a steady stream (rate-limited
   datagen, delay service), then the time from the kill to the restarted
   process's first output row (the job log says when), the requests it
   re-sent, how many were recomputed (SHOW JOBS) and the rows the service
   computed in all against the source rows (work really done twice).

  bench/jobs_bench.py [--rows N] [--repeat R] [--build DIR] [--parts 1,2,3]

Prints Markdown tables (record them in docs/benchmarks.md with the command).
"""
import argparse
import csv
import io
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parts", default="1,2,3")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    args = ap.parse_args()
    parts = {int(p) for p in args.parts.split(",")}
    build = os.path.abspath(args.build)
    rosql = os.path.join(build, "shell", "rosql")
    lib = os.path.join(build, "examples", "librosql_example_udf.so")
    tmp = tempfile.mkdtemp(prefix="rosql-jobbench-", dir="/tmp")
    db = os.path.join(tmp, "b.db")

    def sql(stmt, timeout=1800):
        p = subprocess.run([rosql, db, "-q", "--csv", "-c", stmt], capture_output=True, text=True, timeout=timeout,
                           cwd=tmp)
        if p.returncode != 0:
            sys.exit("failed: %s\n%s" % (stmt, p.stderr))
        return list(csv.DictReader(io.StringIO(p.stdout)))

    def job(jid):
        return [r for r in sql("SHOW JOBS") if r["id"] == str(jid)][0]

    def wait(fn, timeout=600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.05)
        sys.exit("timed out")

    try:
        if 1 in parts:
            sql("CREATE TABLE g (x bigint) WITH (connector = 'datagen', rows = '%d')" % args.rows)
            sql("CREATE FUNCTION inc(bigint) RETURNS bigint LANGUAGE c AS '%s', 'add_one_udf' STRICT IMMUTABLE "
                "WITH (decoupled = true, max_batch = 1024)" % lib)
            times = {"1s": [], "none": []}
            n = 0
            for r in range(args.repeat):
                for mode, interval in (("1s", "1s"), ("none", "1h")):
                    n += 1
                    sql("CREATE TABLE o%d (x bigint, y bigint)" % n)
                    t0 = time.time()
                    sql("SET checkpoint_interval = '%s'; INSERT INTO o%d SELECT x, inc(x) FROM g" % (interval, n))
                    times[mode].append(time.time() - t0)
                    cps = len(sql("SHOW CHECKPOINTS FOR JOB %d" % n))
                    if mode == "1s" and r == 0:
                        print("  1s run: %d checkpoints kept (5 newest), %s" % (cps, job(n)["last_checkpoint"]))
            a, b = statistics.median(times["1s"]), statistics.median(times["none"])
            print("\n### Part 1: checkpoint overhead (%d rows, decoupled add_one, sqlite sink)\n" % args.rows)
            print("| checkpoints | median s | rows/s |")
            print("|---|---|---|")
            print("| every 1 s | %.2f | %.0f |" % (a, args.rows / a))
            print("| none until the end | %.2f | %.0f |" % (b, args.rows / b))
            print("\nthroughput ratio (1 s checkpoints / none): **%.3f** (target >= 0.95)" % (b / a))

        if 2 in parts:
            sql("CREATE TABLE s (x bigint) WITH (connector = 'datagen', 'fields.x.start' = '1')")  # unbounded
            sql("CREATE SERVICE d USING 'builtin:delay' WITH (instances = 2, delay_ms = 200, max_batch = 64, "
                "max_queue = 100000)")
            print("\n### Part 2: checkpoint duration against requests in flight (delay service, 200 ms/batch)\n")
            print("| max_inflight rows | in flight at checkpoint | duration ms (median of 5) | state bytes |")
            print("|---|---|---|---|")
            for k, inflight in enumerate((64, 640, 6400, 64000)):
                fn = "slow%d" % k
                sql("CREATE FUNCTION %s(bigint) RETURNS bigint SERVICE d WITH (max_batch = 64, max_inflight = %d, "
                    "timeout_ms = 600000) " % (fn, inflight))
                sql("CREATE TABLE c%d (x bigint, y bigint)" % k)
                jid = int(sql("SET checkpoint_interval = '1h'; SUBMIT INSERT INTO c%d SELECT x, %s(x) FROM s"
                              % (k, fn))[0]["job"])
                wait(lambda: int(job(jid)["rows_read"]) >= inflight)
                time.sleep(0.5)
                durs, fl, by = [], [], []
                for _ in range(5):
                    sql("CHECKPOINT JOB %d" % jid)
                    c = sql("SHOW CHECKPOINTS FOR JOB %d" % jid)[0]
                    durs.append(float(c["duration_ms"]))
                    fl.append(int(c["inflight"]))
                    by.append(int(c["bytes"]))
                sql("STOP JOB %d" % jid)
                print("| %d | %d | %.2f | %d |" % (inflight, statistics.median(fl), statistics.median(durs),
                                                   statistics.median(by)))

        if 3 in parts:
            rows = 20000
            sql("CREATE TABLE r (x bigint) WITH (connector = 'datagen', rows = '%d', rows_per_second = '4000', "
                "'fields.x.start' = '1')" % rows)
            sql("CREATE SERVICE e USING 'builtin:delay' WITH (instances = 2, delay_ms = 20, max_batch = 64)")
            sql("CREATE FUNCTION slowr(bigint) RETURNS bigint SERVICE e WITH (max_batch = 64) ")
            print("\n### Part 3: recovery after kill -9 of the job (4000 rows/s, delay 20 ms/batch, "
                  "2 instances, checkpoints every 1 s)\n")
            print("| trial | kill -> first output row (ms) | requests re-sent | recomputed | service rows / source rows |")
            print("|---|---|---|---|---|")
            for t in range(args.repeat):
                sql("CREATE TABLE k%d (x bigint, y bigint)" % t)
                before = sum(int(i["rows"] or 0) for i in sql("SHOW SERVICES") if i["service"] == "e"
                             and i["instance"].isdigit())
                jid = int(sql("SET checkpoint_interval = '1s'; SUBMIT INSERT INTO k%d SELECT x, slowr(x) FROM r"
                              % t)[0]["job"])
                wait(lambda: int(job(jid)["last_checkpoint"]) > 0 and int(job(jid)["rows_read"]) > 6000)
                pid = int(job(jid)["pid"])
                time.sleep(0.3)
                kill_ms = time.time() * 1000
                os.kill(pid, signal.SIGKILL)
                wait(lambda: job(jid)["state"] in ("finished", "failed"))
                j = job(jid)
                log = open(os.path.join(tmp, "b.db.run", "job-%d.log" % jid)).read()
                m = re.search(r"first output row after the restore at unix ms (\d+)", log)
                resent = re.search(r"(\d+) requests re-sent", log)
                time.sleep(0.6)  # instance counters are written twice a second
                after = sum(int(i["rows"] or 0) for i in sql("SHOW SERVICES") if i["service"] == "e"
                            and i["instance"].isdigit())
                print("| %d | %s | %s | %s | %.3f |" % (t + 1, "%.0f" % (int(m.group(1)) - kill_ms) if m else "?",
                                                         resent.group(1) if resent else "?", j["recomputed"],
                                                         (after - before) / rows))
    finally:
        subprocess.run([rosql, db, "-q", "-c", "SELECT 1"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        time.sleep(1)


if __name__ == "__main__":
    main()

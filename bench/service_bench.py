#!/usr/bin/env python3
"""Service benchmark (issue: RpcOperator services), all parts in one run.

1. rows/s of `SELECT count(*), sum(f(x)) FROM t` over ROWS datagen rows with
   f = echo:
     (a) an in-process C function (examples: echo_udf),
     (b) a function bound to a service with one builtin:echo instance,
     (c) a naive per-row blocking request over nng to that instance (what a
         user without rosql writes; measured on NAIVE_ROWS rows),
     (d) raw nng REQ/REP throughput in one process for the same frame sizes
         and the same number of requests in flight.
   The aggregate keeps the shell's printing out of the measurement; every
   row's f(x) is computed and summed.  (a) and (b) run alternately, R times
   each, and (a), (b), (d) are medians.
2. builtin:delay at 20 ms per batch of 64 rows with 1, 2, 4, 8 instances:
   throughput against linear scaling.
3. builtin:embed rows/s on GPU against CPU, when a GPU is present.

  bench/service_bench.py [--rows N] [--repeat R] [--parts 1,2,3] [--build DIR]
Prints a Markdown table of figures and ratios (record them in
docs/benchmarks.md with the command line).
"""
import argparse
import csv
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--naive-rows", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=65536, help="service max_batch for (b)")
    ap.add_argument("--delay-rows", type=int, default=64 * 8 * 80)
    ap.add_argument("--parts", default="1,2,3",
                    help="comma-separated parts to run (1 echo/raw nng, 2 delay scaling, 3 embed)")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    args = ap.parse_args()
    parts = {int(x) for x in args.parts.split(",") if x.strip()}
    build = os.path.abspath(args.build)
    rosql = os.path.join(build, "shell", "rosql")
    nng_bench = os.path.join(build, "bench", "nng_bench")
    lib = os.path.join(build, "examples", "librosql_example_udf.so")
    tmp = tempfile.mkdtemp(prefix="rosql-svcbench-", dir="/tmp")
    db = os.path.join(tmp, "b.db")

    def sql(*stmts, timeout=600):
        cmd = [rosql, db, "-q", "--csv"]
        for s in stmts:
            cmd += ["-c", s]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            sys.exit("failed: %s\n%s" % (stmts, p.stderr))
        return p.stdout

    def timed(stmt):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = sql(stmt)
            times.append(time.perf_counter() - t0)
        return statistics.median(times), out

    def timed_pair(stmt_a, stmt_b):
        """Medians of both, run alternately: a shared, noisy machine then
        slows both sides of a ratio alike."""
        ta, tb = [], []
        for _ in range(args.repeat):
            for stmt, times in ((stmt_a, ta), (stmt_b, tb)):
                t0 = time.perf_counter()
                out = sql(stmt)
                times.append(time.perf_counter() - t0)
                if stmt is stmt_a:
                    out_a = out
                else:
                    out_b = out
        return statistics.median(ta), out_a, statistics.median(tb), out_b

    def instances(service):
        rows = list(csv.DictReader(io.StringIO(sql("SHOW SERVICES"))))
        return [r for r in rows if r["service"] == service and r["instance"].isdigit()]

    def wait_ready(service, n):
        deadline = time.time() + 60
        while time.time() < deadline:
            ins = instances(service)
            if len(ins) == n and all(i["state"] == "ready" for i in ins):
                return ins
            time.sleep(0.1)
        sys.exit("service %s did not get %d ready instances" % (service, n))

    try:
        print("## Services benchmark\n")
        print("command: `bench/service_bench.py --rows %d --repeat %d --batch %d --parts %s`\n" %
              (args.rows, args.repeat, args.batch, args.parts))
        if 1 in parts:
            sql("CREATE TABLE t (id bigint, x bigint) WITH (connector = 'datagen', rows = %d)" % args.rows,
                "CREATE FUNCTION echo_c(bigint) RETURNS bigint LANGUAGE c AS '%s', 'echo_udf'" % lib,
                "CREATE SERVICE es USING 'builtin:echo' WITH (instances = 1, max_batch = %d)" % args.batch,
                "CREATE FUNCTION echo_s(bigint) RETURNS bigint IMMUTABLE SERVICE es")
            ins = wait_ready("es", 1)
            q = "SELECT count(*), sum(%s(x)) FROM t"
            ta, out_a, tb, out_b = timed_pair(q % "echo_c", q % "echo_s")
            if out_a != out_b:
                sys.exit("results differ: %r %r" % (out_a, out_b))
            a, b = args.rows / ta, args.rows / tb
            c = float(subprocess.run([nng_bench, "naive", ins[0]["endpoint"], str(args.naive_rows)],
                                     capture_output=True, text=True, check=True).stdout)
            plan = sql("EXPLAIN " + q % "echo_s")
            inflight_rows = int(plan.split("in flight: ")[1].split(" rows")[0])
            batch = int(plan.split("Batch: ")[1].split(" rows")[0])
            inflight = max(1, inflight_rows // batch)
            nmsg = max(inflight * 4, args.rows // batch)
            d_runs = []
            for _ in range(args.repeat):  # median, as for (a) and (b)
                d_out, frame = subprocess.run([nng_bench, "raw", str(batch), str(nmsg), str(inflight)],
                                              capture_output=True, text=True, check=True).stdout.split()
                d_runs.append(float(d_out))
            d_bytes, frame = statistics.median(d_runs), int(frame)
            # (b)'s bytes: a request and an answer frame of `batch` bigints per batch
            b_bytes = b / batch * 2 * frame
            print("| measure | value |\n|---|---|")
            print("| (a) in-process C echo | %.2f M rows/s |" % (a / 1e6))
            print("| (b) service, 1 instance (max_batch %d, %d requests in flight) | %.2f M rows/s |" %
                  (batch, inflight, b / 1e6))
            print("| (c) naive per-row blocking nng requests | %.0f rows/s |" % c)
            print("| (d) raw nng REQ/REP, frames of %d bytes, %d in flight | %.0f MB/s |" % (frame, inflight, d_bytes / 1e6))
            print("| (b) / (a) (target >= 0.5) | **%.2f** |" % (b / a))
            print("| (b) / (c) (target >= 50) | **%.0f** |" % (b / c))
            print("| (b) bytes/s / (d) (target >= 0.7) | **%.2f** (%.0f MB/s) |" % (b_bytes / d_bytes, b_bytes / 1e6))
            print()

        # 2. delay scaling
        if 2 in parts:
            rows = args.delay_rows
            sql("CREATE TABLE t2 (id bigint) WITH (connector = 'datagen', rows = %d)" % rows,
                "CREATE SERVICE dl USING 'builtin:delay' WITH (instances = 1, delay_ms = 20, max_batch = 64)",
                "CREATE FUNCTION slow(bigint) RETURNS bigint IMMUTABLE SERVICE dl WITH (max_batch = 64)")
            print("builtin:delay, 20 ms per batch of 64 rows, %d rows:\n" % rows)
            print("| instances | rows/s | x one instance | / linear (target >= 0.9) |\n|---|---|---|---|")
            base = None
            for n in (1, 2, 4, 8):
                sql("ALTER SERVICE dl SET (instances = %d)" % n)
                wait_ready("dl", n)
                t, _ = timed("SELECT count(*), sum(slow(id)) FROM t2")
                r = rows / t
                base = base or r
                print("| %d | %.0f | %.2f | **%.2f** |" % (n, r, r / base, r / base / n))
            print()

        # 3. embed on GPU against CPU
        if 3 in parts:
            sql("CREATE TABLE t3 (s text) WITH (connector = 'datagen', rows = 200000, 'fields.s.length' = '64')",
                "CREATE SERVICE emb_cpu USING 'builtin:embed' WITH (device = 'cpu', dim = 256, max_batch = 4096)",
                "CREATE FUNCTION emb_cpu(text) RETURNS real[] IMMUTABLE SERVICE emb_cpu")
            wait_ready("emb_cpu", 1)
            tc, _ = timed("SELECT count(*), sum(array_length(emb_cpu(s), 1)) FROM t3")
            line = "| builtin:embed dim 256, CPU | %.0f rows/s |" % (200000 / tc)
            gpu = subprocess.run([rosql, db, "-q", "-c",
                                  "CREATE SERVICE emb_gpu USING 'builtin:embed' WITH (device = 'gpu', dim = 256, "
                                  "max_batch = 4096)"], capture_output=True, text=True)
            print("| measure | value |\n|---|---|\n" + line)
            if gpu.returncode == 0:
                sql("CREATE FUNCTION emb_gpu(text) RETURNS real[] IMMUTABLE SERVICE emb_gpu")
                wait_ready("emb_gpu", 1)
                tg, _ = timed("SELECT count(*), sum(array_length(emb_gpu(s), 1)) FROM t3")
                print("| builtin:embed dim 256, GPU | %.0f rows/s |" % (200000 / tg))
                print("| GPU / CPU | **%.2f** |" % (tc / tg))
            else:
                print("| builtin:embed on GPU | no GPU here: %s |" % gpu.stderr.strip().splitlines()[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

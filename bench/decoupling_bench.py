#!/usr/bin/env python3
"""Decoupling benchmark (issue: automatic decoupling), all parts in one run.

1. A CPU-heavy C function (examples: spin, about 2 ms of work per batch of 64
   rows) over ROWS rows: in-process (SET decoupling = off) and decoupled with
   1, 2 and 4 instances (ALTER FUNCTION ... SET (instances = n)).
2. A cheap C function (examples: add_one) over CHEAP_ROWS rows, both ways:
   the per-row cost of decoupling, which is where it stops paying.

  bench/decoupling_bench.py [--rows N] [--cheap-rows N] [--repeat R] [--build DIR]

Prints a Markdown table (record it in docs/benchmarks.md with the command).
Every timed query is `SELECT count(*), sum(f(x)) FROM t`, so the shell's
printing stays out of the measurement; results are checked to be equal.
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
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--cheap-rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    rosql = os.path.join(build, "shell", "rosql")
    lib = os.path.join(build, "examples", "librosql_example_udf.so")
    tmp = tempfile.mkdtemp(prefix="rosql-decbench-", dir="/tmp")
    db = os.path.join(tmp, "b.db")

    def sql(*stmts, timeout=900):
        cmd = [rosql, db, "-q", "--csv"]
        for s in stmts:
            cmd += ["-c", s]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            sys.exit("failed: %s\n%s" % (stmts, p.stderr))
        return p.stdout

    def timed(*stmts):
        times, out = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = sql(*stmts)
            times.append(time.perf_counter() - t0)
        return statistics.median(times), out

    def wait_ready(service, n):
        deadline = time.time() + 120
        while time.time() < deadline:
            rows = list(csv.DictReader(io.StringIO(sql("SHOW SERVICES"))))
            ins = [r for r in rows if r["service"] == service and r["instance"].isdigit()]
            if len(ins) == n and all(i["state"] == "ready" for i in ins):
                return
            time.sleep(0.1)
        sys.exit("service %s did not get %d ready instances" % (service, n))

    try:
        cores = os.cpu_count()
        print("## Decoupling benchmark\n")
        print("command: `bench/decoupling_bench.py --rows %d --cheap-rows %d --repeat %d` (%d cores)\n" %
              (args.rows, args.cheap_rows, args.repeat, cores))
        sql("CREATE TABLE t (x bigint) WITH (connector = 'datagen', rows = %d)" % args.rows,
            "CREATE TABLE c (x bigint) WITH (connector = 'datagen', rows = %d)" % args.cheap_rows,
            "CREATE FUNCTION spin(bigint) RETURNS bigint LANGUAGE c AS '%s', 'spin_udf' IMMUTABLE "
            "WITH (decoupled = true, max_batch = 64, instances = 1)" % lib,
            "CREATE FUNCTION inc(bigint) RETURNS bigint LANGUAGE c AS '%s', 'add_one_udf' IMMUTABLE "
            "WITH (decoupled = true, max_batch = 8192, instances = 1)" % lib)

        # 1. CPU-heavy function
        q = "SELECT count(*), sum(spin(x)) FROM t"
        t_in, out_in = timed("SET decoupling = off", q)
        base = args.rows / t_in
        print("CPU-heavy function `spin` (about 2 ms per batch of 64 rows), %d rows:\n" % args.rows)
        print("| run | seconds | rows/s | x in-process |\n|---|---|---|---|")
        print("| in-process (`SET decoupling = off`) | %.2f | %.0f | 1.00 |" % (t_in, base))
        for n in (1, 2, 4):
            sql("ALTER FUNCTION spin SET (instances = %d)" % n)
            sql("SELECT spin(1)")  # creates the service on first use
            wait_ready("spin", n)
            t, out = timed(q)
            if out != out_in:
                sys.exit("results differ: %r %r" % (out, out_in))
            print("| decoupled, %d instance%s | %.2f | %.0f | **%.2f** |" %
                  (n, "" if n == 1 else "s", t, args.rows / t, t_in / t))
        print()

        # 2. cheap function
        q = "SELECT count(*), sum(inc(x)) FROM c"
        sql("SELECT inc(1)")
        wait_ready("inc", 1)
        t_off, out_off = timed("SET decoupling = off", q)
        t_on, out_on = timed(q)
        if out_on != out_off:
            sys.exit("results differ: %r %r" % (out_on, out_off))
        per_row = (t_on - t_off) / args.cheap_rows * 1e9
        print("Cheap function `add_one`, %d rows, max_batch 8192:\n" % args.cheap_rows)
        print("| run | seconds | rows/s |\n|---|---|---|")
        print("| in-process | %.2f | %.0f |" % (t_off, args.cheap_rows / t_off))
        print("| decoupled, 1 instance | %.2f | %.0f |" % (t_on, args.cheap_rows / t_on))
        print("| decoupled / in-process time | **%.1fx** | |" % (t_on / t_off))
        print("| decoupling cost per row | **%.0f ns** | |" % per_row)
        print()
        print("Break-even: decoupling pays once a function costs well above %.0f ns per row "
              "(the proxy, transport and service overhead measured above), and then scales with "
              "the instances up to the cores (or GPUs) available." % per_row)
    finally:
        subprocess.run([rosql, db, "-q", "-c", "DROP FUNCTION spin", "-c", "DROP FUNCTION inc"],
                       capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

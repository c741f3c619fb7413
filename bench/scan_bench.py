#!/usr/bin/env python3
"""Bounded scan + filter + project + group-by benchmark: rosql against SQLite.

Both engines answer the same query over the same rows in one run:
  rosql/datagen  rosql generating the rows itself (connector datagen)
  rosql/sqlite   rosql reading the rows stored in the database file (connector sqlite)
  sqlite3        Debian's sqlite3 shell over that very SQLite table
The rows are made once by rosql (CREATE TABLE stored AS SELECT * FROM gen),
so every engine sees identical data.  Prints rows/s, the ratios against
sqlite3 and rosql's peak RSS (from /usr/bin/time or getrusage).

  bench/scan_bench.py [--rows N] [--repeat R] [--rosql build/shell/rosql]

Needs Debian's sqlite3 and time packages (scripts/setup.sh installs both).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

QUERY = ("SELECT k, count(*), sum(x * 2), avg(x + id) FROM {t} "
         "WHERE x > 500 AND s <> 'zzzz' GROUP BY k")
SQLITE_QUERY = ("SELECT c1, count(*), sum(c2 * 2), avg(c2 + c0) FROM {t} "
                "WHERE c2 > 500 AND c3 <> 'zzzz' GROUP BY c1;")


def timed(cmd):
    """Runs cmd under GNU time; returns (seconds, peak RSS in MiB, stdout)."""
    with tempfile.NamedTemporaryFile(mode="r") as tf:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%M"] + cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit("benchmark command failed: %s\n%s" % (" ".join(cmd), p.stderr))
        return dt, int(tf.read().split()[-1]) / 1024.0, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rosql", default=os.path.join(os.path.dirname(__file__), "..", "build", "shell", "rosql"))
    a = ap.parse_args()
    rosql = os.path.abspath(a.rosql)
    with tempfile.TemporaryDirectory(prefix="rosql-bench-") as tmp:
        db = os.path.join(tmp, "bench.db")
        ddl = ("CREATE TABLE gen (id bigint, k integer, x double precision, s text) WITH (connector = 'datagen', "
               "rows = %d, seed = 7, 'fields.k.kind' = 'random', 'fields.k.min' = 0, 'fields.k.max' = 99, "
               "'fields.x.min' = 0, 'fields.x.max' = 1000, 'fields.s.length' = 8)" % a.rows)
        subprocess.run([rosql, db, "-q", "-c", ddl], check=True)
        t0 = time.perf_counter()
        subprocess.run([rosql, db, "-q", "-c", "CREATE TABLE stored AS SELECT * FROM gen"], check=True)
        load = time.perf_counter() - t0
        data_table = subprocess.run(["sqlite3", db, "SELECT data_table FROM rosql_tables WHERE name = 'stored'"],
                                    check=True, capture_output=True, text=True).stdout.strip()
        runs = {
            "rosql/datagen": [rosql, db, "--csv", "-c", QUERY.format(t="gen")],
            "rosql/sqlite": [rosql, db, "--csv", "-c", QUERY.format(t="stored")],
            "sqlite3": ["sqlite3", db, SQLITE_QUERY.format(t=data_table)],
        }
        best, rss, outputs = {}, {}, {}
        for _ in range(a.repeat):  # interleaved, so drift affects all alike
            for name, cmd in runs.items():
                dt, mem, out = timed(cmd)
                best[name] = min(best.get(name, dt), dt)
                rss[name] = max(rss.get(name, 0), mem)
                outputs[name] = out
        # rosql prints a CSV header line, sqlite3 does not
        groups = {n: len(o.strip().splitlines()) - (n != "sqlite3") for n, o in outputs.items()}
        print("rows: %d   (stored into SQLite by rosql in %.1f s)" % (a.rows, load))
        print("%-14s %12s %14s %10s %8s" % ("engine", "seconds", "rows/s", "vs sqlite3", "groups"))
        base = a.rows / best["sqlite3"]
        for name in runs:
            rps = a.rows / best[name]
            print("%-14s %12.3f %14.0f %10.2f %8d" % (name, best[name], rps, rps / base, groups[name]))
        print("peak RSS: rosql/datagen %.1f MiB, rosql/sqlite %.1f MiB, sqlite3 %.1f MiB" %
              (rss["rosql/datagen"], rss["rosql/sqlite"], rss["sqlite3"]))


if __name__ == "__main__":
    main()

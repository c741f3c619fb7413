#!/usr/bin/env python3
"""
diff_test.py
    Differential test of rosql against a private PostgreSQL cluster.

Usage: diff_test.py ROSQL [--all] [-v] [CORPUS_FILE ...]

Every corpus file (corpus/*.sql; known_failures.sql only with --all) holds a
setup section and a query section:

    -- setup
    CREATE TABLE t (a integer, b text);
    INSERT INTO t VALUES (1, 'x'), (NULL, 'y');
    -- queries
    SELECT a + 1 AS b1 FROM t;
    SELECT 1 / 0;

The setup runs on both systems (it must succeed on both); each query then
runs on both and the CSV outputs are compared: the header line exactly,
integers, text and booleans exactly, floats with a relative tolerance (1e-12
for double precision, 1e-6 for real, the type taken from PostgreSQL's
\\gdesc), rows as multisets unless the query has a top-level ORDER BY.  When
one side fails the other must fail too, with the same message (or at least
the same first three words).  A line `-- @unordered` before a query compares
its rows as a multiset even with an ORDER BY (ties).

The script starts its own cluster in a temporary directory (unix socket
only), stops and removes it on every exit path, and exits 77 (skip) when no
PostgreSQL server binaries are installed.  Exit status: 0 all passed, 1 a
discrepancy, 2 a harness failure.
"""

import concurrent.futures
import csv
import glob
import io
import math
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
KNOWN = "known_failures.sql"
PORT = 54329 + (os.getpid() % 500)
QUERY_TIMEOUT = 30
TOL = {"double precision": 1e-12, "real": 1e-6}


# ---------------------------------------------------------------- #
# PostgreSQL cluster

def find_pg_bindir():
    """The newest /usr/lib/postgresql/N/bin holding initdb and pg_ctl."""
    cands = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            try:
                cands.append((int(os.path.basename(os.path.dirname(d))), d))
            except ValueError:
                pass
    if cands:
        return max(cands)[1]
    p = shutil.which("pg_config")
    if p:
        d = subprocess.run([p, "--bindir"], capture_output=True, text=True).stdout.strip()
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    return None


class Cluster:
    """A throw-away cluster; as root it runs as the postgres user."""

    def __init__(self, bindir):
        self.bindir = bindir
        self.dir = tempfile.mkdtemp(prefix="rosql-diff-pg-")
        self.started = False
        self.runas = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root but there is no postgres user")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.runas = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.dir, "data")
        self.psql = os.path.join(bindir, "psql")
        if not os.access(self.psql, os.X_OK):
            self.psql = shutil.which("psql") or "psql"

    def _run(self, args, timeout=60):
        r = subprocess.run(self.runas + args, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (args[0], r.returncode, r.stdout, r.stderr))
        return r

    def start(self):
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                   "-E", "UTF8", "--locale=C", "--no-sync"], timeout=120)
        opts = "-k %s -p %d -c listen_addresses='' -c fsync=off -c full_page_writes=off" % (self.dir, PORT)
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-o", opts, "-l",
                   os.path.join(self.dir, "log"), "-w", "-t", "60", "start"], timeout=90)
        self.started = True

    def stop(self):
        try:
            if self.started:
                subprocess.run(self.runas + [os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                                             "-m", "immediate", "-w", "-t", "30", "stop"],
                               capture_output=True, timeout=60)
                self.started = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql_cmd(self, db):
        return [self.psql, "-X", "-h", self.dir, "-p", str(PORT), "-U", "postgres", "-d", db, "--csv",
                "-v", "VERBOSITY=verbose"]

    def createdb(self, db):
        r = subprocess.run(self.psql_cmd("postgres") + ["-q", "-c", 'CREATE DATABASE "%s" TEMPLATE template0' % db],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("could not create database %s: %s" % (db, r.stderr))


# ---------------------------------------------------------------- #
# Corpus

def split_sql(text):
    """Statements of text as (leading comment lines, statement) pairs,
    split at semicolons outside quotes and comments."""
    out, cur, comments = [], [], []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            if not "".join(cur).strip():
                comments.append(text[i:j])
            else:
                cur.append(text[i:j])
            i = j
            continue
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            cur.append(text[i:j])
            i = j
            continue
        if c in "'\"":
            j = i + 1
            while j < n:
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                if c == "'" and text[j] == "\\" and i > 0 and text[i - 1] in "eE":
                    j += 2
                    continue
                j += 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        if c == ";":
            stmt = "".join(cur).strip()
            if stmt:
                out.append((comments, stmt))
            cur, comments = [], []
            i += 1
            continue
        cur.append(c)
        i += 1
    stmt = "".join(cur).strip()
    if stmt:
        out.append((comments, stmt))
    return out


def parse_corpus(path):
    """(setup statements, [(line comments, query)]) of a corpus file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^--\s*queries\s*$", text, re.M)
    if not m:
        raise RuntimeError("%s: no '-- queries' line" % path)
    setup = [s for _, s in split_sql(text[:m.start()])]
    return setup, split_sql(text[m.end():])


def strip_parens(q):
    """q with parenthesized parts and quoted strings blanked out."""
    q = re.sub(r"'(?:[^']|'')*'", "''", q)
    out, depth = [], 0
    for c in q:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def is_ordered(q, comments):
    if any("@unordered" in c for c in comments):
        return False
    return re.search(r"\border\s+by\b", strip_parens(q), re.I) is not None


# ---------------------------------------------------------------- #
# Running and comparing

class Outcome:
    def __init__(self, rc, out, err):
        self.ok = rc == 0
        self.out = out
        self.err = err
        self.msg = ""
        self.sqlstate = ""
        if not self.ok:
            for line in err.splitlines():
                m = re.match(r"(?:psql:[^:]*:\d+: )?ERROR:\s+(?:([0-9A-Z]{5}): )?(.*)", line)
                if m:
                    self.sqlstate = m.group(1) or ""
                    self.msg = m.group(2).strip()
                    break
            if not self.msg:
                self.msg = (err.strip().splitlines() or ["<no message, rc=%d>" % rc])[0]


def run_pg(cluster, db, sql):
    r = subprocess.run(cluster.psql_cmd(db) + ["-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True,
                       text=True, timeout=QUERY_TIMEOUT, errors="replace")
    return Outcome(r.returncode, r.stdout, r.stderr)


def run_rosql(rosql, dbfile, sql):
    try:
        r = subprocess.run([rosql, dbfile, "--format", "csv", "-c", sql], capture_output=True, text=True,
                           timeout=QUERY_TIMEOUT, errors="replace")
    except subprocess.TimeoutExpired:
        return Outcome(124, "", "ERROR:  <timeout after %ds>" % QUERY_TIMEOUT)
    if r.returncode < 0:
        return Outcome(r.returncode, r.stdout, "ERROR:  <crashed with signal %d>\n%s" % (-r.returncode, r.stderr))
    return Outcome(r.returncode, r.stdout, r.stderr)


def pg_types(cluster, db, sql):
    """Column type names of sql's result, from psql's \\gdesc."""
    q = sql.rstrip().rstrip(";")
    r = subprocess.run(cluster.psql_cmd(db), input=q + " \\gdesc\n", capture_output=True, text=True,
                       timeout=QUERY_TIMEOUT)
    rows = list(csv.reader(io.StringIO(r.stdout)))
    return [row[1] for row in rows[1:] if len(row) >= 2]


FLOAT_RE = re.compile(r"^-?(\d+\.?\d*(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?|Infinity|NaN)$", re.I)


def float_eq(a, b, tol):
    if not (FLOAT_RE.match(a) and FLOAT_RE.match(b)):
        return False
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= tol * max(abs(x), abs(y))


def rows_equal(pr, rr, tols, ordered):
    """Compares row lists (no header); tols[i] is None for exact columns."""
    if len(pr) != len(rr):
        return False

    def row_eq(a, b):
        if len(a) != len(b):
            return False
        for i, (x, y) in enumerate(zip(a, b)):
            if x == y:
                continue
            t = tols[i] if i < len(tols) else None
            if t is None or not float_eq(x, y, t):
                return False
        return True

    if ordered:
        return all(row_eq(a, b) for a, b in zip(pr, rr))

    def key(row):
        k = []
        for i, x in enumerate(row):
            t = tols[i] if i < len(tols) else None
            if t is not None and FLOAT_RE.match(x) and not re.match(r"^-?(Infinity|NaN)$", x):
                v = float(x)
                k.append((1, "%.5e" % v if v else "0", x))
            else:
                k.append((0, x, ""))
        return [(a, b) for a, b, _ in k]

    return all(row_eq(a, b) for a, b in zip(sorted(pr, key=key), sorted(rr, key=key)))


def first_words(msg, n=3):
    return msg.split()[:n]


def compare(cluster, db, sql, ordered, pg, ro):
    """None when the outcomes agree, else a description of the difference."""
    if pg.ok != ro.ok:
        if pg.ok:
            return "PostgreSQL succeeded, rosql failed: %s" % ro.msg
        return "PostgreSQL failed (%s %s), rosql succeeded" % (pg.sqlstate, pg.msg)
    if not pg.ok:
        if pg.msg == ro.msg or first_words(pg.msg) == first_words(ro.msg):
            return None
        return "different errors: PostgreSQL %s %r, rosql %r" % (pg.sqlstate, pg.msg, ro.msg)
    if pg.out == ro.out:
        return None
    prows = list(csv.reader(io.StringIO(pg.out)))
    rrows = list(csv.reader(io.StringIO(ro.out)))
    if not prows or not rrows or prows[0] != rrows[0]:
        return "different headers: PostgreSQL %r, rosql %r" % (prows[:1], rrows[:1])
    types = pg_types(cluster, db, sql)
    tols = [TOL.get(t) for t in types]
    if rows_equal(prows[1:], rrows[1:], tols, ordered):
        return None
    if ordered and rows_equal(prows[1:], rrows[1:], tols, False):
        return "same rows in a different order (ties in ORDER BY?)"
    return "different rows"


def show(out, limit=12):
    lines = out.splitlines()
    s = "\n".join("      " + l for l in lines[:limit])
    if len(lines) > limit:
        s += "\n      ... (%d lines)" % len(lines)
    return s


def run_file(cluster, rosql, path, workdir, verbose):
    """Runs one corpus file; returns (name, passed, failures, notes)."""
    name = os.path.splitext(os.path.basename(path))[0]
    db = "d_" + re.sub(r"\W", "_", name)
    dbfile = os.path.join(workdir, name + ".db")
    setup, queries = parse_corpus(path)
    cluster.createdb(db)
    failures = []
    for s in setup:
        pg = run_pg(cluster, db, s)
        ro = run_rosql(rosql, dbfile, s)
        if not pg.ok or not ro.ok:
            failures.append("%s: setup statement failed (PostgreSQL: %s; rosql: %s):\n    %s" %
                            (name, pg.msg or "ok", ro.msg or "ok", s))
    if failures:
        return name, 0, failures, len(queries)
    passed = 0
    for comments, q in queries:
        pg = run_pg(cluster, db, q)
        ro = run_rosql(rosql, dbfile, q)
        d = compare(cluster, db, q, is_ordered(q, comments), pg, ro)
        if d is None:
            passed += 1
            continue
        f = "%s: %s\n    query: %s" % (name, d, " ".join(q.split()))
        if pg.ok or ro.ok or verbose:
            f += "\n    PostgreSQL:\n%s\n    rosql:\n%s" % (show(pg.out if pg.ok else pg.err),
                                                       show(ro.out if ro.ok else ro.err))
        failures.append(f)
    return name, passed, failures, len(queries)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("-")]
    flags = [a for a in argv[1:] if a.startswith("-")]
    if not args or "-h" in flags or "--help" in flags:
        print(__doc__.strip())
        return 2
    rosql = os.path.abspath(args[0])
    if not os.access(rosql, os.X_OK):
        print("diff_test: %s is not an executable" % rosql, file=sys.stderr)
        return 2
    verbose = "-v" in flags
    if args[1:]:
        files = [os.path.abspath(a) for a in args[1:]]
    else:
        files = sorted(glob.glob(os.path.join(CORPUS, "*.sql")))
        if "--all" not in flags:
            files = [f for f in files if os.path.basename(f) != KNOWN]
    bindir = find_pg_bindir()
    if not bindir or not shutil.which("runuser" if os.geteuid() == 0 else "true"):
        print("diff_test: SKIP: PostgreSQL server binaries (initdb, pg_ctl) are not installed "
              "(Debian: apt-get install postgresql)")
        return 77

    t0 = time.monotonic()
    cluster = Cluster(bindir)
    workdir = tempfile.mkdtemp(prefix="rosql-diff-")

    def on_signal(sig, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, on_signal)
    total = passed = 0
    failures = []
    ex = None
    try:
        cluster.start()
        ex = concurrent.futures.ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2)))
        futs = [ex.submit(run_file, cluster, rosql, f, workdir, verbose) for f in files]
        for fut in futs:
            name, p, fl, n = fut.result()
            total += n
            passed += p
            failures.extend(fl)
            if verbose:
                print("%-24s %d/%d" % (name, p, n))
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        print("diff_test: harness failure: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("diff_test: interrupted", file=sys.stderr)
        return 2
    finally:
        if ex:
            ex.shutdown(wait=False, cancel_futures=True)
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    for f in failures:
        print("FAIL " + f + "\n")
    print("diff_test: %d/%d queries agree with PostgreSQL (%d files, %.1fs)" %
          (passed, total, len(files), time.monotonic() - t0))
    return 0 if passed == total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

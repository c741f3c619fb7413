#!/usr/bin/env python3
"""End-to-end tests of automatic decoupling (functions annotated WITH
(decoupled = true)), as a user drives them from the shell.

The corpus (decoupling/corpus.sql) runs every query with SET decoupling =
off and on and compares the rows; the other tests cover the services'
lifecycle, INSERT/CTAS, poison rows and option errors.

  decoupling_test.py ROSQL BUILD_DIR [TEST...]
"""
import os
import re
import sys
import time

import harness
from harness import Failure, check, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


def lib():
    return os.path.join(harness.BUILD, "examples", "librosql_example_udf.so")


def setup(db):
    with open(os.path.join(HERE, "decoupling", "setup.sql")) as f:
        for stmt in split(f.read()):
            db.run(stmt.replace("@LIB@", lib()))


def split(text):
    """Statements of a file: `;`-terminated, `--` comment lines dropped."""
    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def result(db, query, decoupling):
    p = db.run("SET decoupling = %s; %s" % (decoupling, query), ok=False, timeout=180)
    if p.returncode != 0:
        raise Failure("decoupling = %s: %s\n%s%s" % (decoupling, query, p.stdout, p.stderr))
    return p.stdout.splitlines()


def services(db):
    return {r["service"]: r for r in db.rows("SHOW SERVICES") if not r["instance"].isdigit()}


# ---------------------------------------------------------------- tests

def test_corpus(db):
    """Every corpus query gives the same rows with decoupling off and on."""
    setup(db)
    with open(os.path.join(HERE, "decoupling", "corpus.sql")) as f:
        queries = split(f.read())
    check(len(queries) >= 30, "corpus has %d queries" % len(queries))
    decoupled = ("inc(", "inc2(", "words(", "neg(")
    for q in queries:
        off, on = result(db, q, "off"), result(db, q, "on")
        ordered = re.search(r"\border\s+by\b", q, re.I) and not re.search(r"\blimit\b", q, re.I) or \
            re.search(r"\blimit\b", q, re.I)
        if not ordered:
            off, on = off[:1] + sorted(off[1:]), on[:1] + sorted(on[1:])
        check(off == on, "rows differ for: %s\noff: %s\non:  %s" % (q, off[:12], on[:12]))
        check(len(off) >= 2, "no rows from: %s" % q)
        # the rule fired: the plan has a proxy per decoupled function called
        plan = "\n".join(result(db, "EXPLAIN " + q, "on"))
        if any(re.search(r"(?<![\w_])" + re.escape(d), q) for d in decoupled):
            check("decoupled" in plan, "no decoupled proxy in the plan of: %s\n%s" % (q, plan))
        plan_off = "\n".join(result(db, "EXPLAIN " + q, "off"))
        check("Proxy" not in plan_off, "a proxy with decoupling off: %s\n%s" % (q, plan_off))
    # the same call written twice is one proxy
    plan = "\n".join(result(db, "EXPLAIN SELECT x, inc(x), inc(x) + 1 FROM g", "on"))
    check(plan.count("Proxy inc ") == 1, "the repeated call is not one proxy:\n" + plan)
    # ... also when one is in WHERE and one in the select list or an aggregate
    for q in ("SELECT x, inc(x) FROM g WHERE inc(x) > 50 AND x < 90",
              "SELECT sum(inc(x)) FROM g WHERE inc(x) % 2 = 0"):
        plan = "\n".join(result(db, "EXPLAIN " + q, "on"))
        check(plan.count("Proxy inc ") == 1, "WHERE and select list do not share the call:\n" + plan)
    # nested: two proxies in sequence, inner first
    plan = "\n".join(result(db, "EXPLAIN SELECT inc(words(y)) FROM g", "on"))
    check(plan.index("Proxy inc ") < plan.index("Proxy words "), "nested proxies out of order:\n" + plan)
    # the cheap conjunct filters before the proxy
    plan = result(db, "EXPLAIN SELECT x FROM g WHERE inc(x) > 5 AND x < 10", "on")
    proxy = next(i for i, l in enumerate(plan) if "Proxy inc" in l)
    cheap = next(i for i, l in enumerate(plan) if "(x < 10)" in l)
    check(cheap > proxy, "the cheap conjunct is not below the proxy:\n" + "\n".join(plan))
    # CASE: the proxy sends only the rows that need the call
    plan = "\n".join(result(db, "EXPLAIN SELECT CASE WHEN x > 10 THEN neg(x) END FROM g", "on"))
    check("Sent only when" in plan, "no guard on a call under CASE:\n" + plan)


def test_insert_and_ctas(db):
    """INSERT ... SELECT and CREATE TABLE AS write the same rows both ways."""
    setup(db)
    for mode in ("off", "on"):
        db.run("SET decoupling = %s; CREATE TABLE c_%s AS SELECT x, inc(x) AS a, words(y) AS w FROM g" % (mode, mode))
        db.run("CREATE TABLE i_%s (x bigint, a bigint)" % mode)
        db.run("SET decoupling = %s; INSERT INTO i_%s SELECT x, inc2(x * 3) FROM g WHERE x %% 2 = 0" % (mode, mode))
    for t in ("c", "i"):
        off = db.run("SELECT * FROM %s_off ORDER BY x" % t).stdout
        on = db.run("SELECT * FROM %s_on ORDER BY x" % t).stdout
        check(off == on and len(off.splitlines()) > 1000, "%s tables differ" % t)


def test_service_lifecycle(db):
    """The service is created on first use, named after the function, and
    follows ALTER / DROP FUNCTION."""
    setup(db)
    check("inc" not in services(db), "service exists before first use")
    db.run("EXPLAIN SELECT inc(x) FROM g")
    check("inc" not in services(db), "EXPLAIN created the service")
    out = db.rows("SELECT sum(inc(x)) AS s FROM g")
    check(out[0]["s"] == str(sum(range(2, 3002))), "wrong sum %r" % out)
    sv = services(db).get("inc")
    check(sv is not None and sv["handler"].endswith(":add_one_udf"), "no service inc: %r" % services(db))
    # shared by every query: a second query does not make a second service
    db.run("SELECT count(inc(x)) FROM g")
    check(sum(1 for s in services(db) if s.startswith("inc")) == 1, "more than one service")
    # ALTER FUNCTION resizes it
    db.run("ALTER FUNCTION inc SET (instances = 2)")
    wait_until(lambda: harness.ready(db, "inc", 2), 30, "2 ready instances of inc")
    # decoupled = false: the service goes, the function runs in-process
    db.run("ALTER FUNCTION inc SET (decoupled = false)")
    check("inc" not in services(db), "service still there after decoupled = false")
    plan = db.run("EXPLAIN SELECT inc(x) FROM g").stdout
    check("Proxy" not in plan, "proxy after decoupled = false:\n" + plan)
    check(db.rows("SELECT sum(inc(x)) AS s FROM g")[0]["s"] == str(sum(range(2, 3002))), "in-process sum")
    db.run("ALTER FUNCTION inc SET (decoupled = true)")
    db.run("SELECT sum(inc(x)) FROM g")
    check("inc" in services(db), "service not recreated")
    # DROP FUNCTION drops its service (and waits for its instances)
    db.run("DROP FUNCTION inc")
    check("inc" not in services(db), "service still there after DROP FUNCTION")
    # a service of that name that belongs to something else is an error
    db.run("CREATE SERVICE words USING 'builtin:echo'")
    p = db.run("SELECT words(y) FROM g", ok=False)
    check(p.returncode != 0 and 'service "words" already exists and is not the service of decoupled function words'
          in p.stderr, "no conflict error: %s" % p.stderr)


def test_poison_row(db):
    """A row that crashes the instance gets on_error after max_retries; the
    query neither fails in a loop nor loses other rows; the instance is
    restarted."""
    db.run("CREATE TABLE g (x bigint) WITH (connector = 'datagen', rows = '2000')")
    db.run("CREATE FUNCTION poison(bigint) RETURNS bigint LANGUAGE c AS '%s', 'crash_on_negative_udf' "
           "IMMUTABLE WITH (decoupled = true, max_batch = 64, max_retries = 0, on_error = 'null', timeout_ms = 60000)"
           % lib())
    arg = "CASE WHEN x % 1000 = 77 THEN -x ELSE x END"
    t0 = time.time()
    p = db.run("SELECT count(*) AS n, count(poison(%s)) AS c, sum(poison(%s)) AS s FROM g" % (arg, arg))
    rows = list(__import__("csv").DictReader(p.stdout.splitlines()))
    poisoned = [x for x in range(1, 2001) if x % 1000 == 77]
    check(rows[0]["n"] == "2000" and rows[0]["c"] == str(2000 - len(poisoned)),
          "wrong counts %r" % rows)
    check(rows[0]["s"] == str(sum(range(1, 2001)) - sum(poisoned)), "wrong sum %r" % rows)
    check("failed on %d rows, which got NULL" % len(poisoned) in p.stderr, "no notice: %s" % p.stderr)
    check(time.time() - t0 < 100, "took %.1fs" % (time.time() - t0))
    # the instance crashed on the batch and was restarted
    ins = wait_until(lambda: harness.ready(db, "poison", 1), 30, "poison ready again")
    check(int(ins[0]["restarts"]) >= 1, "instance was not restarted: %r" % ins)
    db.run("ALTER FUNCTION poison SET (on_error = 'skip')")
    out = db.rows("SELECT count(*) AS n, sum(poison(%s)) AS s FROM g" % arg)
    check(out[0]["n"] == str(2000 - len(poisoned)) and out[0]["s"] == str(sum(range(1, 2001)) - sum(poisoned)),
          "skip: %r" % out)
    db.run("ALTER FUNCTION poison SET (on_error = 'fail')")
    p = db.run("SELECT sum(poison(%s)) FROM g" % arg, ok=False)
    check(p.returncode != 0 and "crashed" in p.stderr and "arguments (-77)" in p.stderr,
          "fail does not name the row: %s" % p.stderr)


def test_option_errors(db):
    """Bad annotations are errors that name the option."""
    db.run("CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE c AS '%s', 'add_one_udf' WITH (decoupled = true)"
           % lib())
    for opts, want in [("instances = 0", '"instances"'), ("max_batch = 'many'", '"max_batch"'),
                       ("ordered = 3", '"ordered"'), ("batch_rows = 5", '"batch_rows"'),
                       ("on_error = 'retry'", '"on_error"'), ("device = 'tpu'", '"device"')]:
        p = db.run("ALTER FUNCTION f SET (%s)" % opts, ok=False)
        check(p.returncode != 0 and want in p.stderr, "%s: %s" % (opts, p.stderr))
    p = db.run("CREATE FUNCTION h(bigint) RETURNS bigint SERVICE nowhere WITH (decoupled = true)", ok=False)
    check(p.returncode != 0, "a service-bound function was decoupled")


if __name__ == "__main__":
    sys.exit(harness.run_tests({n: f for n, f in globals().items() if n.startswith("test_")}, sys.argv,
                               "rosql-dec-"))

#!/usr/bin/env python3
"""End-to-end tests of streaming jobs: INSERT ... SELECT as a job process,
SUBMIT, STOP/RESUME/CHECKPOINT JOB, unbounded sources, checkpoints, and
exactly-once results after kill -9 of the job, of a service instance, or of
the coordinator.

  jobs_test.py ROSQL BUILD_DIR [TEST...]

Environment: ROSQL_FAULT_TRIALS (trials per fault kind in test_fault_loop,
default 3; the `faults_full` build target runs 20).
"""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import harness
from harness import Failure, alive, check, wait_until  # noqa: F401


def lib():
    return os.path.join(harness.BUILD, "examples", "librosql_example_udf.so")


def job(db, jid):
    for r in db.rows("SHOW JOBS"):
        if r["id"] == str(jid):
            return r
    return None


def wait_state(db, jid, states, timeout=60):
    return wait_until(lambda: (job(db, jid) or {}).get("state") in states and job(db, jid), timeout,
                      "job %s in state %s" % (jid, states))


def submit(db, stmt, interval=None):
    # each db.run is a new shell: the setting goes with the statement
    pre = "SET checkpoint_interval = '%s'; " % interval if interval else ""
    rows = db.rows(pre + "SUBMIT " + stmt)
    check(len(rows) == 1 and rows[0]["job"].isdigit(), "SUBMIT prints the job id: %r" % rows)
    return int(rows[0]["job"])


def sink_rows(db, table="out"):
    # read the sink directly: what a crash left is what counts
    con = sqlite3.connect(db.path, timeout=30)
    try:
        data = con.execute("SELECT data_table FROM rosql_tables WHERE name = ?", (table,)).fetchone()[0]
        return con.execute('SELECT c0, c1 FROM "%s"' % data).fetchall()
    finally:
        con.close()


def check_exactly_once(db, n, table="out", value=lambda x: x + 1):
    rows = sink_rows(db, table)
    xs = sorted(r[0] for r in rows)
    missing = len(set(range(1, n + 1)) - set(xs))
    dups = len(xs) - len(set(xs))
    check(len(rows) == n and xs == list(range(1, n + 1)),
          "sink holds each of %d rows once: %d rows, %d missing, %d duplicated" % (n, len(rows), missing, dups))
    wrong = [r for r in rows if r[1] != value(r[0])]
    check(not wrong, "values right: %r" % wrong[:5])


def setup(db, rows, rate, max_batch=32, instances=1, extra=""):
    limit = "rows = '%d', " % rows if rows else ""
    db.run("CREATE TABLE g (x bigint) WITH (connector = 'datagen', %srows_per_second = '%d', "
           "'fields.x.start' = '1')" % (limit, rate))
    db.run("CREATE TABLE out (x bigint, y bigint)")
    db.run("CREATE FUNCTION inc(bigint) RETURNS bigint LANGUAGE c AS '%s', 'add_one_udf' STRICT IMMUTABLE "
           "WITH (decoupled = true, max_batch = %d, instances = %d%s)" % (lib(), max_batch, instances, extra))


def job_pid(db, jid):
    return wait_until(lambda: int(job(db, jid)["pid"]) if job(db, jid) and int(job(db, jid)["pid"]) > 0
                      and alive(int(job(db, jid)["pid"])) else None, 30, "job %s process" % jid)


def instance_pids(db, service):
    return sorted(int(i["pid"]) for i in db.instances(service) if i["state"] == "ready")


def coordinator_pid(db):
    with open(os.path.join(db.tmp, "t.db.run", "coord.log")) as f:
        for line in reversed(f.read().splitlines()):
            if "serving" in line and " pid " in line:
                return int(line.split(" pid ")[1].split()[0])
    return None


# ---------------------------------------------------------------- tests

def test_foreground_and_submit(db):
    setup(db, 5000, 1000000)
    p = db.run("INSERT INTO out SELECT x, inc(x) FROM g")
    check("INSERT 0 5000" in p.stdout + p.stderr or p.returncode == 0, "foreground job: %s" % p.stdout)
    check_exactly_once(db, 5000)
    j = db.rows("SHOW JOBS")
    check(len(j) == 1 and j[0]["state"] == "finished" and j[0]["rows_written"] == "5000",
          "SHOW JOBS shows the finished job: %r" % j)
    check(int(j[0]["last_checkpoint"]) > 0, "the end is a checkpoint: %r" % j)
    # an INSERT that calls no service and reads a bounded source stays inline
    db.run("CREATE TABLE small (x bigint, y bigint)")
    db.run("INSERT INTO small SELECT x, x + 1 FROM g")
    check(len(db.rows("SHOW JOBS")) == 1, "a plain INSERT is not a job")
    db.run("CREATE TABLE out2 (x bigint, y bigint)")
    jid = submit(db, "INSERT INTO out2 SELECT x, inc(x) FROM g")
    wait_state(db, jid, ("finished",))
    check_exactly_once(db, 5000, "out2")
    cps = db.rows("SHOW CHECKPOINTS FOR JOB %d" % jid)
    check(len(cps) >= 1 and all(c["job"] == str(jid) for c in cps), "SHOW CHECKPOINTS FOR JOB: %r" % cps)
    p = db.run("STOP JOB %d" % jid, ok=False)
    check(p.returncode != 0 and "not running" in p.stderr, "STOP of a finished job: %s" % p.stderr)
    p = db.run("RESUME JOB 999", ok=False)
    check(p.returncode != 0 and "job 999 does not exist" in p.stderr, "RESUME of no job: %s" % p.stderr)
    p = db.run("STOP JOB", ok=False)
    check(p.returncode != 0 and "syntax error" in p.stderr, "STOP JOB without id: %s" % p.stderr)


def test_job_failure_is_reported(db):
    db.run("CREATE TABLE g (x bigint) WITH (connector = 'datagen', rows = '500', 'fields.x.start' = '-5')")
    db.run("CREATE TABLE out (x bigint, y bigint)")
    db.run("CREATE FUNCTION neg(bigint) RETURNS bigint LANGUAGE c AS '%s', 'fail_on_negative_udf' "
           "WITH (decoupled = true, max_batch = 16)" % lib())
    p = db.run("INSERT INTO out SELECT x, neg(x) FROM g", ok=False)
    check(p.returncode != 0 and "failed" in p.stderr and "negative" in p.stderr,
          "the job's error reaches the shell: %s" % p.stderr)
    j = db.rows("SHOW JOBS")[0]
    check(j["state"] == "failed" and j["restarts"] == "0", "a failed statement is not restarted: %r" % j)
    check(sink_rows(db) == [], "nothing committed")


def test_stop_resume_checkpoint_unbounded(db):
    setup(db, 0, 2000)  # unbounded datagen
    jid = submit(db, "INSERT INTO out SELECT x, inc(x) FROM g", "10min")
    wait_until(lambda: int(job(db, jid)["rows_read"]) > 500, 30, "rows read")
    p = db.run("CHECKPOINT JOB %d" % jid)
    check(p.returncode == 0, "CHECKPOINT JOB")
    n1 = len(sink_rows(db))
    check(n1 > 0, "a checkpoint commits the rows so far: %d" % n1)
    db.run("STOP JOB %d" % jid)
    j = job(db, jid)
    check(j["state"] == "stopped", "stopped: %r" % j)
    check(not alive(int(j["pid"])), "its process is gone")
    n2 = len(sink_rows(db))
    check(n2 >= n1 and n2 == int(j["rows_written"]), "STOP takes a final checkpoint: %d rows, %r" % (n2, j))
    time.sleep(1)
    check(len(sink_rows(db)) == n2, "nothing written while stopped")
    db.run("RESUME JOB %d" % jid)
    wait_until(lambda: int(job(db, jid)["rows_read"]) > n2 + 500 or None, 60, "rows after RESUME")
    db.run("STOP JOB %d" % jid)
    rows = sink_rows(db)
    check(len(rows) > n2 + 500, "RESUME continued and STOP committed: %d rows" % len(rows))
    check_exactly_once(db, len(rows))


def test_kill_job_exactly_once(db):
    setup(db, 6000, 3000, instances=2)
    jid = submit(db, "INSERT INTO out SELECT x, inc(x) FROM g", "300ms")
    pid = job_pid(db, jid)
    wait_until(lambda: int(job(db, jid)["last_checkpoint"]) > 1 or None, 30, "a checkpoint")
    inst = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(instance_pids(db, "inc")), 30,
                      "both instances ready")
    os.kill(pid, signal.SIGKILL)
    j = wait_state(db, jid, ("finished", "failed"), 90)
    check(j["state"] == "finished", "finished after the kill: %r" % j)
    check(int(j["restarts"]) >= 1, "restarted: %r" % j)
    check_exactly_once(db, 6000)
    check(instance_pids(db, "inc") == inst, "services untouched by the job's death: %r -> %r"
          % (inst, instance_pids(db, "inc")))


def test_kill_instance_job_continues(db):
    setup(db, 6000, 3000, instances=2)
    jid = submit(db, "INSERT INTO out SELECT x, inc(x) FROM g", "300ms")
    wait_until(lambda: int(job(db, jid)["rows_written"]) > 500 or None, 30, "progress")
    os.kill(instance_pids(db, "inc")[0], signal.SIGKILL)
    j = wait_state(db, jid, ("finished", "failed"), 90)
    check(j["state"] == "finished" and j["restarts"] == "0", "job not restarted by an instance's death: %r" % j)
    check_exactly_once(db, 6000)


def test_kill_coordinator(db):
    setup(db, 8000, 2000)
    jid = submit(db, "INSERT INTO out SELECT x, inc(x) FROM g", "300ms")
    pid = job_pid(db, jid)
    # the decoupled function's instance may still be loading (slow under
    # ASan): read its pid once it is ready, not before
    inst = wait_until(lambda: instance_pids(db, "inc") or None, 30, "the instance ready")
    coord = coordinator_pid(db)
    check(coord and alive(coord), "coordinator runs")
    os.kill(coord, signal.SIGKILL)
    time.sleep(0.5)
    check(alive(pid) and all(alive(p) for p in inst), "job and instances outlive the coordinator")
    os.kill(pid, signal.SIGKILL)  # and the job dies while no coordinator runs
    # a new shell finds the job and its services in the catalog
    db.run("SHOW JOBS")
    j = wait_state(db, jid, ("finished", "failed"), 90)
    check(j["state"] == "finished", "finished: %r" % j)
    check_exactly_once(db, 8000)
    # the same processes, serving again (an adopted instance is routed once
    # it answers a ping; under load a few may time out first)
    try:
        wait_until(lambda: instance_pids(db, "inc") == inst, 15, "the instances ready again")
    except Failure as e:
        raise Failure("instances %r adopted, not restarted: %s; SHOW SERVICES: %r" % (inst, e, db.instances("inc")))
    new = coordinator_pid(db)
    check(new != coord and alive(new), "a new coordinator")


def test_checkpoint_restores_inflight(db):
    """A checkpoint taken while requests are outstanding (and, unordered or
    ordered, answered but not emitted) is restored: the requests are re-sent
    under their ids and answered from the services' cache, and the sink ends
    with every row once."""
    n = 6000
    db.run("CREATE TABLE g (x bigint) WITH (connector = 'datagen', rows = '%d', 'fields.x.start' = '1')" % n)
    db.run("CREATE SERVICE d USING 'builtin:delay' WITH (instances = 2, delay_ms = 15, max_batch = 64)")
    wait_until(lambda: harness.ready(db, "d", 2), 30, "two ready instances")
    db.run("CREATE FUNCTION slow(bigint) RETURNS bigint SERVICE d WITH (max_batch = 64)")
    db.run("CREATE FUNCTION slow_u(bigint) RETURNS bigint SERVICE d WITH (max_batch = 64, ordered = false)")
    for fn in ("slow", "slow_u"):
        table = "out_" + fn
        db.run("CREATE TABLE %s (x bigint, y bigint)" % table)
        jid = submit(db, "INSERT INTO %s SELECT x, %s(x) FROM g" % (table, fn), "150ms")
        pid = job_pid(db, jid)
        cp = wait_until(lambda: [c for c in db.rows("SHOW CHECKPOINTS FOR JOB %d" % jid) if int(c["inflight"]) > 0]
                        or None, 60, "a checkpoint with requests in flight")
        os.kill(pid, signal.SIGKILL)
        j = wait_state(db, jid, ("finished", "failed"), 90)
        check(j["state"] == "finished" and int(j["restarts"]) >= 1, "%s: restored and finished: %r" % (fn, j))
        check_exactly_once(db, n, table, value=lambda x: x)
        with open(os.path.join(db.tmp, "t.db.run", "job-%d.log" % jid)) as f:
            log = [ln for ln in f.read().splitlines() if "restored checkpoint" in ln]
        check(log, "%s: the job says what it restored" % fn)
        resent = int(log[-1].split(" requests re-sent")[0].split()[-1])
        check(int(j["recomputed"]) <= resent,
              "%s: recomputed (%s) at most the re-sent requests (%d): %s" % (fn, j["recomputed"], resent, log[-1]))
        print("  %s: checkpoint in flight %s; %s; recomputed %s" % (fn, cp[0]["inflight"], log[-1].split(": ", 1)[1],
                                                                   j["recomputed"]))


def test_other_checkpoint_version_refused(db):
    """A checkpoint written in another format version (RT_CKPT_VERSION,
    runtime/exec/ckpt.h) is not restored: the job fails saying so."""
    setup(db, 0, 2000)  # unbounded datagen
    jid = submit(db, "INSERT INTO out SELECT x, inc(x) FROM g", "10min")
    wait_until(lambda: int(job(db, jid)["rows_read"]) > 200, 30, "rows read")
    db.run("STOP JOB %d" % jid)
    con = sqlite3.connect(db.path, timeout=30)
    try:
        cid, state = con.execute("SELECT id, state FROM rosql_checkpoints WHERE job_id = ? ORDER BY id DESC LIMIT 1",
                                 (jid,)).fetchone()
        check(state[:4] == b"RQCK", "a checkpoint starts with its magic: %r" % state[:8])
        version = int.from_bytes(state[4:8], "little")
        old = (version - 1).to_bytes(4, "little")
        con.execute("UPDATE rosql_checkpoints SET state = ? WHERE id = ?", (state[:4] + old + state[8:], cid))
        con.commit()
    finally:
        con.close()
    db.run("RESUME JOB %d" % jid)
    j = wait_state(db, jid, ("failed",), 60)
    want = "checkpoint %d of job %d has format version %d; this build reads version %d" % (cid, jid, version - 1,
                                                                                          version)
    check(want in j["last_error"], "the job says why: %r" % j["last_error"])


def test_tail_sources(db):
    src = os.path.join(db.tmp, "in.csv")
    with open(src, "w") as f:
        f.write("".join("%d\n" % i for i in range(1, 101)))
    db.run("CREATE TABLE f (x bigint) WITH (connector = 'file', path = '%s', mode = 'tail')" % src)
    db.run("CREATE TABLE s (x bigint) WITH (mode = 'tail')")
    db.run("CREATE TABLE out (x bigint, y bigint)")
    db.run("CREATE TABLE out2 (x bigint, y bigint)")
    j1 = submit(db, "INSERT INTO out SELECT x, x + 1 FROM f", "200ms")
    j2 = submit(db, "INSERT INTO out2 SELECT x, x + 1 FROM s", "200ms")
    wait_until(lambda: len(sink_rows(db)) == 100 or None, 30, "the file's first lines")
    with open(src, "a") as f:
        f.write("".join("%d\n" % i for i in range(101, 251)))
    db.run("CREATE TABLE seq (x bigint) WITH (connector = 'datagen', rows = '250', 'fields.x.start' = '1')")
    db.run("INSERT INTO s SELECT x FROM seq")
    wait_until(lambda: len(sink_rows(db)) == 250 or None, 30, "appended lines picked up")
    wait_until(lambda: len(sink_rows(db, "out2")) == 250 or None, 30, "sqlite tail rows picked up")
    db.run("STOP JOB %d" % j1)
    db.run("STOP JOB %d" % j2)
    check_exactly_once(db, 250)
    check_exactly_once(db, 250, "out2")


def test_file_sink_two_phase(db):
    path = os.path.join(db.tmp, "out.csv")
    db.run("CREATE TABLE g (x bigint) WITH (connector = 'datagen', rows = '4000', rows_per_second = '2000', "
           "'fields.x.start' = '1')")
    db.run("CREATE TABLE outf (x bigint, y bigint) WITH (connector = 'file', path = '%s')" % path)
    db.run("CREATE FUNCTION inc(bigint) RETURNS bigint LANGUAGE c AS '%s', 'add_one_udf' STRICT IMMUTABLE "
           "WITH (decoupled = true, max_batch = 32)" % lib())
    jid = submit(db, "INSERT INTO outf SELECT x, inc(x) FROM g", "250ms")
    pid = job_pid(db, jid)
    wait_until(lambda: int(job(db, jid)["last_checkpoint"]) > 2 or None, 30, "checkpoints")
    os.kill(pid, signal.SIGKILL)
    wait_state(db, jid, ("finished",), 90)
    with open(path) as f:
        lines = [tuple(int(v) for v in ln.split(",")) for ln in f.read().splitlines() if ln]
    xs = sorted(x for x, _ in lines)
    check(xs == list(range(1, 4001)), "file sink rows exactly once: %d lines, %d distinct" % (len(xs), len(set(xs))))
    check(all(y == x + 1 for x, y in lines), "values right")
    left = [n for n in os.listdir(db.tmp) if "rosql-job" in n]
    check(not left, "no staged files left: %r" % left)


def test_fault_loop(db):
    """Kills the job, an instance, or both at a random moment; every trial
    must end with each source row exactly once with its right value."""
    trials = int(os.environ.get("ROSQL_FAULT_TRIALS", "3"))
    n = 3000
    db.run("CREATE TABLE g (x bigint) WITH (connector = 'datagen', rows = '%d', rows_per_second = '4000', "
           "'fields.x.start' = '1')" % n)
    db.run("CREATE FUNCTION inc(bigint) RETURNS bigint LANGUAGE c AS '%s', 'add_one_udf' STRICT IMMUTABLE "
           "WITH (decoupled = true, max_batch = 16, instances = 2)" % lib())
    rng = random.Random(int(os.environ.get("ROSQL_FAULT_SEED", "582")))
    kinds = ("job", "instance", "both")
    for t in range(trials * len(kinds)):
        kind = kinds[t % len(kinds)]
        table = "out%d" % t
        db.run("CREATE TABLE %s (x bigint, y bigint)" % table)
        jid = submit(db, "INSERT INTO %s SELECT x, inc(x) FROM g" % table, "200ms")
        pid = job_pid(db, jid)
        time.sleep(rng.uniform(0.05, 0.6))
        if kind in ("job", "both") and alive(pid):
            os.kill(pid, signal.SIGKILL)
        if kind in ("instance", "both"):
            ins = wait_until(lambda: instance_pids(db, "inc") or None, 30, "an instance")
            os.kill(rng.choice(ins), signal.SIGKILL)
        j = wait_state(db, jid, ("finished", "failed"), 120)
        check(j["state"] == "finished", "trial %d (%s): %r" % (t, kind, j))
        try:
            check_exactly_once(db, n, table)
        except Failure as e:
            raise Failure("trial %d (kill %s): %s" % (t, kind, e))
        if kind == "instance":
            check(j["restarts"] == "0", "trial %d: an instance's death restarted the job: %r" % (t, j))
        wait_until(lambda: len(instance_pids(db, "inc")) == 2 or None, 30, "instances back")
    print("  %d trials: every row exactly once" % (trials * len(kinds)))


TESTS = {f.__name__: f for f in [test_foreground_and_submit, test_job_failure_is_reported,
                                 test_stop_resume_checkpoint_unbounded, test_kill_job_exactly_once,
                                 test_kill_instance_job_continues, test_kill_coordinator,
                                 test_checkpoint_restores_inflight, test_other_checkpoint_version_refused,
                                 test_tail_sources,
                                 test_file_sink_two_phase, test_fault_loop]}

if __name__ == "__main__":
    sys.exit(harness.run_tests(TESTS, sys.argv, "rosql-jobs-"))

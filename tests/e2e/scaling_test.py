#!/usr/bin/env python3
"""End-to-end tests of elastic scaling: ALTER SERVICE ... SET (instances = n)
under running jobs.  A job never restarts, its sink ends with every row once,
throughput follows the instance count, and the output never stalls; scale-in
withdraws instances from routing and releases them after the jobs'
checkpoints.

  scaling_test.py ROSQL BUILD_DIR [TEST...]
"""
import os
import signal
import subprocess
import sys
import time

import harness
from harness import Failure, alive, check, ready, wait_until  # noqa: F401
from jobs_test import check_exactly_once, job, job_pid, sink_rows, submit, wait_state  # noqa: F401

DELAY_MS = 20       # builtin:delay per batch
BATCH = 16          # rows per request and per service batch


def setup(db, name="dl", instances=1, tables=("out",), extra=""):
    db.run("CREATE TABLE IF NOT EXISTS g (x bigint) WITH (connector = 'datagen', rows_per_second = '200000', "
           "'fields.x.start' = '1')")
    for t in tables:
        db.run("CREATE TABLE %s (x bigint, y bigint)" % t)
    db.run("CREATE SERVICE %s USING 'builtin:delay' WITH (delay_ms = %d, max_batch = %d, max_delay_ms = 1, "
           "instances = %d%s)" % (name, DELAY_MS, BATCH, instances, extra))
    db.run("CREATE FUNCTION slow_%s(bigint) RETURNS bigint IMMUTABLE SERVICE %s WITH (max_batch = %d)"
           % (name, name, BATCH))
    wait_until(lambda: ready(db, name, instances), 30, "%d ready instance(s) of %s" % (instances, name))


def start_job(db, name="dl", table="out", trace="trace.txt", interval="500ms"):
    rows = db.rows("SET checkpoint_interval = '%s'; SET job_output_trace = '%s'; "
                   "SUBMIT INSERT INTO %s SELECT x, slow_%s(x) FROM g" % (interval, trace, table, name))
    jid = int(rows[0]["job"])
    wait_state(db, jid, ("running",))
    return jid


def read_trace(db, trace="trace.txt"):
    """[(unix seconds, rows)] of each output batch."""
    path = os.path.join(db.tmp, trace)
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 2:
                    out.append((int(p[0]) / 1000.0, int(p[1])))
    return out


def rate(trace, t0, t1):
    rows = sum(n for t, n in trace if t0 <= t < t1)
    return rows / (t1 - t0)


def longest_gap(trace, t0, t1):
    ts = [t for t, _ in trace if t0 <= t <= t1]
    return max((b - a for a, b in zip(ts, ts[1:])), default=None)


def scale(db, name, n):
    """ALTER SERVICE, then waits until exactly n instances are ready;
    returns (time of the ALTER, time n were seen ready)."""
    t = time.time()
    db.run("ALTER SERVICE %s SET (instances = %d)" % (name, n))
    wait_until(lambda: len([i for i in db.instances(name) if i["state"] == "ready"]) == n, 60,
               "%d ready instances of %s" % (n, name))
    return t, time.time()


def stop_job(db, jid):
    db.run("STOP JOB %d" % jid)
    return wait_state(db, jid, ("stopped",))


def check_exactly_once_prefix(db, table="out"):
    """The sink holds x = 1..K each once (an unbounded source stopped at a
    checkpoint), with y = x (builtin:delay echoes)."""
    rows = sink_rows(db, table)
    check(rows, "the sink is empty")
    k = max(r[0] for r in rows)
    check_exactly_once(db, k, table, value=lambda x: x)
    return k


# ---------------------------------------------------------------- tests

def test_job_scaled_1_4_2_1(db):
    """A job over a builtin:delay service scaled 1 -> 4 -> 2 -> 1 while it
    runs: no restart, every row once, throughput follows the instance count,
    no output gap during a step over twice the steady state's."""
    setup(db)
    jid = start_job(db)
    pid = job_pid(db, jid)
    wait_until(lambda: len(read_trace(db)) > 20, 30, "output to flow")
    phases = []  # (instances, start, end)
    steps = []   # (alter time, ready time)
    t = time.time()
    counts = (1, 4, 2, 1)
    for k, n in enumerate(counts[1:]):
        time.sleep(3.0)
        phases.append((counts[k], t, time.time()))
        a, r = scale(db, "dl", n)
        steps.append((a, r))
        t = r + 0.5  # the proxies' limits follow within a poll
    time.sleep(3.0)
    phases.append((1, t, time.time()))
    end = stop_job(db, jid)
    check(end["restarts"] == "0" and int(end["pid"]) in (0, pid), "the job restarted: %r" % end)
    k = check_exactly_once_prefix(db)
    tr = read_trace(db)
    rates = [(n, rate(tr, a, b)) for n, a, b in phases]
    one = rates[0][1]
    msg = "phase rates (instances, rows/s): %s" % ", ".join("%d: %.0f" % r for r in rates)
    print("  %s; %d rows" % (msg, k))
    ideal = 1000.0 / DELAY_MS * BATCH
    check(one > 0.5 * ideal, "one instance far below its capacity %.0f rows/s: %s" % (ideal, msg))
    for n, r in rates:
        check(0.7 * n <= r / one <= 1.3 * n, "throughput does not follow the instance count: %s" % msg)
    # output gaps: during each step (ALTER to ready + 1 s) against the steady
    # state before it (its longest gap)
    for (a, r), (n, p0, p1) in zip(steps, phases):
        steady = longest_gap(tr, p0 + 0.5, p1)
        during = longest_gap(tr, a, r + 1.0)
        print("  step from %d: longest gap %.0f ms, steady %.0f ms" % (n, during * 1000, steady * 1000))
        check(during < 2 * steady + 0.010, "output stalled during a scaling step from %d: %.0f ms against a "
              "steady %.0f ms" % (n, during * 1000, steady * 1000))
    # scale-in: withdrawn, then released after the job's checkpoints
    ev = [e for e in db.rows("SHOW SERVICE EVENTS") if e["service"] == "dl"]
    rel = [e for e in ev if e["event"] == "instance_released"]
    check(len([e for e in ev if e["event"] == "instance_withdrawn"]) == 3, "3 withdrawals: %r" % ev)
    check(len(rel) == 3 and all("checkpointed" in e["reason"] for e in rel),
          "released after the job's checkpoints: %r" % rel)


def test_scale_in_without_jobs_is_immediate(db):
    """With no job running a withdrawn instance is released at once, and a
    query running through the step completes with every row."""
    setup(db, instances=3)
    db.run("CREATE TABLE b (x bigint) WITH (connector = 'datagen', rows = '6000', 'fields.x.start' = '1')")
    q = subprocess.Popen([harness.ROSQL, db.path, "-q", "--csv", "-c",
                          "SELECT count(*) AS n, sum(slow_dl(x)) AS s FROM b"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=db.tmp)
    time.sleep(0.5)
    scale(db, "dl", 1)
    out, err = q.communicate(timeout=120)
    check(q.returncode == 0 and out.split() == ["n,s", "6000,%d" % sum(range(1, 6001))],
          "query through the scale-in: %r %r" % (out, err))
    rel = wait_until(lambda: [e for e in db.rows("SHOW SERVICE EVENTS") if e["event"] == "instance_released"
                              and len([1 for x in db.instances("dl")]) == 1], 30, "releases")
    check(all("no running job, nothing in flight" in e["reason"] for e in rel), "released for another reason: %r" % rel)
    # the service's own state follows: ready again, not left "starting" by the ALTER
    wait_until(lambda: db.service("dl")["state"] == "ready", 10, "the service ready after the scale-in")


def test_scale_in_during_checkpoint_and_restore(db):
    """Scale-in while the job checkpoints (every 100 ms) and while it
    restores after kill -9: every row once, and the hold does not outlive a
    job that restarts."""
    setup(db, instances=3)
    jid = start_job(db, interval="100ms")
    wait_until(lambda: len(read_trace(db)) > 20, 30, "output to flow")
    scale(db, "dl", 2)  # during checkpoints: one every 100 ms
    time.sleep(1.0)
    pid = job_pid(db, jid)
    os.kill(pid, signal.SIGKILL)
    scale(db, "dl", 1)  # during the restore
    wait_until(lambda: (job(db, jid) or {}).get("restarts") == "1" and int(job(db, jid)["pid"]) != pid
               and alive(int(job(db, jid)["pid"])), 30, "the job restarted")
    n0 = len(read_trace(db))
    wait_until(lambda: len(read_trace(db)) > n0 + 20, 30, "output to flow after the restore")
    wait_until(lambda: len(db.instances("dl")) == 1, 90, "the withdrawn instances released")
    stop_job(db, jid)
    check_exactly_once_prefix(db)


def test_kill_new_instance_before_ready(db):
    """kill -9 of an instance that is still starting: it is restarted, the
    job goes on without a restart and loses nothing."""
    setup(db, extra=", init_ms = 1500")  # a slow model load: instances start slowly
    jid = start_job(db)
    wait_until(lambda: len(read_trace(db)) > 20, 30, "output to flow")
    db.run("ALTER SERVICE dl SET (instances = 2)")
    new = wait_until(lambda: [i for i in db.instances("dl") if i["state"] == "starting" and int(i["pid"]) > 0],
                     30, "the new instance starting")
    os.kill(int(new[0]["pid"]), signal.SIGKILL)
    wait_until(lambda: ready(db, "dl", 2), 60, "two ready instances after the restart")
    ins = [i for i in db.instances("dl") if i["instance"] == "1"]
    check(ins and ins[0]["restarts"] == "1", "the killed instance restarted once: %r" % ins)
    time.sleep(1.0)
    end = stop_job(db, jid)
    check(end["restarts"] == "0", "the job restarted: %r" % end)
    check_exactly_once_prefix(db)


def test_two_jobs_one_service(db):
    """Two jobs share a service scaled 1 -> 3 -> 1: both keep running, each
    sink has every row once, and instances are released only after both
    jobs checkpointed."""
    setup(db, tables=("out", "out2"))
    j1 = start_job(db, table="out", trace="t1.txt")
    j2 = start_job(db, table="out2", trace="t2.txt", interval="2s")
    wait_until(lambda: len(read_trace(db, "t1.txt")) > 10 and len(read_trace(db, "t2.txt")) > 10, 30,
               "output of both jobs")
    time.sleep(1.5)
    before = (rate(read_trace(db, "t1.txt"), time.time() - 1.5, time.time()) +
              rate(read_trace(db, "t2.txt"), time.time() - 1.5, time.time()))
    scale(db, "dl", 3)
    time.sleep(0.7)
    t0 = time.time()
    time.sleep(2.0)
    after = rate(read_trace(db, "t1.txt"), t0, time.time()) + rate(read_trace(db, "t2.txt"), t0, time.time())
    print("  two jobs: %.0f rows/s on 1 instance, %.0f on 3" % (before, after))
    check(after > 2.0 * before, "throughput of both jobs did not follow: %.0f -> %.0f" % (before, after))
    scale(db, "dl", 1)
    rel = wait_until(lambda: [e for e in db.rows("SHOW SERVICE EVENTS") if e["event"] == "instance_released"],
                     30, "a release")
    # j2 checkpoints every 2 s: no release before its next checkpoint after the withdrawal
    check("2 running jobs checkpointed" in rel[0]["reason"], "released for another reason: %r" % rel)
    for jid, t in ((j1, "out"), (j2, "out2")):
        end = stop_job(db, jid)
        check(end["restarts"] == "0", "job %d restarted: %r" % (jid, end))
        check_exactly_once_prefix(db, t)


if __name__ == "__main__":
    sys.exit(harness.run_tests({n: f for n, f in globals().items() if n.startswith("test_")}, sys.argv,
                               "rosql-scale-"))

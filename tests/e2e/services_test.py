#!/usr/bin/env python3
"""End-to-end tests of services, as a user drives them from the shell.

Every statement runs as its own `rosql DBFILE -c ...` process, so these also
check that the live state the coordinator writes is visible from another
process.  Each test uses its own database in a temporary directory; removing
the directory makes the coordinator stop its instances and exit, and the
tests kill whatever is left of their processes at the end.

  services_test.py ROSQL BUILD_DIR [TEST...]
"""
import csv
import os
import signal
import subprocess
import sys
import time

import harness
from harness import Failure, alive, check, ready, wait_until  # noqa: F401

def datagen(db, rows):
    db.run("CREATE TABLE g (id bigint) WITH (connector = 'datagen', rows = %d)" % rows)


# ---------------------------------------------------------------- tests

def test_lifecycle_and_query(db):
    datagen(db, 100000)
    db.run("CREATE SERVICE e USING 'builtin:echo' WITH (instances = 2, max_batch = 512)")
    ins = wait_until(lambda: ready(db, "e", 2), 30, "two ready instances")
    pids = [int(i["pid"]) for i in ins]
    check(all(alive(p) for p in pids), "instance processes alive: %r" % pids)
    check(all(i["endpoint"].startswith("ipc://") for i in ins), "ipc endpoints: %r" % ins)
    check(db.service("e")["state"] == "ready", "service state ready")
    db.run("CREATE FUNCTION ident(bigint) RETURNS bigint SERVICE e")
    plan = db.run("EXPLAIN SELECT id, ident(id) FROM g").stdout
    check("Proxy ident (service=e)" in plan, "EXPLAIN shows the proxy:\n" + plan)
    r = db.rows("SELECT count(*) AS n, sum(ident(id)) AS s, count(*) FILTER (WHERE ident(id) = id) AS same FROM g")[0]
    check(r == {"n": "100000", "s": str(sum(range(1, 100001))), "same": "100000"}, "query result %r" % r)
    # requests were spread over both instances (least outstanding routing)
    served = wait_until(lambda: [int(i["requests"]) for i in db.instances("e")
                                 if int(i["requests"]) > 0] if
                        sum(int(i["rows"]) for i in db.instances("e")) >= 100000 else None, 10,
                        "counters written to the catalog")
    check(len(served) == 2, "both instances served requests: %r" % served)
    # ordered output: the proxy keeps input order
    rows = db.rows("SELECT id, ident(id) AS v FROM g LIMIT 2000")
    check([int(x["id"]) for x in rows] == list(range(1, 2001)), "input order kept")
    check(all(x["id"] == x["v"] for x in rows), "values right")
    p = db.run("DROP SERVICE e", ok=False)
    check(p.returncode != 0 and "depend" in p.stderr, "RESTRICT refuses: %s" % p.stderr)
    db.run("DROP FUNCTION ident")
    db.run("DROP SERVICE e")
    check(db.instances("e") == [], "no instance rows after DROP")
    check(not any(alive(p) for p in pids), "instances stopped after DROP SERVICE")


def lane_threads(pid):
    """Doorbell-lane threads (service/lane.h) running in process pid."""
    n = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                n += f.read().strip() == "rosd:lane"
        except OSError:
            pass
    return n


def kill_instance_mid_query(db, rows, delay_ms, batch, shm):
    datagen(db, rows)
    db.run("CREATE SERVICE d USING 'builtin:delay' WITH (instances = 2, delay_ms = %d, max_batch = %d)"
           % (delay_ms, batch))
    ins = wait_until(lambda: ready(db, "d", 2), 30, "two ready instances")
    victim, other = int(ins[0]["pid"]), int(ins[1]["pid"])
    db.run("CREATE FUNCTION slow(bigint) RETURNS bigint SERVICE d WITH (max_retries = 5, max_batch = %d)" % batch)
    # A plain SELECT, its rows to a file: a CREATE TABLE AS would hold the
    # database's write lock, and the instances' counters that show progress
    # would not reach the catalog until it ended.
    out_path = os.path.join(db.tmp, "out.csv")
    out_file = open(out_path, "w")
    q = subprocess.Popen([harness.ROSQL, db.path, "-q", "--csv", "-c", "SELECT id, slow(id) AS v FROM g"],
                         stdout=out_file, stderr=subprocess.PIPE, text=True, cwd=db.tmp)
    # kill once the query is well under way
    wait_until(lambda: sum(int(i["rows"]) for i in db.instances("d")) > rows // 5, 30, "the query to be under way")
    if shm:
        # the parts are posted into doorbell lanes, one thread each in the instances
        wait_until(lambda: any(lane_threads(p) for p in (victim, other)) or q.poll() is not None, 10,
                   "doorbell lanes")
        check(any(lane_threads(p) for p in (victim, other)), "the shell opened doorbell lanes")
    check(q.poll() is None, "the query is still running when the instance is killed")
    os.kill(victim, signal.SIGKILL)
    _, err = q.communicate(timeout=120)
    out_file.close()
    check(q.returncode == 0, "query survived the kill: %s" % err)
    if shm:
        # the surviving instance read the batches from the shell's memory
        with open("/proc/%d/maps" % other) as f:
            check("rosql-svc" in f.read(), "batches of %d rows went through shared memory" % batch)
    with open(out_path) as f:
        got = list(csv.DictReader(f))
    ids = [int(r["id"]) for r in got]
    wrong = [r for r in got if r["v"] != r["id"]]
    check(len(got) == rows and sorted(ids) == list(range(1, rows + 1)) and not wrong,
          "every row answered exactly once with the right value: %d rows, %d distinct, %d wrong (%r)"
          % (len(got), len(set(ids)), len(wrong), wrong[:3]))
    ins = wait_until(lambda: (lambda x: x if x and int(x[0]["pid"]) != victim else None)(ready(db, "d", 2)), 30,
                     "the killed instance to be back")
    i0 = ins[0]
    check(int(i0["pid"]) != victim and alive(int(i0["pid"])), "restarted with a new pid")
    check(int(i0["restarts"]) >= 1, "the restart is counted: %r" % i0)
    check(int(ins[1]["restarts"]) == 0, "the other instance was not touched: %r" % ins[1])
    drop(db, "d", ["slow"])


def test_kill_instance_mid_query(db):
    kill_instance_mid_query(db, 150000, 10, 256, False)


def test_kill_instance_mid_query_shm(db):
    """The same with batches of 4096 bigints (frames over 32 KiB), which go
    to the instances through shared memory and doorbell lanes."""
    kill_instance_mid_query(db, 400000, 60, 4096, True)


def test_crash_loop_and_no_ready_instance(db):
    # a file that is not a library: every start fails, the service ends failed
    bogus = os.path.join(db.tmp, "notalib.so")
    with open(bogus, "w") as f:
        f.write("not an ELF file\n")
    db.run("CREATE SERVICE broken USING '%s:handler' WITH (instances = 1)" % bogus)
    svc = wait_until(lambda: (lambda s: s if s and s["state"] == "failed" else None)(db.service("broken")), 30,
                     "the service to be marked failed")
    check("could not load library" in (svc["last_error"] or ""), "reason shown: %r" % svc)
    db.run("CREATE FUNCTION b(bigint) RETURNS bigint SERVICE broken WITH (timeout_ms = 1500)")
    t0 = time.time()
    p = db.run("SELECT b(1)", ok=False, timeout=60)
    took = time.time() - t0
    check(p.returncode != 0, "query fails")
    check("no ready instance" in p.stderr, "clear error: %s" % p.stderr)
    check(took < 15, "fails after its timeout, not later (%.1fs)" % took)
    # ALTER SERVICE asks for a new try: it fails again, with the reason
    drop(db, "broken", ["b"])


def test_restart_with_backoff_and_counters(db):
    db.run("CREATE SERVICE e2 USING 'builtin:echo'")
    ins = wait_until(lambda: ready(db, "e2", 1), 30, "a ready instance")
    pid = int(ins[0]["pid"])
    os.kill(pid, signal.SIGKILL)
    ins = wait_until(lambda: (lambda x: x if x and x[0]["pid"] != str(pid) else None)(ready(db, "e2", 1)), 30,
                     "the instance to be restarted")
    check(alive(int(ins[0]["pid"])), "new process alive")
    check(ins[0]["restarts"] == "1", "one restart counted: %r" % ins[0])
    drop(db, "e2", [])


def test_scale_and_remote_worker(db):
    db.run("CREATE SERVICE r USING 'builtin:echo' WITH (instances = 1)")
    wait_until(lambda: ready(db, "r", 1), 30, "a ready instance")
    db.run("ALTER SERVICE r SET (instances = 2)")
    wait_until(lambda: ready(db, "r", 2), 30, "two ready instances after ALTER")
    db.run("ALTER SERVICE r SET (instances = 1)")
    wait_until(lambda: ready(db, "r", 1), 30, "one instance after scaling in")
    # a worker started by hand on tcp registers with the coordinator
    rosd = os.path.join(harness.BUILD, "service", "rosd")
    port = 20000 + os.getpid() % 20000
    run_dir = db.path + ".run"
    w = subprocess.Popen([rosd, "worker", "--handler", "builtin:echo", "--listen", "tcp://127.0.0.1:%d" % port,
                          "--register", "ipc://%s/coord.ctl" % run_dir, "--service", "r"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: [i for i in db.instances("r") if i["endpoint"].startswith("tcp://") and
                            i["state"] == "ready"], 30, "the remote worker to be ready")
        db.run("CREATE FUNCTION rf(bigint) RETURNS bigint SERVICE r")
        datagen(db, 20000)
        r = db.rows("SELECT count(*) FILTER (WHERE rf(id) = id) AS ok FROM g")[0]
        check(r["ok"] == "20000", "query through local and remote instances: %r" % r)
    finally:
        w.send_signal(signal.SIGTERM)
        w.wait(timeout=30)
    wait_until(lambda: not [i for i in db.instances("r") if i["endpoint"].startswith("tcp://")], 30,
               "the remote worker to deregister")
    drop(db, "r", ["rf"])


def test_c_function_calls_service(db):
    # getRosClient: a C function reaches the service "echo" through its context
    datagen(db, 5000)
    db.run("CREATE SERVICE echo USING 'builtin:echo'")
    wait_until(lambda: ready(db, "echo", 1), 30, "a ready instance")
    lib = os.path.join(harness.BUILD, "examples", "librosql_example_client.so")
    db.run("CREATE FUNCTION via_echo(bigint) RETURNS bigint LANGUAGE c AS '%s', 'via_echo_udf'" % lib)
    r = db.rows("SELECT count(*) FILTER (WHERE via_echo(id) = id + 1) AS ok, sum(via_echo(id)) AS s FROM g")[0]
    check(r == {"ok": "5000", "s": str(sum(range(2, 5002)))}, "results through the service: %r" % r)
    served = sum(int(i["rows"]) for i in wait_until(
        lambda: (lambda x: x if sum(int(i["rows"]) for i in x) >= 10000 else None)(db.instances("echo")), 10,
        "counters"))
    check(served >= 10000, "the service computed the rows: %d" % served)
    db.run("DROP FUNCTION via_echo")
    db.run("DROP SERVICE echo")
    # without the service: a clear error, not a crash
    db.run("CREATE FUNCTION via_echo(bigint) RETURNS bigint LANGUAGE c AS '%s', 'via_echo_udf'" % lib)
    p = db.run("SELECT via_echo(1)", ok=False)
    check(p.returncode != 0 and "echo" in p.stderr, "error names the service: %s" % p.stderr)


def coordinator_pids(db):
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if b"coordinator" in cmd and db.path.encode() in cmd and alive(int(pid)):
                pids.append(int(pid))
    return pids


def test_coordinator_crash_adopts_instances(db):
    datagen(db, 10000)
    db.run("CREATE SERVICE a USING 'builtin:echo' WITH (instances = 2)")
    before = sorted(int(i["pid"]) for i in wait_until(lambda: ready(db, "a", 2), 30, "two ready instances"))
    coord = coordinator_pids(db)
    check(len(coord) == 1, "one coordinator: %r" % coord)
    os.kill(coord[0], signal.SIGKILL)
    wait_until(lambda: not alive(coord[0]), 10, "the coordinator to die")
    check(all(alive(p) for p in before), "instances survive the coordinator")
    # the next rosql starts a new coordinator, which adopts the running instances
    db.run("CREATE FUNCTION af(bigint) RETURNS bigint SERVICE a")
    r = db.rows("SELECT count(*) FILTER (WHERE af(id) = id) AS ok FROM g")[0]
    check(r["ok"] == "10000", "query after the coordinator crash: %r" % r)
    new = coordinator_pids(db)
    check(len(new) == 1 and new[0] != coord[0], "a new coordinator: %r" % new)
    after = sorted(int(i["pid"]) for i in wait_until(lambda: ready(db, "a", 2), 30, "ready instances"))
    check(after == before, "the same instance processes, no model reloaded: %r -> %r" % (before, after))
    drop(db, "a", ["af"])
    check(not any(alive(p) for p in before), "adopted instances stop on DROP SERVICE")


def test_autoscaling_burst(db):
    """A burst of requests raises the instance count to the bound; it falls
    back after the burst, one step per scale_down_delay, without flapping;
    every decision is an event with its measurement."""
    datagen(db, 3000)
    db.run("CREATE SERVICE dl USING 'builtin:delay' WITH (delay_ms = 40, max_batch = 16, min_instances = 1, "
           "max_instances = 3, target_inflight = 1, scale_up_delay = '300ms', scale_down_delay = '800ms')")
    db.run("CREATE FUNCTION slow(bigint) RETURNS bigint IMMUTABLE SERVICE dl WITH (max_batch = 16)")
    wait_until(lambda: ready(db, "dl", 1), 30, "one ready instance")
    out = db.rows("SELECT count(*) AS n, sum(slow(id)) AS s FROM g")
    check(out[0]["n"] == "3000" and out[0]["s"] == str(sum(range(1, 3001))), "wrong result %r" % out)
    # min = 1 after the burst, through scale-downs of one instance each
    wait_until(lambda: ready(db, "dl", 1) and db.service("dl")["instance"] == "desired 1", 30, "back to 1")
    ev = [e for e in db.rows("SHOW SERVICE EVENTS") if e["service"] == "dl" and e["event"].startswith("autoscale")]
    kinds = [e["event"] for e in ev]
    check("autoscale_up" in kinds, "no scale-up: %r" % ev)
    check(max(int(e["instances"]) for e in ev) == 3, "did not reach max_instances: %r" % ev)
    # no flapping: every scale-up comes before every scale-down
    first_down = kinds.index("autoscale_down")
    check("autoscale_up" not in kinds[first_down:], "flapping: %r" % kinds)
    check([int(e["instances"]) for e in ev[first_down:]] == [2, 1], "not one step at a time: %r" % ev)
    check(all("requests in flight or queued" in e["reason"] for e in ev), "no measurement in %r" % ev)
    # min = max: a fixed count, no decisions
    db.run("ALTER SERVICE dl SET (min_instances = 2, max_instances = 2)")
    wait_until(lambda: ready(db, "dl", 2), 30, "fixed at 2")
    db.run("SELECT sum(slow(id)) FROM g")
    time.sleep(1.2)
    check(len(ready(db, "dl", 2) or []) == 2, "min = max did not stay fixed")


def drop(db, service, functions):
    for f in functions:
        db.run("DROP FUNCTION %s" % f)
    db.run("DROP SERVICE %s" % service)


# ---------------------------------------------------------------- driver

if __name__ == "__main__":
    sys.exit(harness.run_tests({n: f for n, f in globals().items() if n.startswith("test_")}, sys.argv,
                               "rosql-svc-"))

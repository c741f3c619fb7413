"""Shared pieces of the end-to-end tests that drive rosql as a user does:
each statement runs as its own `rosql DBFILE -c ...` process, in a database
of a temporary directory that the driver removes (and whose processes it
kills) after each test.
"""
import csv
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROSQL = BUILD = None  # set by run_tests


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Db:
    def __init__(self, tmp):
        self.tmp = tmp
        self.path = os.path.join(tmp, "t.db")

    def run(self, stmt, timeout=120, ok=True):
        p = subprocess.run([ROSQL, self.path, "-q", "--csv", "-c", stmt], capture_output=True, text=True,
                           timeout=timeout, cwd=self.tmp)
        if ok and p.returncode != 0:
            raise Failure("statement failed: %s\n%s%s" % (stmt, p.stdout, p.stderr))
        return p

    def rows(self, stmt, **kw):
        out = self.run(stmt, **kw).stdout
        return list(csv.DictReader(io.StringIO(out)))

    def instances(self, service):
        return [r for r in self.rows("SHOW SERVICES") if r["service"] == service and r["instance"].isdigit()]

    def service(self, service):
        for r in self.rows("SHOW SERVICES"):
            if r["service"] == service and not r["instance"].isdigit():
                return r
        return None


def wait_until(fn, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise Failure("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


def ready(db, service, n):
    ins = db.instances(service)
    return ins if len(ins) == n and all(i["state"] == "ready" for i in ins) else None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False



def kill_leftovers(tmp):
    """Kills processes whose command line names tmp (instances, coordinator)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if tmp in cmd and "rosd" in cmd:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def run_tests(tests, argv, prefix):
    """Runs tests (name -> fn(db)) named in argv[3:] (all by default) with
    ROSQL = argv[1], BUILD = argv[2]; returns the exit status."""
    global ROSQL, BUILD
    ROSQL, BUILD = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    names = argv[3:] or list(tests)
    failed = 0
    for name in names:
        tmp = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        t0 = time.time()
        try:
            tests[name](Db(tmp))
            print("ok   %s (%.1fs)" % (name, time.time() - t0))
        except Exception as e:  # noqa: BLE001 (report and go on)
            failed += 1
            print("FAIL %s (%.1fs): %s" % (name, time.time() - t0, e))
            if not isinstance(e, Failure):
                traceback.print_exc()
            for log in sorted(os.listdir(tmp + "/t.db.run")) if os.path.isdir(tmp + "/t.db.run") else []:
                if log.endswith(".log"):
                    with open(os.path.join(tmp, "t.db.run", log)) as f:
                        print("---- %s\n%s" % (log, f.read()[-3000:]))
        finally:
            subprocess.run(["rm", "-rf", tmp])
            time.sleep(0.3)
            kill_leftovers(tmp)
        sys.stdout.flush()
    print("%d of %d failed" % (failed, len(names)))
    return 1 if failed else 0

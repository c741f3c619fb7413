#!/usr/bin/env python3
"""pty_shell.py: drives the rosql shell under a pseudo-terminal as a person would.

Usage: pty_shell.py PATH/TO/rosql

Starts rosql on a fresh database file, types a multi-line statement, runs
meta-commands, uses tab completion, presses Ctrl-C at the prompt and during
a running statement, makes an error, quits with Ctrl-D, and checks what
appeared on the screen (and that the history file was written).  Python
standard library only (pty + select).  Exit status 0 on success, 1 on failure.
"""
import os
import pty
import re
import select
import signal
import sys
import tempfile
import termios
import time

TIMEOUT = 15.0
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\x07")


class Shell:
    """A child process on a pty with a cursor into its screen output."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.raw = b""
        self.seen = 0  # bytes of the cleaned output already matched

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if not data:
            raise EOFError
        self.raw += data
        return True

    def text(self):
        cleaned = ANSI.sub(b"", self.raw).replace(b"\r", b"")
        return cleaned.decode("utf-8", "replace")

    def expect(self, pattern, timeout=TIMEOUT):
        """Waits until pattern (a regex) appears after the last match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.text(), self.seen)
            if m:
                self.seen = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %r; screen after last match:\n%s"
                                     % (pattern, self.text()[self.seen:]))
            try:
                self._read(min(left, 0.5))
            except EOFError:
                raise AssertionError("rosql exited while waiting for %r; screen:\n%s"
                                     % (pattern, self.text()[self.seen:]))

    def settle(self, quiet=0.3):
        """Reads until nothing arrives for `quiet` seconds."""
        try:
            while self._read(quiet):
                pass
        except EOFError:
            pass

    def wait_raw(self, timeout=TIMEOUT):
        """Waits until the shell has put the terminal in raw mode, which
        libedit does when it starts reading a line.  A key typed before that
        meets the line discipline in canonical mode, where a Ctrl-D on an
        empty line is an end-of-file that the switch to raw mode loses (the
        shell then never sees it: the flake this guards against)."""
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.fd)[3] & termios.ICANON:
            if time.monotonic() > deadline:
                raise AssertionError("the terminal never left canonical mode (is rosql reading a line?)")
            time.sleep(0.01)

    def send(self, s, reading=True):
        """Types s; reading: the shell is at its prompt (wait for raw mode
        first).  False while a statement runs, when keys such as Ctrl-C
        must reach the line discipline in cooked mode."""
        if reading:
            self.wait_raw()
        os.write(self.fd, s.encode("utf-8"))

    def type_line(self, s):
        self.send(s + "\r")

    def wait_exit(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._read(0.2)
            except EOFError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        raise AssertionError("rosql did not exit within %.0f s; screen after last match:\n%s\n%s"
                             % (timeout, self.text()[self.seen:], self.threads()))

    def threads(self):
        """Where the child's threads are: each thread's name, state and kernel
        wait channel, and a gdb backtrace when gdb is installed."""
        out = []
        try:
            base = "/proc/%d/task" % self.pid
            for tid in sorted(os.listdir(base)):
                def rd(name):
                    try:
                        with open("%s/%s/%s" % (base, tid, name)) as f:
                            return f.read().strip()
                    except OSError:
                        return "?"
                out.append("%s %s state=%s wchan=%s" % (tid, rd("comm"), rd("stat").split(") ")[-1][:1],
                                                      rd("wchan")))
            import shutil
            import subprocess
            if shutil.which("gdb"):
                p = subprocess.run(["gdb", "-p", str(self.pid), "-batch", "-nx", "-ex", "thread apply all bt"],
                                   capture_output=True, text=True, timeout=60)
                out.append("gdb:\n" + (p.stdout or p.stderr)[-12000:])
        except Exception as e:  # diagnostics only: never hide the failure
            out.append("(thread dump failed: %s)" % e)
        return "threads:\n" + "\n".join(out)

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 1
    rosql = os.path.abspath(sys.argv[1])
    tmp = tempfile.TemporaryDirectory(prefix="rosql_pty_")
    db = os.path.join(tmp.name, "shop.db")
    hist = os.path.join(tmp.name, "history")
    env = dict(os.environ)
    # libedit never frees the names given to el_set(EL_ADDFN) (wcsdup'd);
    # keep that out of a sanitizer build's exit status.
    supp = os.path.join(tmp.name, "lsan.supp")
    with open(supp, "w") as f:
        f.write("leak:wcsdup\n")
    env["LSAN_OPTIONS"] = ":".join(filter(None, [env.get("LSAN_OPTIONS"), "suppressions=" + supp]))
    env.update({"TERM": "xterm", "LC_ALL": "C.UTF-8", "ROSQL_HISTORY": hist, "HOME": tmp.name,
                "COLUMNS": "100", "LINES": "40"})
    sh = Shell([rosql, db], env)
    step = "start"
    try:
        step = "prompt named after the database file"
        sh.expect(r"shop=> ")

        step = "create a table"
        sh.type_line("CREATE TABLE measurements (id int, label text, score float8);")
        sh.expect(r"CREATE TABLE\n")
        sh.expect(r"shop=> ")

        step = "multi-line statement with continuation prompt"
        sh.type_line("INSERT INTO measurements")
        sh.expect(r"shop-> ")
        sh.type_line("VALUES (1, 'one', 1.5),")
        sh.expect(r"shop-> ")
        sh.type_line("       (22, 'twenty-two', NULL);")
        sh.expect(r"INSERT 0 2\n")
        sh.expect(r"shop=> ")

        step = "aligned table output"
        sh.type_line("SELECT id, label, score FROM measurements ORDER BY id;")
        sh.expect(r" id \|   label    \| score \n"
                  r"----\+------------\+-------\n"
                  r"  1 \| one        \|   1.5\n"
                  r" 22 \| twenty-two \| *\n"
                  r"\(2 rows\)\n\n")
        sh.expect(r"shop=> ")

        step = "meta-command \\x and expanded output"
        sh.type_line("\\x on")
        sh.expect(r"Expanded display is on\.\n")
        sh.type_line("SELECT id, label FROM measurements WHERE id = 22;")
        sh.expect(r"-\[ RECORD 1 \]-*\nid    \| 22\nlabel \| twenty-two\n")
        sh.type_line("\\x off")
        sh.expect(r"Expanded display is off\.\n")

        step = "meta-command \\dt lists the table"
        sh.type_line("\\dt")
        sh.expect(r"measurements")
        sh.expect(r"\(1 row\)\n")
        sh.expect(r"shop=> ")

        step = "tab completion of a keyword and a table name"
        sh.send("sel\t")
        sh.expect(r"select ")
        sh.send("count(*) FROM meas\t")
        sh.expect(r"measurements ")
        sh.type_line(";")
        sh.expect(r" count \n-------\n +2\n\(1 row\)\n")
        sh.expect(r"shop=> ")

        step = "Ctrl-C at the prompt discards the statement being typed"
        sh.type_line("SELECT 'never run'")
        sh.expect(r"shop-> ")
        sh.send("FROM nowhere")
        sh.settle()
        sh.send("\x03")
        sh.expect(r"shop=> ")  # back to a fresh statement, not "shop->"
        sh.type_line("SELECT 41 + 1 AS answer;")
        sh.expect(r" answer \n--------\n +42\n\(1 row\)\n")
        if "never run" in sh.text()[sh.seen:] or "nowhere" in sh.text()[sh.seen:]:
            raise AssertionError("the interrupted statement ran")

        step = "errors are reported with a caret and the shell goes on"
        sh.type_line("SELECT * FORM measurements;")
        sh.expect(r"ERROR:  syntax error at or near \"FORM\"\nLINE 1: SELECT \* FORM measurements;\n"
                  r" {17}\^\n")
        sh.expect(r"shop=> ")

        step = "Ctrl-C during a running statement cancels it"
        # A statement that never ends by itself: an unbounded, rate-limited
        # datagen table.
        sh.type_line("CREATE TABLE ticks (n bigint) WITH (connector = 'datagen', rows_per_second = 100);")
        sh.expect(r"CREATE TABLE\n")
        sh.expect(r"shop=> ")
        sh.type_line("SELECT n FROM ticks;")
        sh.settle(1.0)
        sh.send("\x03", reading=False)  # the statement runs: cooked mode, SIGINT
        sh.expect(r"ERROR:  canceling statement due to user request\n", timeout=30)
        sh.expect(r"shop=> ")
        sh.type_line("SELECT 7 AS still_alive;")
        sh.expect(r"still_alive \n-+\n +7\n\(1 row\)\n")
        sh.expect(r"shop=> ")

        step = "Ctrl-D at an empty prompt quits"
        sh.send("\x04")
        code = sh.wait_exit()
        if code != 0:
            raise AssertionError("exit status %d" % code)

        step = "history file written"
        with open(hist, encoding="utf-8", errors="replace") as f:
            saved = f.read()
        if "measurements" not in saved:
            raise AssertionError("history file lacks the statements:\n" + saved)
    except AssertionError as e:
        sys.stderr.write("pty_shell: FAILED at step '%s': %s\n" % (step, e))
        sh.kill()
        return 1
    finally:
        sh.kill()
        tmp.cleanup()
    print("pty_shell: all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""End-to-end tests: run .sql cases through the rosql shell, compare with .out.

Each case tests/e2e/cases/NAME.sql is split into statements (one per
`;` at the end of a line).  Every statement runs as its own
`rosql DBFILE -c STATEMENT` on one database file per case, so the cases also
check that the catalog survives reopening.  The transcript (statement, then
its stdout and stderr) is compared with NAME.out.

  run_sql_tests.py ROSQL BUILD_DIR [CASE...]   # compare
  run_sql_tests.py --update ROSQL BUILD_DIR    # rewrite the .out files

Statements run in the case's temporary directory, where `examples` links to
BUILD_DIR/examples, so a case names the example library by the relative path
examples/librosql_example_udf.so and its output does not depend on where the
build lives.  @TMP@ in a case is replaced by that directory (and the directory
by @TMP@ in the output).  Exit status: 0 all passed, 1 some failed.
"""
import os
import subprocess
import sys
import tempfile
import difflib

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")


def statements(text):
    out, cur = [], []
    for line in text.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("--")):
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(cur))
            cur = []
    if cur:
        out.append("\n".join(cur))
    return out


def run_case(rosql, build, name):
    with open(os.path.join(CASES, name + ".sql")) as f:
        text = f.read()
    # a fixed root keeps path lengths, and so column widths, the same everywhere
    with tempfile.TemporaryDirectory(prefix="rosql-e2e-", dir="/tmp") as tmp:
        text = text.replace("@TMP@", tmp)
        os.symlink(os.path.join(build, "examples"), os.path.join(tmp, "examples"))
        db = os.path.join(tmp, "test.db")
        transcript = []
        for st in statements(text):
            try:
                p = subprocess.run([rosql, db, "-c", st], capture_output=True, text=True, timeout=60, cwd=tmp)
                status = p.returncode
                body = p.stdout + p.stderr
            except subprocess.TimeoutExpired:
                status, body = "timeout", ""
            transcript.append(st + "\n" + body + ("" if status == 0 else "[exit %s]\n" % status))
        return "\n".join(transcript).replace(tmp, "@TMP@")


def main(argv):
    update = False
    if argv and argv[0] == "--update":
        update, argv = True, argv[1:]
    rosql, build = os.path.abspath(argv[0]), os.path.abspath(argv[1])
    names = argv[2:] or sorted(f[:-4] for f in os.listdir(CASES) if f.endswith(".sql"))
    failed = 0
    for name in names:
        got = run_case(rosql, build, name)
        exp_path = os.path.join(CASES, name + ".out")
        if update:
            with open(exp_path, "w") as f:
                f.write(got)
            print("updated", name)
            continue
        try:
            with open(exp_path) as f:
                exp = f.read()
        except FileNotFoundError:
            exp = ""
        if got == exp:
            print("ok  ", name)
        else:
            failed += 1
            print("FAIL", name)
            sys.stdout.writelines(difflib.unified_diff(exp.splitlines(True), got.splitlines(True),
                                                       "expected/" + name, "actual/" + name))
    print("%d passed, %d failed" % (len(names) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

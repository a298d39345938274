"""Run tests and print one line per test: `PASS name`, `FAIL name` or
`SKIP name: reason`, then the failures' details indented, then a summary
line `summary (LABEL): N passed, N failed, N skipped`. Exits 1 if
anything failed or nothing ran. Standard library only.

    runner.py [--label L] integration FILE.py...
        unittest modules (tests/integration/test_*.py)
    runner.py [--label L] unit BUILD_DIR
        the unit test programs meson registered in BUILD_DIR (from `meson
        introspect --tests`); each prints its own PASS/FAIL lines; a program
        that exits non-zero without a FAIL line (a crash, a sanitizer
        report) counts as one failure. With --registries, a plain and a
        basic-auth registry holding the fixture `two` are started for them
        (OCICACHE_TEST_REGISTRY, OCICACHE_TEST_REPO, OCICACHE_TEST_AUTH_*).

--label prefixes every test name (`L:name`), to tell two builds apart.
"""

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import traceback
import unittest


class Tally:
    def __init__(self, label):
        self.label = label + ":" if label else ""
        self.passed = self.failed = self.skipped = 0
        self.details = []

    def line(self, kind, name, reason=None):
        name = self.label + name
        if kind == "PASS":
            self.passed += 1
            print("PASS %s" % name, flush=True)
        elif kind == "FAIL":
            self.failed += 1
            print("FAIL %s" % name, flush=True)
        else:
            self.skipped += 1
            reason = " ".join((reason or "no reason given").split())
            print("SKIP %s: %s" % (name, reason), flush=True)

    def detail(self, name, text):
        self.details.append((self.label + name, text))

    def finish(self):
        for name, text in self.details:
            print("---- %s" % name)
            for ln in text.rstrip("\n").splitlines():
                print("    " + ln)
        print("summary%s %d passed, %d failed, %d skipped" % (
            " (" + self.label[:-1] + "):" if self.label else ":",
            self.passed, self.failed, self.skipped), flush=True)
        if self.failed or self.passed + self.failed == 0:
            return 1
        return 0


class LineResult(unittest.TestResult):
    def __init__(self, tally):
        super().__init__()
        self.tally = tally

    @staticmethod
    def name(test):
        # module.Class.method
        return test.id()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.tally.line("PASS", self.name(test))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.tally.line("FAIL", self.name(test))
        self.tally.detail(self.name(test), self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        # Errors in setUpClass/tearDownClass arrive with a placeholder test.
        self.tally.line("FAIL", self.name(test))
        self.tally.detail(self.name(test), self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.tally.line("SKIP", self.name(test), reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.tally.line("PASS", self.name(test))

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.tally.line("FAIL", self.name(test))
        self.tally.detail(self.name(test), "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            # A failed subtest fails its test; report it under its own name.
            name = self.name(subtest)
            self.tally.line("FAIL", name)
            self.tally.detail(name, self._exc_info_to_string(err, test))


def load_module(path):
    name = os.path.splitext(os.path.basename(path))[0]
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def run_integration(tally, files):
    loader = unittest.TestLoader()
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            mod = load_module(path)
        except Exception:
            tally.line("FAIL", name + ": import")
            tally.detail(name + ": import", traceback.format_exc())
            continue
        suite = loader.loadTestsFromModule(mod)
        result = LineResult(tally)
        suite.run(result)


def unit_registries():
    """Registries for the unit tests that want real ones (test_registry):
    a plain one and one with basic auth, each holding the fixture `two`.
    Returns (environment variables, [registries to stop])."""
    import rig
    user, password = "unit", "unit-password"
    plain = rig.Registry()
    started = [plain]
    try:
        plain.push("two", "unit/two:latest")
        auth = rig.Registry(auth=("htpasswd", {user: password}))
        started.append(auth)
        auth.push("two", "unit/two:latest", creds=(user, password))
    except Exception:
        for r in started:
            r.stop()
        raise
    env = {"OCICACHE_TEST_REGISTRY": plain.host,
           "OCICACHE_TEST_REPO": "unit/two:latest",
           "OCICACHE_TEST_AUTH_REGISTRY": auth.host,
           "OCICACHE_TEST_AUTH_REPO": "unit/two:latest",
           "OCICACHE_TEST_AUTH_USERNAME": user,
           "OCICACHE_TEST_AUTH_PASSWORD": password}
    return env, started


def run_unit(tally, build_dir, with_registries):
    extra_env, registries = {}, []
    if with_registries:
        try:
            extra_env, registries = unit_registries()
        except Exception:
            tally.line("FAIL", "unit test registries")
            tally.detail("unit test registries", traceback.format_exc())
    try:
        run_unit_programs(tally, build_dir, extra_env)
    finally:
        for r in registries:
            r.stop()


def run_unit_programs(tally, build_dir, extra_env):
    p = subprocess.run(["meson", "introspect", build_dir, "--tests"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if p.returncode != 0:
        tally.line("FAIL", "meson introspect --tests")
        tally.detail("meson introspect --tests", p.stderr)
        return
    for t in sorted(json.loads(p.stdout), key=lambda t: t["name"]):
        env = dict(os.environ)
        env.update(t.get("env") or {})
        env.update(extra_env)
        name = t["name"]
        try:
            r = subprocess.run(t["cmd"], cwd=t.get("workdir") or None,
                               env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               errors="replace",
                               timeout=t.get("timeout") or 600)
        except subprocess.TimeoutExpired as e:
            tally.line("FAIL", name + ": timed out")
            tally.detail(name, "timed out after %ss" % e.timeout)
            continue
        except OSError as e:
            tally.line("FAIL", name + ": could not run")
            tally.detail(name, str(e))
            continue
        fails = 0
        for ln in r.stdout.splitlines():
            if ln.startswith("PASS "):
                tally.line("PASS", name + "." + ln[5:].strip())
            elif ln.startswith("FAIL "):
                fails += 1
                tally.line("FAIL", name + "." + ln[5:].strip())
            elif ln.startswith("SKIP "):
                rest = ln[5:]
                case, _, reason = rest.partition(":")
                tally.line("SKIP", name + "." + case.strip(), reason.strip())
        if fails:
            tally.detail(name, r.stderr or "(no stderr)")
        elif r.returncode != 0:
            tally.line("FAIL", name + ": exit status %d" % r.returncode)
            tally.detail(name, "exit status %d\nstdout tail:\n%s\nstderr:\n%s"
                         % (r.returncode, r.stdout[-2000:], r.stderr[-8000:]))


def interrupted(signum, frame):
    # KeyboardInterrupt gets through unittest (other exceptions are
    # recorded as errors), and the rig's atexit handlers then stop every
    # registry and server it started.
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="")
    ap.add_argument("--registries", action="store_true",
                    help="unit mode: start registries for the unit tests "
                    "that want real ones (OCICACHE_TEST_* variables)")
    ap.add_argument("mode", choices=["unit", "integration"])
    ap.add_argument("args", nargs="+")
    a = ap.parse_args()
    tally = Tally(a.label)
    if a.mode == "unit":
        run_unit(tally, a.args[0], a.registries)
    else:
        run_integration(tally, a.args)
    return tally.finish()


if __name__ == "__main__":
    sys.exit(main())

"""Tests of the Python SDK (python/ocicache) against a real local registry.

The SDK pulls fixture images (fixtures/build-images.sh) from Debian's
docker-registry over plain HTTP; what it reports is checked against the
CLI's `images --json`, `inspect --json` and `prune --dry-run --json` for
the same cache root (an independent path through the C API), against the
fixture layouts and against the files on disk. The SDK.md example runs as
a subprocess.

The library is $OCICACHE_LIBRARY, else libocicache.so in the build
directory of $OCICACHE_BIN.

Under a sanitizer build (meson's b_sanitize) the library needs the
sanitizer runtime loaded first, which a plain Python process does not do:
the tests then run in one child Python started with LD_PRELOAD of that
runtime, and each test here reports the child's result for it.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import rig

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.join(rig.REPO_ROOT, "python")
sys.path.insert(0, PYTHON_DIR)

import ocicache  # noqa: E402
from ocicache import Image  # noqa: E402

CHILD_ENV = "OCICACHE_SDK_TEST_CHILD"
REPO = "sdk"
REG = None

EXAMPLE = """\
import asyncio
from ocicache import Image

async def main():
    images = await Image.list()
    for image in images:
        print(image.reference, image.layer_count)

asyncio.run(main())
"""


def build_dir():
    return os.path.dirname(os.path.dirname(os.path.abspath(
        rig.ocicache_bin())))


def library_path():
    return os.environ.get("OCICACHE_LIBRARY") or os.path.join(
        build_dir(), "libocicache.so")


os.environ["OCICACHE_LIBRARY"] = library_path()


def sanitizers():
    """b_sanitize of the build ("none" when unknown or not meson's)."""
    try:
        p = subprocess.run(["meson", "introspect", build_dir(),
                            "--buildoptions"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=60)
        for opt in json.loads(p.stdout):
            if opt["name"] == "b_sanitize":
                return opt["value"]
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return "none"


def sanitizer_preload(value):
    """The runtime libraries to LD_PRELOAD for b_sanitize `value`, or
    (None, reason)."""
    libs = []
    for name, lib in (("address", "libasan.so"),
                      ("undefined", "libubsan.so")):
        if name in value.split(","):
            p = subprocess.run(["cc", "-print-file-name=" + lib],
                               stdout=subprocess.PIPE, text=True)
            path = os.path.realpath(p.stdout.strip())
            if not os.path.isfile(path):
                return None, "cannot find %s for b_sanitize=%s" % (lib, value)
            libs.append(path)
    if not libs:
        return None, "b_sanitize=%s has no runtime to preload" % value
    return libs, None


PRELOAD_ENV = "OCICACHE_SDK_TEST_PRELOAD"
if os.environ.get(CHILD_ENV) and os.environ.get("LD_PRELOAD"):
    # The runtime is loaded in this process; the tools it runs (qemu-img,
    # skopeo, the registry) must not get it. Python children that load the
    # library get it back from PRELOAD_ENV.
    os.environ[PRELOAD_ENV] = os.environ.pop("LD_PRELOAD")

SANITIZE = "none" if os.environ.get(CHILD_ENV) else sanitizers()
PROXY = SANITIZE != "none"  # run the tests in a preloaded child
CHILD_RESULTS = None


def run_async(coro):
    return asyncio.run(coro)


def setUpModule():
    global REG, CHILD_RESULTS
    if PROXY:
        CHILD_RESULTS = run_child()
        return
    REG = rig.Registry()
    REG.push("two", REPO + "/two:latest")
    REG.push("multi", REPO + "/multi:latest")


def tearDownModule():
    if REG is not None:
        REG.stop()


# ------------------------------------------------------------ sanitizer child

def run_child():
    """Run this module's tests in a Python with the sanitizer runtime
    preloaded; {Class.method: (status, text)}, or {"*": ("skip", why)}."""
    libs, why = sanitizer_preload(SANITIZE)
    if libs is None:
        return {"*": ("skip", why)}
    out = tempfile.mkdtemp(prefix="ocicache-sdk-child-")
    try:
        results = os.path.join(out, "results.json")
        env = dict(os.environ)
        env[CHILD_ENV] = results
        env["LD_PRELOAD"] = " ".join(libs)
        # CPython keeps its objects at exit, which LeakSanitizer would
        # report as leaks of the interpreter: leaks are not checked here
        # (the C unit tests and the CLI tests check the library's).
        opts = env.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = ":".join(
            [o for o in opts.split(":") if o and
             not o.startswith("detect_leaks=")] + ["detect_leaks=0"])
        p = subprocess.run([sys.executable, os.path.abspath(__file__)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=env, cwd=HERE, timeout=1200)
        try:
            with open(results) as f:
                got = json.load(f)
        except (OSError, ValueError):
            got = {}
        if p.returncode != 0 or not got:
            crash = "child exited %d under b_sanitize=%s:\n%s" % (
                p.returncode, SANITIZE, p.stdout[-6000:])
            got.setdefault("*", ("fail", crash))
            if p.returncode != 0:
                got["*"] = ("fail", crash)
        return {k: tuple(v) for k, v in got.items()}
    finally:
        shutil.rmtree(out, ignore_errors=True)


class _ChildResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.out = {}

    @staticmethod
    def key(test):
        if not isinstance(test, unittest.TestCase):
            return "*"  # a module or class fixture failed
        return ".".join(test.id().split(".")[-2:])

    def addSuccess(self, test):
        self.out[self.key(test)] = ("pass", "")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.out[self.key(test)] = ("fail", self._exc_info_to_string(err,
                                                                    test))

    addError = addFailure

    def addSkip(self, test, reason):
        self.out[self.key(test)] = ("skip", reason)


def proxied(cls):
    """Under a sanitizer build, each test reports the child's result."""
    if not PROXY:
        return cls
    for name in list(vars(cls)):
        if not name.startswith("test"):
            continue

        def report(self, _key="%s.%s" % (cls.__name__, name)):
            res = CHILD_RESULTS or {}
            status, text = res.get(_key) or res.get("*") or (
                "fail", "the child reported nothing for " + _key)
            if status == "skip":
                self.skipTest(text)
            if status == "fail":
                self.fail(text)
        setattr(cls, name, report)
    cls.setUp = lambda self: None
    return cls


# ------------------------------------------------------------ tests

class Base(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.cache = rig.Cache()
        self.addCleanup(self.cache.cleanup)
        self.work = tempfile.mkdtemp(prefix="ocicache-sdk-")
        self.addCleanup(shutil.rmtree, self.work, True)
        # The SDK runs in this process: point its environment at the
        # cache root and the isolated configuration.
        saved = {k: os.environ.get(k) for k in (
            "OCICACHE_ROOT", "HOME", "OCICACHE_CONFIG", "DOCKER_CONFIG",
            "XDG_CACHE_HOME", "XDG_CONFIG_HOME")}

        def restore():
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.addCleanup(restore)
        for k in saved:
            os.environ.pop(k, None)
        for k in ("HOME", "OCICACHE_CONFIG", "DOCKER_CONFIG"):
            os.environ[k] = self.cache.env[k]
        os.environ["OCICACHE_ROOT"] = self.cache.root

    def ref(self, name, tag="latest"):
        return "%s/%s/%s:%s" % (REG.host, REPO, name, tag)

    def pull(self, name, **kw):
        return run_async(Image.pull(self.ref(name), plain_http=True, **kw))

    def cli_inspect(self, ref):
        return self.cache.json("inspect", "--json", ref)

    def cli_images(self):
        return self.cache.json("images", "--json")

    def assert_handle_matches(self, h, j):
        """SDK ImageHandle `h` against the CLI's JSON handle `j`."""
        self.assertIsInstance(h, ocicache.ImageHandle)
        for k in ("reference", "manifest_digest", "architecture", "os",
                  "layer_count", "size_bytes"):
            self.assertEqual(getattr(h, k), j[k], k)
        for k in ("created_at", "last_used_at"):
            self.assertIs(type(getattr(h, k)), float, k)
            self.assertEqual(getattr(h, k), float(j[k]), k)


@proxied
class TestImage(Base):
    def test_pull_get_list_inspect_match_cli(self):
        events = []
        loop_thread = []

        def on_progress(e):
            events.append((threading.get_ident(), e))

        async def go():
            loop_thread.append(threading.get_ident())
            return await Image.pull(self.ref("two"), plain_http=True,
                                    on_progress=on_progress, jobs=2)

        before = time.time() * 1000
        pulled = run_async(go())
        after = time.time() * 1000
        manifest_digest = rig.layout_manifest_digest("two")
        manifest = rig.layout_json("two", manifest_digest)
        config = rig.layout_json("two", manifest["config"]["digest"])

        self.assertEqual(pulled.reference, self.ref("two"))
        self.assertEqual(pulled.manifest_digest, manifest_digest)
        self.assertEqual(pulled.layer_count, 2)
        self.assertGreaterEqual(pulled.created_at, before - 1000)
        self.assertLessEqual(pulled.created_at, after + 1000)

        # Progress: on the loop's thread, all before pull returned.
        self.assertTrue(events, "no progress events")
        self.assertEqual({t for t, _ in events}, {loop_thread[0]})
        kinds = [e.kind for _, e in events]
        self.assertEqual(kinds[0], "resolved", kinds)
        self.assertEqual(kinds[-1], "done", kinds)
        layer_events = [e for _, e in events if e.kind == "layer_done"]
        self.assertEqual(sorted(e.layer_index for e in layer_events), [0, 1])
        for e in layer_events:
            self.assertIsInstance(e, ocicache.PullProgress)
            self.assertEqual(e.reference, self.ref("two"))
            self.assertEqual(e.layer_count, 2)
            self.assertEqual(e.digest,
                             manifest["layers"][e.layer_index]["digest"])
            self.assertEqual(e.bytes,
                             manifest["layers"][e.layer_index]["size"])

        # get, list and inspect against the CLI's JSON.
        j = self.cli_inspect(self.ref("two"))
        got = run_async(Image.get(self.ref("two")))
        self.assert_handle_matches(got, j["handle"])
        self.assertEqual(got, pulled)
        self.assertEqual(hash(got), hash(pulled))
        # Another spelling of the reference finds the same image.
        self.assertEqual(run_async(Image.get("%s/%s/two" % (REG.host,
                                                            REPO))), got)
        lst = run_async(Image.list())
        cli_list = self.cli_images()
        self.assertEqual(len(lst), len(cli_list))
        for h, jh in zip(lst, cli_list):
            self.assert_handle_matches(h, jh)

        d = run_async(Image.inspect(self.ref("two")))
        self.assertIsInstance(d, ocicache.ImageDetail)
        self.assertEqual(d.handle, got)
        c = d.config
        self.assertIsInstance(c, ocicache.ImageConfigDetail)
        jc = j["config"]
        for k in ("digest", "env", "cmd", "entrypoint", "working_dir",
                  "user", "labels", "stop_signal"):
            self.assertEqual(getattr(c, k), jc[k], k)
        # ... and against the fixture itself.
        self.assertEqual(c.digest, manifest["config"]["digest"])
        self.assertEqual(c.env, config["config"]["Env"])
        self.assertEqual(c.labels, {"org.example.one": "1",
                                    "org.example.words": "two words"})
        self.assertEqual(len(d.layers), 2)
        for l, jl in zip(d.layers, j["layers"]):
            self.assertIsInstance(l, ocicache.ImageLayerDetail)
            for k in ("diff_id", "blob_digest", "media_type",
                      "compressed_size_bytes", "erofs_size_bytes",
                      "position"):
                self.assertEqual(getattr(l, k), jl[k], k)
        self.assertEqual([l.diff_id for l in d.layers],
                         config["rootfs"]["diff_ids"])
        self.assertEqual([l.position for l in d.layers], [0, 1])

        # Handle methods; repr names the type and the reference.
        self.assertEqual(run_async(got.inspect()), d)
        self.assertIn("ImageHandle(reference=%r" % self.ref("two"),
                      repr(got))
        self.assertIn("ImageLayerDetail(diff_id=", repr(d.layers[0]))
        run_async(got.remove())
        self.assertEqual(self.cli_images(), [])

    def test_list_is_newest_first(self):
        self.pull("two")
        time.sleep(0.01)
        self.pull("multi")
        lst = run_async(Image.list())
        self.assertEqual([h.reference for h in lst],
                         [self.ref("multi"), self.ref("two")])
        self.assertGreaterEqual(lst[0].created_at, lst[1].created_at)
        self.assertEqual([h.reference for h in lst],
                         [h["reference"] for h in self.cli_images()])

    def test_not_found(self):
        ref = self.ref("no-such-image")
        for coro in (lambda: Image.get(ref), lambda: Image.inspect(ref),
                     lambda: Image.remove(ref)):
            with self.assertRaises(ocicache.ImageNotFoundError) as cm:
                run_async(coro())
            e = cm.exception
            self.assertIsInstance(e, ocicache.OcicacheError)
            self.assertEqual(e.code, -2)
            self.assertIn("no-such-image", str(e))
        # Not in the registry either.
        with self.assertRaises(ocicache.ImageNotFoundError) as cm:
            self.pull("no-such-image")
        self.assertIn("no-such-image", str(cm.exception))
        self.assertEqual(self.cli_images(), [])

    def test_other_errors(self):
        with self.assertRaises(ocicache.InvalidArgumentError) as cm:
            run_async(Image.get("%s/sdk/UPPER:latest" % REG.host))
        self.assertEqual(cm.exception.code, -4)
        self.assertIn("UPPER", str(cm.exception))
        with self.assertRaises(ocicache.InvalidArgumentError):
            run_async(Image.get("a\0b"))
        with self.assertRaises(ocicache.InvalidArgumentError):
            run_async(Image.pull(self.ref("two"), jobs=0))
        port = rig.closed_port()
        with self.assertRaises(ocicache.RegistryError) as cm:
            run_async(Image.pull("127.0.0.1:%d/sdk/two:latest" % port,
                                 plain_http=True))
        self.assertIsInstance(cm.exception, ocicache.OcicacheError)
        self.assertIn("127.0.0.1:%d" % port, str(cm.exception))
        with self.assertRaises(TypeError):
            run_async(Image.get(None))

    def test_platform(self):
        arm = run_async(Image.pull(self.ref("multi"), plain_http=True,
                                   platform="linux/arm64"))
        self.assertEqual(arm.architecture, "arm64")
        self.assertEqual(arm.os, "linux")
        self.assert_handle_matches(
            arm, self.cli_inspect(self.ref("multi"))["handle"])

    def test_concurrent_calls(self):
        self.pull("two")
        self.pull("multi")

        async def go():
            calls = []
            for _ in range(6):
                calls.append(Image.get(self.ref("two")))
                calls.append(Image.list())
                calls.append(Image.inspect(self.ref("multi")))
            return await asyncio.gather(*calls)

        results = run_async(go())
        gets, lists, details = results[0::3], results[1::3], results[2::3]
        self.assertTrue(all(g == gets[0] for g in gets))
        self.assertTrue(all(l == lists[0] for l in lists))
        self.assertTrue(all(d == details[0] for d in details))
        self.assertEqual(len(lists[0]), 2)
        self.assertIn(gets[0], lists[0])
        self.assertEqual(details[0].handle.reference, self.ref("multi"))

    def test_example_runs_as_written(self):
        h = self.pull("two")
        env = dict(os.environ)
        env["PYTHONPATH"] = PYTHON_DIR
        if os.environ.get(PRELOAD_ENV):
            env["LD_PRELOAD"] = os.environ[PRELOAD_ENV]
        p = subprocess.run([sys.executable, "-c", EXAMPLE],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "%s 2\n" % h.reference)

    def test_missing_library_is_a_clear_error(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = PYTHON_DIR
        env["OCICACHE_LIBRARY"] = "/nonexistent/libocicache.so"
        p = subprocess.run([sys.executable, "-c", EXAMPLE],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("LibraryNotFoundError", p.stderr)
        self.assertIn("/nonexistent/libocicache.so", p.stderr)
        # Importing alone works.
        p = subprocess.run([sys.executable, "-c", "import ocicache"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)


@proxied
class TestPinsAndPrune(Base):
    def test_in_use_then_release(self):
        ref = self.ref("two")
        src = Image.oci(ref, plain_http=True)
        # if-missing pulls on the first materialize.
        disk = run_async(src.materialize("sandbox-1"))
        j = self.cli_inspect(ref)
        self.assertIsInstance(disk, ocicache.RootfsDisk)
        self.assertEqual(disk.kind, "oci")
        self.assertEqual(disk.path, j["handle"]["vmdk_path"])
        self.assertEqual(disk.fsmeta_path, j["handle"]["fsmeta_path"])
        self.assertEqual(disk.layer_paths, [l["path"] for l in j["layers"]])
        self.assertEqual(disk.manifest_digest, j["handle"]["manifest_digest"])
        for p in [disk.path, disk.fsmeta_path] + disk.layer_paths:
            self.assertTrue(os.path.isfile(p), p)
        with open(disk.path, "rb") as f:
            self.assertEqual(ocicache.sniff_disk_format(f.read(512)), "vmdk")

        with self.assertRaises(ocicache.ImageInUseError) as cm:
            run_async(Image.remove(ref))
        self.assertEqual(cm.exception.code, -3)
        self.assertIn("two", str(cm.exception))
        # The CLI agrees that it is in use, and prune leaves it.
        self.assertEqual(self.cache.run("rm", ref).returncode, 4)
        report = run_async(Image.prune())
        self.assertEqual(report.image_refs_removed, 0)
        self.assertEqual(report.layers_removed, 0)
        self.assertEqual(run_async(Image.get(ref)).reference, ref)

        run_async(src.release("sandbox-1"))
        with self.assertRaises(ocicache.ImageNotFoundError):
            run_async(src.release("sandbox-1"))
        run_async(Image.remove(ref))
        with self.assertRaises(ocicache.ImageNotFoundError):
            run_async(Image.get(ref))
        self.assertEqual(self.cli_images(), [])
        for p in [disk.path, disk.fsmeta_path] + disk.layer_paths:
            self.assertFalse(os.path.exists(p), p)

    def test_force_remove_drops_the_pin(self):
        ref = self.ref("two")
        run_async(Image.oci(ref, plain_http=True).materialize("sb"))
        run_async(Image.remove(ref, force=True))
        self.assertEqual(self.cli_images(), [])

    def test_pull_policies(self):
        ref = self.ref("two")
        with self.assertRaises(ocicache.ImageNotFoundError) as cm:
            run_async(Image.oci(ref, pull="never").materialize("sb"))
        self.assertIn("never", str(cm.exception))
        self.assertEqual(self.cli_images(), [])
        with self.assertRaises(ocicache.InvalidArgumentError):
            Image.oci(ref, pull="sometimes")
        h = self.pull("two")
        # never, with the image cached: no registry needed.
        disk = run_async(Image.oci(ref, pull="never").materialize("sb"))
        self.assertEqual(disk.manifest_digest, h.manifest_digest)
        events = []
        disk2 = run_async(Image.oci(ref, pull="always", plain_http=True,
                                    on_progress=events.append)
                          .materialize("sb2"))
        self.assertEqual(disk2.path, disk.path)
        self.assertIn("resolved", [e.kind for e in events])
        self.assertEqual([e.kind for e in events].count("layer_cached"), 2)

    def test_prune_report_counts(self):
        ref = self.ref("two")
        h = self.pull("two")
        dry = run_async(Image.prune(dry_run=True))
        cli_dry = self.cache.json("prune", "--dry-run", "--json")
        self.assertIsInstance(dry, ocicache.ImagePruneReport)
        for k in ("image_refs_removed", "manifests_removed",
                  "layers_removed", "fsmeta_removed", "vmdk_removed",
                  "bytes_reclaimed"):
            self.assertEqual(getattr(dry, k), cli_dry[k], k)
        self.assertEqual(run_async(Image.get(ref)), h)

        files = [f for sub in ("layers", "fsmeta", "vmdk")
                 for f in self.cache.files_under(sub)]
        on_disk = sum(os.path.getsize(f) for f in files)
        report = run_async(Image.prune())
        self.assertEqual(report, dry)
        self.assertEqual(report.image_refs_removed, 1)
        self.assertEqual(report.manifests_removed, 1)
        self.assertEqual(report.layers_removed, 2)
        self.assertEqual(report.fsmeta_removed, 1)
        self.assertEqual(report.vmdk_removed, 1)
        # Every file of the image went, and that is what was measured.
        self.assertEqual(report.bytes_reclaimed, h.size_bytes)
        self.assertEqual(report.bytes_reclaimed, on_disk)
        self.assertEqual([f for f in files if os.path.exists(f)], [])
        self.assertEqual(self.cli_images(), [])
        again = run_async(Image.prune())
        self.assertEqual((again.image_refs_removed, again.layers_removed,
                          again.manifests_removed), (0, 0, 0))
        self.assertIn(again.bytes_reclaimed, (0, None))
        self.assertIn("ImagePruneReport(image_refs_removed=0", repr(again))


@proxied
class TestSources(Base):
    def test_bind(self):
        d = os.path.join(self.work, "root")
        os.mkdir(d)
        disk = run_async(Image.bind(d).materialize("sb"))
        self.assertEqual((disk.kind, disk.path, disk.readonly, disk.format),
                         ("bind", d, True, "dir"))
        self.assertFalse(run_async(Image.bind(d, readonly=False)
                                   .materialize("sb")).readonly)
        run_async(Image.bind(d).release("sb"))
        missing = os.path.join(self.work, "missing")
        with self.assertRaises(ocicache.InvalidArgumentError) as cm:
            run_async(Image.bind(missing).materialize("sb"))
        self.assertIn(missing, str(cm.exception))
        f = os.path.join(self.work, "file")
        open(f, "w").close()
        with self.assertRaises(ocicache.InvalidArgumentError) as cm:
            run_async(Image.bind(f).materialize("sb"))
        self.assertIn(f, str(cm.exception))
        self.assertIn("not a directory", str(cm.exception))
        # Nothing was recorded in the cache: the CLI finds no sandbox.
        self.assertEqual(self.cache.run("release", "sb").returncode, 3)

    def test_disk_formats(self):
        qcow2 = os.path.join(self.work, "d.qcow2")
        rig.run(["qemu-img", "create", "-q", "-f", "qcow2", qcow2, "16M"])
        vmdk = os.path.join(self.work, "d.vmdk")
        rig.run(["qemu-img", "create", "-q", "-f", "vmdk", vmdk, "16M"])
        raw = os.path.join(self.work, "d.raw")
        rig.run(["qemu-img", "create", "-q", "-f", "raw", raw, "1M"])
        for path, fmt in ((qcow2, "qcow2"), (vmdk, "vmdk"), (raw, "raw")):
            # qemu-img agrees with the format we detect.
            info = json.loads(rig.run(["qemu-img", "info", "--output=json",
                                       path]).stdout)
            self.assertEqual(info["format"], fmt)
            disk = run_async(Image.disk(path).materialize("sb"))
            self.assertEqual((disk.kind, disk.path, disk.format,
                              disk.fstype), ("disk", path, fmt, None))
            disk = run_async(Image.disk(path, format=fmt, fstype="ext4")
                             .materialize("sb"))
            self.assertEqual((disk.format, disk.fstype), (fmt, "ext4"))
            for other in ("raw", "qcow2", "vmdk"):
                if other == fmt:
                    continue
                with self.assertRaises(ocicache.InvalidArgumentError) as cm:
                    run_async(Image.disk(path, format=other)
                              .materialize("sb"))
                self.assertIn(path, str(cm.exception))
                self.assertIn(fmt, str(cm.exception))
        # A VMDK descriptor (text) is a vmdk too.
        desc = os.path.join(self.work, "desc.vmdk")
        with open(desc, "w") as f:
            f.write("# Disk DescriptorFile\nversion=1\n")
        self.assertEqual(run_async(Image.disk(desc).materialize("s"))
                         .format, "vmdk")

    def test_disk_errors(self):
        missing = os.path.join(self.work, "missing.img")
        with self.assertRaises(ocicache.InvalidArgumentError) as cm:
            run_async(Image.disk(missing).materialize("sb"))
        self.assertIn(missing, str(cm.exception))
        empty = os.path.join(self.work, "empty.img")
        open(empty, "w").close()
        with self.assertRaises(ocicache.InvalidArgumentError) as cm:
            run_async(Image.disk(empty).materialize("sb"))
        self.assertIn("empty", str(cm.exception))
        with self.assertRaises(ocicache.InvalidArgumentError) as cm:
            run_async(Image.disk(self.work).materialize("sb"))
        self.assertIn(self.work, str(cm.exception))
        with self.assertRaises(ocicache.InvalidArgumentError):
            Image.disk(empty, format="vdi")
        with self.assertRaises(ocicache.InvalidArgumentError):
            Image.disk(empty, fstype="ext4 rw")
        with self.assertRaises(ocicache.InvalidArgumentError):
            run_async(Image.bind(self.work).materialize(""))


def _child_main():
    results = os.environ[CHILD_ENV]
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__])
    res = _ChildResult()
    suite.run(res)  # runs setUpModule and tearDownModule too
    with open(results, "w") as f:
        json.dump(res.out, f)
    for k, (status, text) in sorted(res.out.items()):
        print("%s %s" % (status.upper(), k))
        if status == "fail":
            print(text)
    sys.exit(0)


if __name__ == "__main__" and os.environ.get(CHILD_ENV):
    _child_main()

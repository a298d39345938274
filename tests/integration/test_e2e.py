"""End-to-end tests of the ocicache CLI against a real local registry.

One registry (Debian's docker-registry, plain HTTP) serves the fixtures of
fixtures/build-images.sh for the whole module; every test gets a fresh
cache root. What the CLI made is checked against readers we did not write:
`umoci unpack` gives the expected merged tree, `qemu-img` turns the VMDK
into one flat raw disk that the kernel mounts, `fsck.erofs` checks and
extracts fsmeta with its layers.

The CLI is $OCICACHE_BIN (default build/cli/ocicache).
"""

import json
import os
import platform
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

import rig

REG = None
REPO = "e2e"


def setUpModule():
    global REG
    REG = rig.Registry()
    REG.push("two", REPO + "/two:latest")
    REG.push("multi", REPO + "/multi:latest")
    REG.push("zstd", REPO + "/zstd:latest")
    REG.push("two-v2s2", REPO + "/v2s2:latest")


def tearDownModule():
    if REG is not None:
        REG.stop()


def now_ms():
    return int(time.time() * 1000)


def host_arch():
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64",
            "arm64": "arm64"}.get(platform.machine().lower())


def platform_manifest(arch):
    """Digest of the `multi` index's entry for linux/ARCH."""
    index = rig.layout_json("multi", rig.layout_manifest_digest("multi"))
    for m in index["manifests"]:
        if m["platform"]["architecture"] == arch:
            return m["digest"]
    raise KeyError(arch)


MOUNT_SKIP = rig.mount_skip_reason()


class Base(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.cache = rig.Cache()
        self.addCleanup(self.cache.cleanup)
        self.work = tempfile.mkdtemp(prefix="ocicache-e2e-")
        self.addCleanup(shutil.rmtree, self.work, True)

    def ref(self, name, tag="latest"):
        return "%s/%s/%s:%s" % (REG.host, REPO, name, tag)

    def pull(self, ref, *flags, cache=None):
        c = cache or self.cache
        p = c.ok("pull", "--plain-http", *flags, ref)
        return p.stdout

    def layer_images(self):
        """The layer EROFS images in the cache (layers/ may hold other
        files beside them)."""
        return [f for f in self.cache.files_under("layers")
                if f.endswith(".erofs")]

    def images(self):
        out = self.cache.json("images", "--json")
        self.assertIsInstance(out, list)
        return out

    def inspect(self, ref):
        out = self.cache.json("inspect", "--json", ref)
        self.assertIsInstance(out, dict)
        for k in ("handle", "config", "layers"):
            self.assertIn(k, out)
        return out

    def assert_tree_matches_umoci(self, tree, fixture="two", **kw):
        want = rig.snapshot(rig.unpacked_rootfs(fixture), **kw)
        got = rig.snapshot(tree, **kw)
        diff = rig.diff_snapshots(want, got)
        self.assertEqual(diff, "", "tree differs from umoci unpack:\n" +
                         diff)
        return got

    def mount_image(self, ref):
        """Context manager: the image's VMDK as a flat disk, mounted."""
        h = self.inspect(ref)["handle"]
        self.assertTrue(os.path.isfile(h["vmdk_path"]), h["vmdk_path"])
        return rig.mounted_vmdk(h["vmdk_path"], self.work)


class TestCli(Base):
    def test_help_and_version(self):
        p = self.cache.run("--help", root=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("pull", p.stdout + p.stderr)
        p = self.cache.run("--version", root=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("0.1.0", p.stdout)
        for cmd in ("pull", "images", "inspect", "rm", "prune"):
            p = self.cache.run(cmd, "--help")
            self.assertEqual(p.returncode, 0, "%s --help: %s" % (cmd,
                                                                 p.stderr))

    def test_unknown_command_is_usage_error(self):
        p = self.cache.run("no-such-command")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stdout, "")

    def test_invalid_reference_exits_2(self):
        for bad in ("%s/e2e/UPPER:latest" % REG.host,
                    "%s/e2e/two:bad tag" % REG.host,
                    "%s/e2e/two@sha256:1234" % REG.host, ""):
            p = self.cache.run("pull", "--plain-http", bad)
            self.assertEqual(p.returncode, 2, "%r: %s" % (bad, p.stderr))
            self.assertEqual(p.stdout, "")
        self.assertEqual(self.images(), [])

    def test_empty_cache(self):
        self.assertEqual(self.images(), [])
        p = self.cache.run("inspect", "--json", self.ref("two"))
        self.assertEqual(p.returncode, 3, p.stderr)


class TestPull(Base):
    def test_pull_prints_normalised_reference(self):
        digest, _, _ = REG.manifest(REPO + "/two", "latest")
        self.assertEqual(digest, rig.layout_manifest_digest("two"))
        out = self.pull("%s/%s/two" % (REG.host, REPO))  # no tag
        self.assertEqual(out, "%s@%s\n" % (self.ref("two"), digest))

    def test_images_and_inspect_json(self):
        before = now_ms()
        self.pull(self.ref("two"))
        after = now_ms()
        manifest_digest = rig.layout_manifest_digest("two")
        manifest = rig.layout_json("two", manifest_digest)
        config = rig.layout_json("two", manifest["config"]["digest"])

        images = self.images()
        self.assertEqual(len(images), 1, images)
        h = images[0]
        self.assertEqual(h["reference"], self.ref("two"))
        self.assertEqual(h["manifest_digest"], manifest_digest)
        self.assertEqual(h["architecture"], "amd64")
        self.assertEqual(h["os"], "linux")
        self.assertEqual(h["layer_count"], 2)
        for k in ("created_at", "last_used_at"):
            self.assertIs(type(h[k]), int, k)
            self.assertGreaterEqual(h[k], before - 1000, k)
            self.assertLessEqual(h[k], after + 1000, k)
        self.assertIn("variant", h)
        self.assertIsNone(h["variant"])

        d = self.inspect(self.ref("two"))
        self.assertEqual(d["handle"], h)
        # The same image whatever spelling of the reference.
        d2 = self.inspect("%s/%s/two" % (REG.host, REPO))
        self.assertEqual(d2, d)

        c = d["config"]
        self.assertIsNotNone(c)
        self.assertEqual(c["digest"], manifest["config"]["digest"])
        want = config["config"]
        self.assertEqual(c["cmd"], want["Cmd"])
        self.assertEqual(c["entrypoint"], want["Entrypoint"])
        self.assertEqual(c["env"], want["Env"])
        self.assertEqual(c["working_dir"], "/work")
        self.assertEqual(c["user"], "1000:1000")
        labels = c.get("labels", c.get("labels_json"))
        if isinstance(labels, str):
            labels = json.loads(labels)
        self.assertEqual(labels, {"org.example.one": "1",
                                  "org.example.words": "two words"})

        layers = d["layers"]
        self.assertEqual([l["position"] for l in layers], [0, 1])
        self.assertEqual([l["diff_id"] for l in layers],
                         config["rootfs"]["diff_ids"])
        self.assertEqual([l["blob_digest"] for l in layers],
                         [l["digest"] for l in manifest["layers"]])
        self.assertEqual([l["compressed_size_bytes"] for l in layers],
                         [l["size"] for l in manifest["layers"]])
        on_disk = 0
        for l in layers:
            self.assertTrue(os.path.isabs(l["path"]), l["path"])
            st = os.stat(l["path"])
            self.assertEqual(l["erofs_size_bytes"], st.st_size)
            self.assertEqual(st.st_size % 4096, 0, l["path"])
            self.assertTrue(l["path"].startswith(
                os.path.join(os.path.realpath(self.cache.root), "layers")) or
                l["path"].startswith(os.path.join(self.cache.root, "layers")),
                l["path"])
            self.assertIn(l["diff_id"].split(":")[1], l["path"])
            on_disk += st.st_size
            # The layer's list of implied directories lives beside it.
            implied = l["path"][:-len(".erofs")] + ".implied"
            self.assertTrue(os.path.isfile(implied), implied)
            on_disk += os.stat(implied).st_size
        for k in ("fsmeta_path", "vmdk_path"):
            self.assertTrue(os.path.isfile(h[k]), h[k])
            on_disk += os.stat(h[k]).st_size
        self.assertIn(manifest_digest.split(":")[1], h["fsmeta_path"])
        self.assertGreater(h["size_bytes"], 0)
        self.assertEqual(h["size_bytes"], on_disk)

    def test_vmdk_descriptor_reads_as_one_disk(self):
        self.pull(self.ref("two"))
        d = self.inspect(self.ref("two"))
        h = d["handle"]
        raw = os.path.join(self.work, "flat.raw")
        rig.run(["qemu-img", "convert", "-f", "vmdk", h["vmdk_path"],
                 "-O", "raw", raw])
        parts = [h["fsmeta_path"]] + [l["path"] for l in d["layers"]]
        with open(raw, "rb") as f:
            flat = f.read()
        joined = b"".join(open(p, "rb").read() for p in parts)
        self.assertEqual(len(flat), len(joined))
        self.assertTrue(flat == joined, "flat disk != fsmeta + layers")

    def test_layers_pass_fsck(self):
        self.pull(self.ref("two"))
        d = self.inspect(self.ref("two"))
        for l in d["layers"]:
            p = rig.run(["fsck.erofs", l["path"]], check=False)
            self.assertEqual(p.returncode, 0, "%s: %s%s" % (
                l["path"], p.stdout, p.stderr))

    def test_fsck_extract_of_fsmeta_agrees_with_umoci(self):
        self.pull(self.ref("two"))
        d = self.inspect(self.ref("two"))
        out = os.path.join(self.work, "extract")
        p = rig.fsck_extract(d["handle"]["fsmeta_path"],
                             [l["path"] for l in d["layers"]], out)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # fsck.erofs 1.5 splits hard links, drops xattrs and (extracting
        # as root) loses set-id bits: compare names, types, sizes,
        # contents, link targets and device numbers.
        self.assert_tree_matches_umoci(out, xattrs=False, owners=False,
                                       modes=False, mtimes=False,
                                       hardlinks=False)

    def test_second_pull_reuses_layers(self):
        out1 = self.pull(self.ref("two"))
        d1 = self.inspect(self.ref("two"))
        stats1 = [(os.stat(l["path"]).st_ino, os.stat(l["path"]).st_mtime_ns)
                  for l in d1["layers"]]
        time.sleep(0.05)
        out2 = self.pull(self.ref("two"))
        self.assertEqual(out1, out2)
        d2 = self.inspect(self.ref("two"))
        stats2 = [(os.stat(l["path"]).st_ino, os.stat(l["path"]).st_mtime_ns)
                  for l in d2["layers"]]
        self.assertEqual(stats1, stats2, "layers were rewritten")
        self.assertEqual(d1["handle"]["created_at"],
                         d2["handle"]["created_at"])
        self.assertGreater(d2["handle"]["last_used_at"],
                           d1["handle"]["last_used_at"])
        # A read does not move last_used_at.
        d3 = self.inspect(self.ref("two"))
        self.assertEqual(d3["handle"]["last_used_at"],
                         d2["handle"]["last_used_at"])
        self.assertEqual(len(self.images()), 1)

    def test_gzip_and_zstd_share_layers(self):
        # Layers are keyed by diff_id: `zstd` is `two` recompressed.
        self.pull(self.ref("two"))
        self.pull(self.ref("zstd"))
        two = self.inspect(self.ref("two"))
        zst = self.inspect(self.ref("zstd"))
        self.assertEqual([l["diff_id"] for l in two["layers"]],
                         [l["diff_id"] for l in zst["layers"]])
        self.assertEqual([l["path"] for l in two["layers"]],
                         [l["path"] for l in zst["layers"]])
        for l in zst["layers"]:
            self.assertIn("zstd", l["media_type"])
        self.assertEqual(len(self.layer_images()), 2)
        self.assertEqual(len(self.images()), 2)

    def test_v2s2_pull(self):
        out = self.pull(self.ref("v2s2"))
        digest, ctype, _ = REG.manifest(REPO + "/v2s2", "latest")
        self.assertEqual(ctype,
                         "application/vnd.docker.distribution.manifest.v2+json")
        self.assertEqual(out, "%s@%s\n" % (self.ref("v2s2"), digest))
        d = self.inspect(self.ref("v2s2"))
        self.assertEqual(d["handle"]["layer_count"], 2)
        two_config = rig.layout_json("two", rig.layout_json(
            "two", rig.layout_manifest_digest("two"))["config"]["digest"])
        self.assertEqual([l["diff_id"] for l in d["layers"]],
                         two_config["rootfs"]["diff_ids"])

    def test_multi_picks_host_platform(self):
        arch = host_arch()
        if arch is None:
            self.skipTest("host architecture %s is in no fixture" %
                          platform.machine())
        index_digest = rig.layout_manifest_digest("multi")
        out = self.pull(self.ref("multi"))
        want = platform_manifest(arch)
        self.assertEqual(out, "%s@%s\n" % (self.ref("multi"), want))
        h = self.inspect(self.ref("multi"))["handle"]
        self.assertEqual(h["manifest_digest"], want)
        self.assertEqual(h["architecture"], arch)
        self.assertEqual(h["os"], "linux")
        if "index_digest" in h:
            self.assertEqual(h["index_digest"], index_digest)
        # repo@<index digest> finds the image too.
        by_index = self.inspect("%s/%s/multi@%s" % (REG.host, REPO,
                                                   index_digest))
        self.assertEqual(by_index["handle"]["manifest_digest"], want)

    def test_multi_platform_flag(self):
        out = self.pull(self.ref("multi"), "--platform", "linux/arm64")
        want = platform_manifest("arm64")
        self.assertNotEqual(want, platform_manifest("amd64"))
        self.assertEqual(out, "%s@%s\n" % (self.ref("multi"), want))
        h = self.inspect(self.ref("multi"))["handle"]
        self.assertEqual(h["manifest_digest"], want)
        self.assertEqual(h["architecture"], "arm64")
        self.assertEqual(h.get("variant"), "v8")

    def test_multi_unknown_platform_not_found(self):
        p = self.cache.run("pull", "--plain-http", "--platform",
                           "linux/s390x", self.ref("multi"))
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(self.images(), [])

    def test_tag_moves_on_repull(self):
        repo = REPO + "/move-%d" % os.getpid()
        REG.push("two", repo + ":v")
        ref = "%s/%s:v" % (REG.host, repo)
        self.pull(ref)
        first = self.inspect(ref)["handle"]
        self.assertEqual(first["manifest_digest"],
                         rig.layout_manifest_digest("two"))
        REG.push("zstd", repo + ":v")
        new = rig.layout_manifest_digest("zstd")
        out = self.pull(ref)
        self.assertEqual(out, "%s@%s\n" % (ref, new))
        images = self.images()
        self.assertEqual([i["manifest_digest"] for i in images
                          if i["reference"] == ref], [new])
        self.assertEqual(len(images), 1)
        # The old manifest is prune's: with the new image pinned by a
        # sandbox, prune removes the old fsmeta and VMDK and keeps the new.
        self.assertEqual(len(self.cache.files_under("fsmeta")), 2)
        add_sandbox(self.cache, "sandbox-move", ref)
        self.cache.ok("prune", env={"OCICACHE_PRUNE_GRACE_SECONDS": "0"})
        self.assertEqual(len(self.images()), 1)
        h = self.inspect(ref)["handle"]
        self.assertEqual(h["manifest_digest"], new)
        self.assertEqual([os.path.basename(f) for f in
                          self.cache.files_under("fsmeta")],
                         [os.path.basename(h["fsmeta_path"])])
        self.assertEqual(len(self.cache.files_under("vmdk")), 1)
        for k in ("fsmeta_path", "vmdk_path"):
            self.assertTrue(os.path.isfile(h[k]))


class TestErrors(Base):
    def test_missing_tag_exits_3(self):
        p = self.cache.run("pull", "--plain-http", self.ref("two", "nope"))
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertEqual(self.images(), [])

    def test_missing_repository_exits_3(self):
        p = self.cache.run("pull", "--plain-http",
                           "%s/no/such/repo:latest" % REG.host)
        self.assertEqual(p.returncode, 3, p.stderr)

    def test_unreachable_registry_exits_5(self):
        ref = "127.0.0.1:%d/e2e/two:latest" % rig.closed_port()
        p = self.cache.run("pull", "--plain-http", ref, timeout=180)
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertEqual(self.images(), [])

    def test_corrupt_blob_exits_6(self):
        manifest = rig.layout_json("two", rig.layout_manifest_digest("two"))
        bad = manifest["layers"][0]["digest"]
        proxy = rig.CorruptingProxy(REG.port, [bad])
        self.addCleanup(proxy.stop)
        ref = "%s/%s/two:latest" % (proxy.host, REPO)
        p = self.cache.run("-q", "pull", "--plain-http", ref)
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn(bad, proxy.corrupted)
        self.assertEqual(p.stdout, "")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn(bad, lines[0])
        self.assertEqual(self.images(), [])
        # The same pull through the registry itself then works.
        self.pull(self.ref("two"))

    def test_corrupt_config_exits_6(self):
        manifest = rig.layout_json("two", rig.layout_manifest_digest("two"))
        bad = manifest["config"]["digest"]
        proxy = rig.CorruptingProxy(REG.port, [bad])
        self.addCleanup(proxy.stop)
        p = self.cache.run("-q", "pull", "--plain-http",
                           "%s/%s/two:latest" % (proxy.host, REPO))
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn(bad, p.stderr)
        self.assertEqual(self.images(), [])


class TestCrash(Base):
    def test_killed_pull_records_nothing_and_resumes(self):
        """A pull killed mid-download (as when its machine dies) leaves the
        index untouched; the next pull resumes the download with a Range
        request and gives a disk the kernel and fsck read."""
        manifest = rig.layout_json("two", rig.layout_manifest_digest("two"))
        blob = max(manifest["layers"], key=lambda l: l["size"])
        proxy = rig.StallingProxy(REG.port, [blob["digest"]])
        self.addCleanup(proxy.stop)
        ref = "%s/%s/two:latest" % (proxy.host, REPO)
        part = os.path.join(self.cache.root, "tmp",
                            blob["digest"].split(":")[1] + ".part")

        proc = subprocess.Popen(
            [rig.ocicache_bin(), "--root", self.cache.root, "-q", "pull",
             "--plain-http", ref], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        try:
            self.assertTrue(proxy.stalled.wait(60), "the proxy never stalled")
            half = blob["size"] // 2
            for _ in range(600):
                if os.path.exists(part) and os.path.getsize(part) >= half:
                    break
                time.sleep(0.05)
            self.assertEqual(os.path.getsize(part), half)
        finally:
            proc.kill()
            proc.communicate()
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        self.assertEqual(self.images(), [])
        # The other layer may have been verified and stored (a later pull
        # reuses it; prune takes it otherwise), never the cut one.
        config = rig.layout_json("two", manifest["config"]["digest"])
        cut = config["rootfs"]["diff_ids"][manifest["layers"].index(blob)]
        self.assertEqual([f for f in self.layer_images()
                          if cut.split(":")[1] in f], [])

        proxy.stall = False
        proxy.ranges.clear()
        self.pull(ref)
        self.assertIn((blob["digest"], "bytes=%d-" % half), proxy.ranges)
        self.assertFalse(os.path.exists(part), "the .part file is kept")
        h = self.inspect(ref)["handle"]
        self.assertEqual(h["manifest_digest"],
                         rig.layout_manifest_digest("two"))
        for layer in self.layer_images():
            p = subprocess.run(["fsck.erofs", layer], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            self.assertEqual(p.returncode, 0, p.stdout)
            self.assertNotIn("<E>", p.stdout)
        if not MOUNT_SKIP:
            with self.mount_image(ref) as mnt:
                self.assert_tree_matches_umoci(mnt)


class TestShared(Base):
    """Several processes on one cache, as sandboxes and CI jobs share it."""

    def start_pull(self, ref):
        return subprocess.Popen(
            [rig.ocicache_bin(), "--root", self.cache.root, "-q", "pull",
             "--plain-http", ref], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    def assert_images_whole(self):
        """Every recorded image has every file it names, and each layer
        image passes fsck.erofs."""
        for img in self.images():
            d = self.inspect(img["reference"])
            for k in ("fsmeta_path", "vmdk_path"):
                self.assertTrue(os.path.isfile(d["handle"][k]), d["handle"][k])
            for layer in d["layers"]:
                self.assertTrue(os.path.isfile(layer["path"]), layer["path"])
        for layer in self.layer_images():
            p = subprocess.run(["fsck.erofs", layer], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            self.assertEqual(p.returncode, 0, p.stdout)
            self.assertNotIn("<E>", p.stdout)

    def test_concurrent_pulls_convert_each_layer_once(self):
        procs = [self.start_pull(self.ref(name))
                 for name in ("two", "two", "zstd", "v2s2", "two")]
        for p in procs:
            out, err = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(sorted(i["reference"] for i in self.images()),
                         sorted(self.ref(n) for n in ("two", "zstd", "v2s2")))
        # One layer image per diff_id, whatever the compression: two
        # layers in all, shared by the three images.
        diff_ids = {l["diff_id"] for n in ("two", "zstd", "v2s2")
                    for l in self.inspect(self.ref(n))["layers"]}
        self.assertEqual(len(diff_ids), 2)
        self.assertEqual(len(self.layer_images()), 2)
        self.assertEqual(self.cache.files_under("tmp"), [])
        self.assert_images_whole()

    def test_prune_racing_pulls_never_breaks_a_recorded_image(self):
        env = {"OCICACHE_PRUNE_GRACE_SECONDS": "0"}
        for _ in range(3):
            procs = [self.start_pull(self.ref(n)) for n in ("two", "multi")]
            prunes = [self.cache.run("prune", env=env) for _ in range(3)]
            for p in procs:
                out, err = p.communicate(timeout=300)
                # A pull may fail only by losing a race it reports; here
                # none should, since prune skips what a pull holds.
                self.assertEqual(p.returncode, 0, err)
            for p in prunes:
                self.assertEqual(p.returncode, 0, p.stderr)
            self.assert_images_whole()


def add_sandbox(cache, sandbox_id, ref):
    """Pin `ref` for `sandbox_id` (`ocicache sandbox add ID REF`)."""
    cache.ok("sandbox", "add", sandbox_id, ref)


class TestRemove(Base):
    GRACE0 = {"OCICACHE_PRUNE_GRACE_SECONDS": "0"}

    def assert_cache_empty(self):
        for sub in ("layers", "fsmeta", "vmdk", "tmp"):
            self.assertEqual(self.cache.files_under(sub), [], sub)
        self.assertEqual(self.images(), [])

    def test_rm_then_prune_leaves_nothing(self):
        self.pull(self.ref("two"))
        self.pull(self.ref("multi"))
        self.cache.ok("rm", self.ref("two"))
        self.assertEqual([i["reference"] for i in self.images()],
                         [self.ref("multi")])
        self.cache.ok("rm", self.ref("multi"))
        self.cache.ok("prune", env=self.GRACE0)
        self.assert_cache_empty()

    def test_rm_missing_exits_3(self):
        p = self.cache.run("rm", self.ref("two"))
        self.assertEqual(p.returncode, 3, p.stderr)

    def test_prune_removes_unpinned_images(self):
        self.pull(self.ref("two"))
        report = self.cache.json("prune", "--json", env=self.GRACE0)
        self.assertEqual(report["image_refs_removed"], 1, report)
        self.assertEqual(report["layers_removed"], 2, report)
        self.assertGreater(report["bytes_reclaimed"], 0, report)
        self.assert_cache_empty()

    def test_prune_dry_run_removes_nothing(self):
        self.pull(self.ref("two"))
        files = self.cache.files_under("layers")
        report = self.cache.json("prune", "--dry-run", "--json",
                                 env=self.GRACE0)
        self.assertEqual(report["image_refs_removed"], 1, report)
        self.assertEqual(self.cache.files_under("layers"), files)
        self.assertEqual(len(self.images()), 1)

    def test_rm_in_use_exits_4_and_force_removes(self):
        self.pull(self.ref("two"))
        add_sandbox(self.cache, "sandbox-1", self.ref("two"))
        p = self.cache.run("rm", self.ref("two"))
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertEqual(len(self.images()), 1)
        # Prune leaves a pinned image alone.
        self.cache.ok("prune", env=self.GRACE0)
        self.assertEqual(len(self.images()), 1)
        h = self.inspect(self.ref("two"))["handle"]
        self.assertTrue(os.path.isfile(h["vmdk_path"]))
        sandboxes = self.cache.json("sandboxes", "--json")
        self.assertEqual(len(sandboxes), 1)
        self.assertEqual(sandboxes[0]["sandbox_id"], "sandbox-1")
        self.assertEqual(sandboxes[0]["reference"], self.ref("two"))
        self.assertEqual(sandboxes[0]["manifest_digest"],
                         h["manifest_digest"])
        self.assertIsInstance(sandboxes[0]["created_at"], int)
        self.cache.ok("rm", "--force", self.ref("two"))
        self.assertEqual(self.images(), [])
        # --force took the sandbox's pin with the image.
        self.assertEqual(self.cache.json("sandboxes", "--json"), [])
        self.cache.ok("prune", env=self.GRACE0)
        self.assert_cache_empty()

    def test_release_unpins(self):
        self.pull(self.ref("two"))
        add_sandbox(self.cache, "sandbox-2", self.ref("two"))
        plain = self.cache.ok("sandboxes").stdout.splitlines()
        self.assertEqual(len(plain), 2, plain)
        self.assertTrue(plain[1].startswith("sandbox-2 "), plain)
        self.cache.ok("release", "sandbox-2")
        self.assertEqual(self.cache.json("sandboxes", "--json"), [])
        p = self.cache.run("release", "sandbox-2")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.cache.ok("rm", self.ref("two"))
        self.assertEqual(self.images(), [])

    def test_shared_layers_survive_rm_of_one_image(self):
        self.pull(self.ref("two"))
        self.pull(self.ref("zstd"))
        self.cache.ok("rm", self.ref("two"))
        d = self.inspect(self.ref("zstd"))
        for l in d["layers"]:
            self.assertTrue(os.path.isfile(l["path"]), l["path"])
        if MOUNT_SKIP is None:
            with self.mount_image(self.ref("zstd")) as mnt:
                with open(os.path.join(mnt, "etc/newfile")) as f:
                    self.assertEqual(f.read(), "new in layer 2\n")


@unittest.skipIf(MOUNT_SKIP, MOUNT_SKIP)
class TestMount(Base):
    """The kernel reads the VMDK as one flat disk (fsmeta's mapped_blkaddr);
    the mounted tree must be umoci's unpacked tree."""

    def check_mount(self, name, fixture="two"):
        self.pull(self.ref(name))
        with self.mount_image(self.ref(name)) as mnt:
            got = self.assert_tree_matches_umoci(mnt, fixture)
            # The comparison is only as good as the fixture: make sure it
            # holds what it is meant to.
            self.assertNotIn("etc/gone", got)
            self.assertNotIn("wd", got)
            self.assertEqual(sorted(os.listdir(os.path.join(mnt, "opq"))),
                             ["c"])
            self.assertIn(["links/hard1", "links/hard2"], got["#hardlinks"])
            self.assertIn(["etc/newfile", "etc/newlink"], got["#hardlinks"])
            self.assertIn("security.capability", got["caps/ping"]["xattrs"])
            self.assertEqual(
                bytes.fromhex(got["xattr/file"]["xattrs"]["user.comment"]),
                b"hello xattr")
            self.assertEqual((got["ids/high"]["uid"], got["ids/high"]["gid"]),
                             (100000, 100001))
            self.assertEqual(got["run/fifo"]["type"], stat.S_IFIFO)
            self.assertEqual(got["sizes/big"]["size"], 3 * 1024 * 1024 + 5)
            # Implied directories: usr/share keeps layer 1's metadata.
            self.assertEqual((got["usr/share"]["mode"], got["usr/share"]["uid"],
                              got["usr/share"]["gid"]), ("750", 7, 8))
            self.assertEqual(got["usr/share/new"]["type"], stat.S_IFDIR)
            for e in got.values():
                if isinstance(e, dict):
                    self.assertNotIn("trusted.overlay.opaque",
                                     e.get("xattrs", {}))
            with open(os.path.join(mnt, "etc/modified")) as f:
                self.assertEqual(f.read(), "v2: modified by layer 2\n")

    def test_mount_two(self):
        self.check_mount("two")

    def test_mount_zstd(self):
        self.check_mount("zstd")

    def test_mount_v2s2(self):
        self.check_mount("v2s2")

    def test_mount_multi_arches(self):
        want = {"amd64": "amd64\n", "arm64": "arm64\n"}
        for arch, content in want.items():
            c = rig.Cache()
            self.addCleanup(c.cleanup)
            c.ok("pull", "--plain-http", "--platform", "linux/" + arch,
                 self.ref("multi"))
            h = c.json("inspect", "--json", self.ref("multi"))["handle"]
            self.assertEqual(h["manifest_digest"], platform_manifest(arch))
            work = os.path.join(self.work, arch)
            os.makedirs(work)
            with rig.mounted_vmdk(h["vmdk_path"], work) as mnt:
                with open(os.path.join(mnt, "etc/arch")) as f:
                    self.assertEqual(f.read(), content)
                want_tree = rig.snapshot(rig.unpacked_rootfs("multi", arch))
                got = rig.snapshot(mnt)
                self.assertEqual(rig.diff_snapshots(want_tree, got), "")

    def test_mount_after_warm_repull(self):
        # A re-pull over a warm cache still gives a disk the kernel reads.
        self.pull(self.ref("two"))
        self.check_mount("two")


if __name__ == "__main__":
    unittest.main()

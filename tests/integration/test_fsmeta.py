"""fsmeta and the VMDK, checked by readers we did not write.

Three layer images are made by mkfs.erofs -Enoinline_data (FLAT_PLAIN file
data) from source trees that carry the overlay conventions (whiteouts as
0/0 character devices, trusted.overlay.opaque=y). The driver
$OCICACHE_FSMETA_TOOL (default build/tests/fsmeta_tool) merges them:

    fsmeta_tool [--vmdk OUT.vmdk] OUT.erofs SEED LAYER[:IMPLIED-LIST]...

Then `fsck.erofs --device=... --extract` must give the merged tree, and,
as root on a kernel with EROFS, the VMDK turned into one raw disk by
`qemu-img convert` must mount and show the merged tree with xattrs and
hard links (the kernel reads the layers through mapped_blkaddr).
"""

import hashlib
import os
import random
import shutil
import stat
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TOOL = os.environ.get("OCICACHE_FSMETA_TOOL",
                      os.path.join(ROOT, "build", "tests", "fsmeta_tool"))
SEED = "sha256:" + "5eed" * 16
OTHER_SEED = "sha256:" + "beef" * 16
BIG = random.Random(7).randbytes(100000)

# The merged tree: path -> (kind, permissions, content). Content is the
# data for files, the target for symlinks, (major, minor) for devices.
EXPECTED = {
    "etc": ("dir", 0o755, None),
    "etc/passwd": ("file", 0o644, b"upper\n"),
    "etc/keep": ("file", 0o644, b"keep\n"),
    "etc/pw": ("link", 0o777, "passwd"),
    "hl": ("dir", 0o755, None),
    "hl/a": ("file", 0o644, b"hard\n"),
    "hl/b": ("file", 0o644, b"hard\n"),
    "opq": ("dir", 0o755, None),
    "opq/new": ("file", 0o644, b"n"),
    "dirfile": ("file", 0o644, b"now a file\n"),
    "filedir": ("dir", 0o755, None),
    "filedir/in": ("file", 0o644, b"in\n"),
    "big": ("file", 0o644, BIG),
    "empty": ("file", 0o644, b""),
    "meta": ("dir", 0o700, None),
    "meta/old": ("file", 0o644, b"old"),
    "meta/newfile": ("file", 0o644, b"nf"),
    "meta2": ("dir", 0o711, None),
    "cdev": ("chr", 0o644, (1, 3)),
    "fifo": ("fifo", 0o644, None),
    "owned": ("file", 0o640, b"mine\n"),
    "top": ("file", 0o644, b"top\n"),
}


def need(*tools):
    for t in tools:
        if not shutil.which(t):
            raise unittest.SkipTest("%s not installed" % t)


def put(root, rel, data=b"", mode=0o644):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def mkdir(root, rel, mode=0o755):
    path = os.path.join(root, rel)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    return path


def whiteout(root, rel):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def build_layers(work):
    """Three source trees, the layer images made from them, and the implied
    directory lists (L2 only implies its root and meta/)."""
    l1, l2, l3 = (mkdir(work, "src%d" % i) for i in (1, 2, 3))

    put(l1, "etc/passwd", b"base\n")
    put(l1, "etc/gone", b"gone\n")
    keep = put(l1, "etc/keep", b"keep\n")
    os.setxattr(keep, "user.l1", b"one")
    os.link(keep, os.path.join(l1, "etc/keep2"))
    os.symlink("passwd", os.path.join(l1, "etc/pw"))
    a = put(l1, "hl/a", b"hard\n")
    os.link(a, os.path.join(l1, "hl/b"))
    os.link(a, os.path.join(l1, "hl/c"))
    put(l1, "opq/lower1", b"x")
    put(l1, "opq/sub/deep", b"y")
    put(l1, "dirfile/inner", b"z")
    put(l1, "filedir", b"file\n")
    put(l1, "big", BIG)
    put(l1, "empty")
    put(l1, "usr/bin/tool", b"#!/bin/sh\n", 0o755)
    mkdir(l1, "meta", 0o700)
    put(l1, "meta/old", b"old")
    mkdir(l1, "meta2", 0o700)
    os.mknod(os.path.join(l1, "cdev"), stat.S_IFCHR | 0o644,
             os.makedev(1, 3))
    os.mkfifo(os.path.join(l1, "fifo"), 0o644)
    owned = put(l1, "owned", b"mine\n", 0o640)
    os.chown(owned, 1234, 5678)

    os.chmod(l2, 0o700)
    passwd = put(l2, "etc/passwd", b"upper\n")
    os.setxattr(passwd, "user.k", b"v")
    whiteout(l2, "etc/gone")
    whiteout(l2, "etc/keep2")
    whiteout(l2, "hl/c")
    opq = mkdir(l2, "opq")
    os.setxattr(opq, "trusted.overlay.opaque", b"y")
    put(l2, "opq/new", b"n")
    put(l2, "dirfile", b"now a file\n")
    put(l2, "filedir/in", b"in\n")
    mkdir(l2, "meta", 0o755)
    put(l2, "meta/newfile", b"nf")
    mkdir(l2, "meta2", 0o711)
    whiteout(l2, "ghost")

    whiteout(l3, "usr")
    put(l3, "top", b"top\n")

    implied = os.path.join(work, "l2.implied")
    with open(implied, "w") as f:
        f.write("./\nmeta\n")

    images = []
    for i, src in enumerate((l1, l2, l3), 1):
        img = os.path.join(work, "L%d.erofs" % i)
        subprocess.run(["mkfs.erofs", "--quiet", "-Enoinline_data",
                        "-T1700000000", img, src],
                       check=True, capture_output=True)
        images.append(img)
    return images, ["", ":" + implied, ""]


def run_tool(*args):
    return subprocess.run([TOOL] + list(args), capture_output=True,
                          text=True)


def snapshot(root, xattrs=False):
    """path -> facts about every entry under root."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            facts = {"mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
                     "gid": st.st_gid, "ino": st.st_ino,
                     "nlink": st.st_nlink}
            if stat.S_ISDIR(st.st_mode):
                facts["kind"], facts["content"] = "dir", None
            elif stat.S_ISLNK(st.st_mode):
                facts["kind"] = "link"
                facts["content"] = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode):
                facts["kind"] = "chr"
                facts["content"] = (os.major(st.st_rdev),
                                    os.minor(st.st_rdev))
            elif stat.S_ISFIFO(st.st_mode):
                facts["kind"], facts["content"] = "fifo", None
            else:
                facts["kind"] = "file"
                with open(path, "rb") as f:
                    facts["content"] = hashlib.sha256(f.read()).hexdigest()
            if xattrs:
                facts["xattrs"] = {
                    k: os.getxattr(path, k, follow_symlinks=False)
                    for k in os.listxattr(path, follow_symlinks=False)}
            tree[rel] = facts
    return tree


def expected_content(kind, content):
    if kind == "file":
        return hashlib.sha256(content).hexdigest()
    return content


class FsmetaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need("mkfs.erofs", "fsck.erofs")
        if not os.access(TOOL, os.X_OK):
            raise unittest.SkipTest("no fsmeta_tool at %s" % TOOL)
        if os.geteuid() != 0:
            raise unittest.SkipTest("making whiteouts and trusted.* "
                                    "xattrs needs root")
        cls.work = tempfile.mkdtemp(prefix="ocicache-fsmeta.")
        cls.layers, cls.implied = build_layers(cls.work)
        cls.fsmeta = os.path.join(cls.work, "fsmeta.erofs")
        cls.vmdk = os.path.join(cls.work, "disk.vmdk")
        args = [cls.fsmeta, SEED] + [
            img + imp for img, imp in zip(cls.layers, cls.implied)]
        cls.result = run_tool("--vmdk", cls.vmdk, *args)
        cls.args = args

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)

    def assert_tree(self, tree):
        self.assertEqual(sorted(tree), sorted(EXPECTED))
        for path, (kind, mode, content) in EXPECTED.items():
            got = tree[path]
            self.assertEqual(got["kind"], kind, path)
            self.assertEqual(got["content"], expected_content(kind, content),
                             path)
            if kind != "link":
                self.assertEqual(got["mode"], mode, path)
        self.assertEqual((tree["owned"]["uid"], tree["owned"]["gid"]),
                         (1234, 5678))

    def test_fsck_extracts_merged_tree(self):
        out = os.path.join(self.work, "extract")
        shutil.rmtree(out, ignore_errors=True)
        cmd = ["fsck.erofs"] + ["--device=" + l for l in self.layers] + [
            "--extract=" + out, self.fsmeta]
        r = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_tree(snapshot(out))

    def test_same_layers_same_bytes(self):
        again = os.path.join(self.work, "again.erofs")
        other = os.path.join(self.work, "other.erofs")
        r = run_tool(again, *self.args[1:])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run_tool(other, OTHER_SEED, *self.args[2:])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.fsmeta, "rb") as a, open(again, "rb") as b, \
                open(other, "rb") as c:
            first, second, third = a.read(), b.read(), c.read()
        self.assertEqual(first, second)
        self.assertNotEqual(first, third)  # the uuid follows the seed

    def test_inline_layer_file_is_refused(self):
        src = mkdir(self.work, "inline-src")
        put(src, "small", b"tail\n")
        img = os.path.join(self.work, "inline.erofs")
        subprocess.run(["mkfs.erofs", "--quiet", img, src], check=True,
                       capture_output=True)
        out = os.path.join(self.work, "refused.erofs")
        r = run_tool(out, SEED, img)
        self.assertEqual(r.returncode, 1)
        self.assertIn("inline.erofs", r.stderr)
        self.assertIn("/small", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_vmdk_flat_disk_mounts_merged_tree(self):
        need("qemu-img")
        info = subprocess.run(["qemu-img", "info", self.vmdk],
                              capture_output=True, text=True)
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertIn("file format: vmdk", info.stdout)

        raw = os.path.join(self.work, "flat.raw")
        subprocess.run(["qemu-img", "convert", "-f", "vmdk", self.vmdk,
                        "-O", "raw", raw], check=True, capture_output=True)
        joined = b""
        for part in [self.fsmeta] + self.layers:
            with open(part, "rb") as f:
                joined += f.read()
        with open(raw, "rb") as f:
            self.assertTrue(f.read() == joined,
                            "the raw disk is not fsmeta + layers")

        if not self.kernel_erofs():
            self.skipTest("the kernel has no erofs")
        mnt = mkdir(self.work, "mnt")
        r = subprocess.run(["mount", "-t", "erofs", "-o", "ro,loop", raw,
                            mnt], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            tree = snapshot(mnt, xattrs=True)
            root = os.stat(mnt)
        finally:
            subprocess.run(["umount", mnt], check=True)

        self.assert_tree(tree)
        self.assertEqual(stat.S_IMODE(root.st_mode), 0o755)
        self.assertEqual(tree["etc/passwd"]["xattrs"], {"user.k": b"v"})
        self.assertEqual(tree["etc/keep"]["xattrs"], {"user.l1": b"one"})
        self.assertEqual(tree["opq"]["xattrs"], {})
        self.assertEqual(tree["hl/a"]["ino"], tree["hl/b"]["ino"])
        self.assertEqual(tree["hl/a"]["nlink"], 2)
        self.assertEqual(tree["etc/keep"]["nlink"], 1)

    @staticmethod
    def kernel_erofs():
        if shutil.which("modprobe"):
            subprocess.run(["modprobe", "erofs"], capture_output=True)
        with open("/proc/filesystems") as f:
            return any(line.split()[-1] == "erofs" for line in f)


if __name__ == "__main__":
    unittest.main()

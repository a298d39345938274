#!/usr/bin/env python3
"""Layer tar -> EROFS, checked against readers we did not write.

Environment:
  OCICACHE_CONVERT_TOOL  the converter: `TOOL LAYER OUT.erofs`, printing the
                         diff_id on stdout (tests/unit/convert_tool, later
                         `ocicache convert`). Default: build*/tests/convert_tool
                         in the repository.
  OCICACHE_FIXTURES      a directory made by fixtures/make-tars.py. Default:
                         made afresh in a temporary directory.

Every fixture tar is converted, then compared with a model of what the tar
says (built here with the standard library's tarfile): through
`fsck.erofs --extract` always, and through a kernel mount when running as
root on a kernel with EROFS (otherwise a "SKIP name: reason" line). fsck.erofs
1.5 drops xattrs and splits hard links when it extracts, so those are only
checked on the mount.
"""

import decimal
import glob
import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# fixture -> the plain tar whose contents it holds
GOOD = {
    "full.tar": "full.tar",
    "full.tar.gz": "full.tar",
    "full.tar.zst": "full.tar",
    "multi.tar.gz": "full.tar",
    "notrailer.tar": "notrailer.tar",
    "gnu.tar": "gnu.tar",
    "big-dir.tar": "big-dir.tar",
    "empty.tar": "empty.tar",
}

BAD = ["bad-dotdot.tar", "bad-truncated.tar.gz", "bad-garbage.tar.gz",
       "bad-truncated.tar.zst", "bad-truncated.tar"]

XATTR_PREFIXES = ("user.", "trusted.", "security.")
XATTR_WHOLE = ("system.posix_acl_access", "system.posix_acl_default")


def find_tool():
    tool = os.environ.get("OCICACHE_CONVERT_TOOL")
    if tool:
        return tool
    found = sorted(glob.glob(os.path.join(REPO, "build*", "tests",
                                          "convert_tool")))
    if not found:
        raise RuntimeError("set OCICACHE_CONVERT_TOOL to the converter "
                           "(tests/unit/convert_tool built)")
    return found[0]


def skip(test, reason):
    print(f"SKIP {test.id().split('.')[-1]}: {reason}", file=sys.stderr)
    test.skipTest(reason)


def can_mount():
    if os.geteuid() != 0:
        return "not running as root"
    with open("/proc/filesystems") as f:
        if "erofs" not in f.read().split():
            return "the kernel has no erofs"
    return None


class Node:
    """One inode of the model."""

    def __init__(self, kind, mode, uid=0, gid=0, mtime_ns=0):
        self.kind = kind  # a stat.S_IF* constant
        self.mode = mode & 0o7777
        self.uid, self.gid = uid, gid
        self.mtime_ns = mtime_ns
        self.size = 0
        self.sha256 = None
        self.target = None
        self.rdev = None
        self.xattrs = {}
        self.implied = False
        self.opaque = False


def normalize(name):
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(name)
    return "/".join(parts)


def member_mtime_ns(m):
    text = m.pax_headers.get("mtime")
    if text is not None:
        return int(decimal.Decimal(text) * 1000000000)
    return int(m.mtime) * 1000000000


def member_xattrs(m):
    out = {}
    for key, value in m.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        if not (name in XATTR_WHOLE or
                any(name.startswith(p) and len(name) > len(p)
                    for p in XATTR_PREFIXES)):
            continue  # EROFS has no index for it: the writer drops it
        out[name] = value.encode("utf-8", "surrogateescape")
    return out


def model(tar_path):
    """What the layer image must hold: path -> Node ("" is the root)."""
    root = Node(stat.S_IFDIR, 0o755)
    root.implied = True
    root_time_set = False
    tree = {"": root}

    def ensure_dir(path, mtime_ns):
        parts = path.split("/") if path else []
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in tree:
                d = Node(stat.S_IFDIR, 0o755, mtime_ns=mtime_ns)
                d.implied = True
                tree[p] = d

    def drop_below(path):
        for k in [k for k in tree if k.startswith(path + "/")]:
            del tree[k]

    with tarfile.open(tar_path) as tar:
        for m in tar:
            path = normalize(m.name)
            mtime_ns = member_mtime_ns(m)
            if not root_time_set:
                root_time_set = True
                root.mtime_ns = mtime_ns
            parent, _, base = path.rpartition("/")
            if base == ".wh..wh..opq":
                ensure_dir(parent, mtime_ns)
                tree[parent].opaque = True
                continue
            if base.startswith(".wh..wh."):
                continue
            if base.startswith(".wh."):
                path = (parent + "/" if parent else "") + base[4:]
                node = Node(stat.S_IFCHR, m.mode, m.uid, m.gid, mtime_ns)
                node.rdev = (0, 0)
            elif m.islnk():
                node = tree[normalize(m.linkname)]
            else:
                node = Node(m_kind(m), m.mode, m.uid, m.gid, mtime_ns)
                node.xattrs = member_xattrs(m)
                if m.isreg():
                    data = tar.extractfile(m).read()
                    node.size = len(data)
                    node.sha256 = hashlib.sha256(data).hexdigest()
                elif m.issym():
                    node.target = m.linkname
                    node.size = len(m.linkname.encode())
                elif m.ischr() or m.isblk():
                    node.rdev = (m.devmajor, m.devminor)
            ensure_dir(parent, mtime_ns)
            old = tree.get(path)
            if (old is not None and old.kind == stat.S_IFDIR and
                    node.kind == stat.S_IFDIR):
                old.mode, old.uid, old.gid = node.mode, node.uid, node.gid
                old.mtime_ns, old.xattrs = node.mtime_ns, node.xattrs
                old.implied = False
                continue
            if old is not None and old.kind == stat.S_IFDIR:
                drop_below(path)
            tree[path] = node
    for node in tree.values():
        if node.opaque:
            node.xattrs["trusted.overlay.opaque"] = b"y"
    return tree


def m_kind(m):
    if m.isdir():
        return stat.S_IFDIR
    if m.issym():
        return stat.S_IFLNK
    if m.ischr():
        return stat.S_IFCHR
    if m.isblk():
        return stat.S_IFBLK
    if m.isfifo():
        return stat.S_IFIFO
    return stat.S_IFREG


def walk(top):
    """Relative path -> lstat of everything below `top` ("" is `top`)."""
    out = {"": os.lstat(top)}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, top)] = os.lstat(full)
    return out


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ConvertTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tool = find_tool()
        cls.work = tempfile.mkdtemp(prefix="ocicache-convert-")
        cls.fixtures = os.environ.get("OCICACHE_FIXTURES")
        if not cls.fixtures:
            cls.fixtures = os.path.join(cls.work, "tars")
            subprocess.run([sys.executable,
                            os.path.join(REPO, "fixtures", "make-tars.py"),
                            cls.fixtures], check=True)
        cls.models = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def fixture(self, name):
        return os.path.join(self.fixtures, name)

    def model_of(self, name):
        src = GOOD[name]
        if src not in self.models:
            self.models[src] = model(self.fixture(src))
        return self.models[src]

    def convert(self, name, out, *args):
        return subprocess.run([self.tool, *args, self.fixture(name), out],
                              capture_output=True, text=True)

    def convert_ok(self, name):
        out = os.path.join(self.work, name + ".erofs")
        r = self.convert(name, out)
        self.assertEqual(r.returncode, 0, f"{name}: {r.stderr}")
        return out, r

    def fsck_extract(self, image):
        dest = tempfile.mkdtemp(prefix="extract-", dir=self.work)
        os.rmdir(dest)
        r = subprocess.run(["fsck.erofs", "--extract=" + dest, image],
                           capture_output=True, text=True)
        # fsck.erofs 1.5 can exit 0 after reporting an error.
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("<E>", r.stdout + r.stderr)
        return dest

    def check_tree(self, name, top, tree, mounted):
        """Compare the files under `top` with the model."""
        seen = walk(top)
        self.assertEqual(sorted(seen), sorted(tree), f"{name}: paths")
        for path, node in tree.items():
            st = seen[path]
            what = f"{name}: /{path}"
            self.assertEqual(stat.S_IFMT(st.st_mode), node.kind, what)
            self.assertEqual(stat.S_IMODE(st.st_mode), node.mode, what)
            if os.geteuid() == 0:
                self.assertEqual((st.st_uid, st.st_gid),
                                 (node.uid, node.gid), what)
            full = os.path.join(top, path)
            if node.kind == stat.S_IFREG:
                self.assertEqual(st.st_size, node.size, what)
                self.assertEqual(file_sha256(full), node.sha256, what)
            if node.kind == stat.S_IFLNK:
                self.assertEqual(os.readlink(full), node.target, what)
            if node.kind in (stat.S_IFCHR, stat.S_IFBLK):
                self.assertEqual((os.major(st.st_rdev),
                                  os.minor(st.st_rdev)), node.rdev, what)
            if not mounted:
                continue
            self.assertEqual(st.st_mtime_ns, node.mtime_ns, what)
            names = os.listxattr(full, follow_symlinks=False)
            got = {n: os.getxattr(full, n, follow_symlinks=False)
                   for n in names}
            self.assertEqual(got, node.xattrs, what)
        if mounted:
            self.check_links(name, seen, tree)

    def check_links(self, name, seen, tree):
        """One inode per model node; nlink counts names or subdirs."""
        ino_of = {}
        names = {}
        for path, node in tree.items():
            ino = seen[path].st_ino
            self.assertEqual(ino_of.setdefault(id(node), ino), ino,
                             f"{name}: /{path} hard link identity")
            names[id(node)] = names.get(id(node), 0) + 1
        self.assertEqual(len(set(ino_of.values())), len(ino_of),
                         f"{name}: distinct inodes")
        for path, node in tree.items():
            if node.kind == stat.S_IFDIR:
                prefix = path + "/" if path else ""
                subdirs = sum(
                    1 for p, n in tree.items()
                    if p and p.startswith(prefix) and
                    "/" not in p[len(prefix):] and n.kind == stat.S_IFDIR)
                want = 2 + subdirs
            else:
                want = names[id(node)]
            self.assertEqual(seen[path].st_nlink, want,
                             f"{name}: /{path} nlink")

    def expected_diff_id(self, name):
        path = self.fixture(GOOD[name])
        return "sha256:" + file_sha256(path)

    def test_converts_every_fixture_as_fsck_extracts_it(self):
        for name in GOOD:
            with self.subTest(fixture=name):
                image, r = self.convert_ok(name)
                self.assertEqual(r.stdout.strip(),
                                 self.expected_diff_id(name))
                self.assertEqual(os.path.getsize(image) % 4096, 0)
                dest = self.fsck_extract(image)
                self.check_tree(name, dest, self.model_of(name), False)

    def test_kernel_mount_shows_the_tar(self):
        reason = can_mount()
        if reason:
            skip(self, reason)
        for name in GOOD:
            with self.subTest(fixture=name):
                image, _ = self.convert_ok(name)
                mnt = tempfile.mkdtemp(prefix="mnt-", dir=self.work)
                subprocess.run(["mount", "-t", "erofs", "-o", "ro,loop",
                                image, mnt], check=True)
                try:
                    self.check_tree(name, mnt, self.model_of(name), True)
                finally:
                    subprocess.run(["umount", mnt], check=True)

    def test_overlay_markers_and_capabilities_on_mount(self):
        reason = can_mount()
        if reason:
            skip(self, reason)
        image, _ = self.convert_ok("full.tar")
        mnt = tempfile.mkdtemp(prefix="mnt-", dir=self.work)
        subprocess.run(["mount", "-t", "erofs", "-o", "ro,loop", image, mnt],
                       check=True)
        try:
            st = os.lstat(os.path.join(mnt, "w/x"))
            self.assertTrue(stat.S_ISCHR(st.st_mode))
            self.assertEqual(st.st_rdev, 0)
            self.assertFalse(os.path.lexists(os.path.join(mnt, "w/.wh.x")))
            self.assertEqual(os.getxattr(os.path.join(mnt, "o"),
                                         "trusted.overlay.opaque"), b"y")
            self.assertFalse(os.path.lexists(
                os.path.join(mnt, "o/.wh..wh..opq")))
            self.assertEqual(os.lstat(os.path.join(mnt, "times/nano"))
                             .st_mtime_ns, 1700000005123456789)
            self.assertEqual(os.lstat(os.path.join(mnt, "a/file1")).st_ino,
                             os.lstat(os.path.join(mnt, "hl/link1")).st_ino)
            if shutil.which("getcap"):
                r = subprocess.run(["getcap", os.path.join(mnt, "x/cap")],
                                   capture_output=True, text=True)
                self.assertIn("cap_net_bind_service", r.stdout)
            with open(os.path.join(mnt, "dup"), "rb") as f:
                self.assertEqual(f.read(), b"second version, longer\n")
            self.assertTrue(os.path.isfile(os.path.join(mnt, "late/child")))
            self.assertEqual(stat.S_IMODE(os.lstat(
                os.path.join(mnt, "late")).st_mode), 0o700)
        finally:
            subprocess.run(["umount", mnt], check=True)

    def test_reports_implied_directories(self):
        for name in ("full.tar", "gnu.tar"):
            with self.subTest(fixture=name):
                _, r = self.convert_ok(name)
                got = sorted(line[len("implied /"):]
                             for line in r.stderr.splitlines()
                             if line.startswith("implied /"))
                want = sorted(p for p, n in self.model_of(name).items()
                              if n.kind == stat.S_IFDIR and n.implied)
                self.assertEqual(got, want)
        self.assertNotIn("late", want)

    def test_output_is_deterministic(self):
        a, _ = self.convert_ok("full.tar")
        b = os.path.join(self.work, "again.erofs")
        self.assertEqual(self.convert("full.tar", b).returncode, 0)
        c, _ = self.convert_ok("full.tar.gz")
        with open(a, "rb") as fa, open(b, "rb") as fb, open(c, "rb") as fc:
            first = fa.read()
            self.assertEqual(first, fb.read())
            self.assertEqual(first, fc.read())

    def test_bad_input_fails_and_leaves_no_output(self):
        for name in BAD:
            with self.subTest(fixture=name):
                out = os.path.join(self.work, name + ".erofs")
                r = self.convert(name, out)
                self.assertNotEqual(r.returncode, 0)
                self.assertFalse(os.path.exists(out))
                self.assertEqual(r.stdout, "")
        r = self.convert("bad-dotdot.tar",
                         os.path.join(self.work, "dotdot.erofs"))
        self.assertIn("a/../../escape", r.stderr)

    def test_caps_refuse_oversized_layers(self):
        for args in (["--max-entries", "3"], ["--max-bytes", "100000"]):
            with self.subTest(args=args):
                out = os.path.join(self.work, "capped.erofs")
                r = self.convert("full.tar", out, *args)
                self.assertNotEqual(r.returncode, 0)
                self.assertFalse(os.path.exists(out))

    def test_gzip_members_are_one_stream(self):
        _, r = self.convert_ok("multi.tar.gz")
        with gzip.open(self.fixture("multi.tar.gz")) as f:
            want = hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(r.stdout.strip(), "sha256:" + want)


if __name__ == "__main__":
    unittest.main()

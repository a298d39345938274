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

import base64
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
import urllib.parse

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
    "ustar.tar": "ustar.tar",
    "sparse.tar": "sparse.tar",
    "links.tar": "links.tar",
    "whiteouts.tar": "whiteouts.tar",
    "big-dir.tar": "big-dir.tar",
    "empty.tar": "empty.tar",
}

# fixture -> (extra converter arguments, what the message must name: the
# entry at fault, or where the stream broke)
BAD = {
    "bad-dotdot.tar": ([], "entry a/../../escape: path has a '..'"),
    "bad-abs-dotdot.tar": ([], "entry /../etc/passwd: path has a '..'"),
    "bad-empty-name.tar": ([], "entry 2 (after entry ok): empty name"),
    "bad-long-name.tar": ([], "entry dir/nnnn"),
    "bad-long-path.tar": ([], "longer than 4096 bytes"),
    "bad-deep.tar": ([], "more than 1024 levels deep"),
    "bad-link-missing.tar": ([], "entry link: hard link target "
                             "no/such/file not found"),
    "bad-link-whiteout.tar": ([], "entry dead: hard link target victim "
                              "is a whiteout"),
    "bad-link-dir.tar": ([], "entry dirlink: hard link to directory adir"),
    "bad-link-replaced.tar": ([], "entry stale: hard link to directory t"),
    "bad-nul-path.tar": ([], 'path "evil" has a NUL byte inside'),
    "bad-nul-linkpath.tar": ([], 'linkpath "t" has a NUL byte inside'),
    "bad-nul-longname.tar": ([], 'long name "longlong'),
    "bad-truncated.tar.gz": ([], "in entry a/b/c/large: truncated gzip"),
    "bad-truncated.tar.zst": ([], "in entry a/b/c/large: truncated zstd"),
    "bad-truncated.tar": ([], "in entry a/b/c/large: Truncated tar"),
    "bad-truncated-header.tar": ([], "after entry a/b/c/: Truncated tar"),
    "bad-garbage.tar.gz": ([], "garbage after the end of the gzip"),
    "bad-bomb.tar.gz": (["--max-bytes", "50000000"],
                        "in entry bomb/zeros: more than 50000000 "
                        "uncompressed bytes"),
    "bad-bomb.tar.zst": (["--max-bytes", "50000000"],
                         "in entry bomb/zeros: more than 50000000 "
                         "uncompressed bytes"),
    "bad-many.tar.gz": (["--max-entries", "1000"],
                        "more than 1000 tar entries, after entry "
                        "many/00999"),
    "bad-not-tar.gz": ([], "at the first entry: Unrecognized archive"),
    "bad-not-tar": ([], "at the first entry: Unrecognized archive"),
}

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
        self.whiteout = False


def normalize(name):
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(name)
    return "/".join(parts)


def member_mtime_ns(m):
    """EROFS has no time before 1970: the writer keeps 0 instead."""
    text = m.pax_headers.get("mtime")
    if text is not None:
        ns = int(decimal.Decimal(text) * 1000000000)
    else:
        ns = int(m.mtime) * 1000000000
    return max(ns, 0)


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
    for key, value in m.pax_headers.items():
        if key.startswith("LIBARCHIVE.xattr."):
            name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr."):])
            out[name] = base64.b64decode(value + "=" * (-len(value) % 4))
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
            if p not in tree or tree[p].whiteout:
                # A whiteout and this layer's directory of the same name:
                # the directory stays, opaque to what lies below.
                d = Node(stat.S_IFDIR, 0o755, mtime_ns=mtime_ns)
                d.implied = True
                d.opaque = p in tree
                tree[p] = d

    def drop_below(path):
        for k in [k for k in tree if k.startswith(path + "/")]:
            del tree[k]

    # Hard links that came before their targets: (path, target, the
    # placeholder that holds the name until the target comes).
    pending = []

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
                ensure_dir(parent, mtime_ns)
                old = tree.get(path)
                if old is not None and not old.whiteout:
                    # It hides lower layers only: this layer's entry stays.
                    if old.kind == stat.S_IFDIR:
                        old.opaque = True
                    continue
                node = Node(stat.S_IFCHR, m.mode, m.uid, m.gid, mtime_ns)
                node.rdev = (0, 0)
                node.whiteout = True
            elif m.islnk():
                target = normalize(m.linkname)
                if target in tree:
                    node = tree[target]
                else:
                    node = Node(stat.S_IFREG, m.mode, m.uid, m.gid, mtime_ns)
                    node.size = 0
                    node.sha256 = hashlib.sha256(b"").hexdigest()
                    pending.append((path, target, node))
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
            if (old is not None and old.whiteout and
                    node.kind == stat.S_IFDIR):
                node.opaque = True
            tree[path] = node
            for link in [l for l in pending if l[1] == path]:
                pending.remove(link)
                # Unless a later entry took the link's name meanwhile.
                if tree.get(link[0]) is link[2]:
                    tree[link[0]] = node
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


HUGE_MARK_EVERY = 1 << 30


def huge_marks(size):
    """Where the streamed big file has known bytes, and which."""
    return [(off, b"mark at %d" % off)
            for off in range(0, size - 100, HUGE_MARK_EVERY)]


def huge_tar(size):
    """A PAX tar holding one file of `size` bytes, yielded in pieces so that
    it is never stored: zeros, a mark every GiB and b"tail!" at the end."""
    ti = tarfile.TarInfo("huge/file")
    ti.size, ti.mtime, ti.mode = size, 1700000000, 0o644
    yield ti.tobuf(format=tarfile.PAX_FORMAT)
    chunk = 1 << 20
    marks = dict(huge_marks(size))
    pos = 0
    body = size - 5
    while pos < body:
        n = min(chunk, body - pos)
        piece = bytearray(n)
        for off, mark in marks.items():
            if pos <= off < pos + n:
                piece[off - pos:off - pos + len(mark)] = mark
        yield bytes(piece)
        pos += n
    yield b"tail!" + bytes(-size % 512) + bytes(1024)


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
        r = subprocess.run(["fsck.erofs", "--extract=" + dest, "--preserve",
                            image], capture_output=True, text=True)
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
            # fsck.erofs --preserve sets times on everything but symlinks.
            if mounted or node.kind != stat.S_IFLNK:
                self.assertEqual(st.st_mtime_ns, node.mtime_ns, what)
            if not mounted:
                continue
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

    def test_bad_input_fails_naming_the_entry_and_leaves_no_output(self):
        for name, (args, says) in BAD.items():
            with self.subTest(fixture=name):
                out = os.path.join(self.work, name + ".erofs")
                r = self.convert(name, out, *args)
                # convert_tool exits 6 for OCICACHE_EFORMAT.
                self.assertEqual(r.returncode, 6, r.stderr)
                self.assertFalse(os.path.exists(out))
                self.assertEqual(r.stdout, "")
                errors = [ln for ln in r.stderr.splitlines()
                          if ln.startswith("convert_tool: ")]
                self.assertEqual(len(errors), 1, r.stderr)
                self.assertIn(self.fixture(name) + ": ", errors[0])
                self.assertIn(says, errors[0])

    def test_the_cli_refuses_bad_input_too(self):
        cli = os.environ.get("OCICACHE_BIN")
        if not cli:
            skip(self, "OCICACHE_BIN (the ocicache CLI) not set")
        out = os.path.join(self.work, "cli-bad.erofs")
        r = subprocess.run([cli, "convert", self.fixture("bad-deep.tar"),
                            out], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("more than 1024 levels deep", r.stderr)
        self.assertEqual(os.listdir(self.work).count("cli-bad.erofs"), 0)
        self.assertFalse([f for f in os.listdir(self.work)
                          if f.startswith("cli-bad")])

    def test_warns_about_times_before_1970_naming_the_entry(self):
        _, r = self.convert_ok("full.tar")
        self.assertIn("entry times/before1970: mtime -86400 is before "
                      "1970", r.stderr)

    def test_identical_xattrs_are_shared(self):
        image, _ = self.convert_ok("full.tar")
        sb = subprocess.run(["dump.erofs", "-s", image], capture_output=True,
                            text=True, check=True).stdout
        start = int(sb.split("shared xattr metadata start block:")[1]
                    .split()[0])
        self.assertGreater(start, 0)
        r = subprocess.run(["dump.erofs", "--path=/x/shared3", image],
                           capture_output=True, text=True, check=True)
        # The ibody header (12), two shared ids (4 each) for the capability
        # and user.shared, and user.own inline (4 + 3 + 6, padded to 16);
        # unshared, the capability and user.shared alone take 68 bytes.
        self.assertIn("Xattr size: 36", r.stdout)

    def test_hard_links_count_their_names(self):
        image, _ = self.convert_ok("links.tar")
        want = {"/t/one": 5, "/l/chain": 5, "/l/keeps-old": 1, "/t/old": 1,
                "/t/sym": 2, "/t/dev": 2,
                # Links before their targets: resolved when they come,
                # unless a later entry took the link's name.
                "/t/later": 2, "/l/forward": 2, "/t/later2": 1,
                "/l/fwd-taken": 1}
        for path, nlink in want.items():
            r = subprocess.run(["dump.erofs", "--path=" + path, image],
                               capture_output=True, text=True, check=True)
            self.assertIn("Links: %d " % nlink, r.stdout, path)

    def mounted(self, image):
        mnt = tempfile.mkdtemp(prefix="mnt-", dir=self.work)
        subprocess.run(["mount", "-t", "erofs", "-o", "ro,loop", image, mnt],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", mnt], check=True)
        return mnt

    def test_capabilities_acls_and_libarchive_xattrs_on_mount(self):
        reason = can_mount()
        if reason:
            skip(self, reason)
        mnt = self.mounted(self.convert_ok("full.tar")[0])
        for tool in ("getcap", "getfacl", "getfattr"):
            self.assertTrue(shutil.which(tool), f"{tool} not installed "
                            "(packages libcap2-bin, acl, attr)")
        r = subprocess.run(["getcap", os.path.join(mnt, "x/shared4")],
                           capture_output=True, text=True, check=True)
        self.assertIn("cap_net_bind_service=ep", r.stdout)
        r = subprocess.run(["getfacl", "-n", os.path.join(mnt, "acl")],
                           capture_output=True, text=True, check=True)
        self.assertIn("user:1234:r--", r.stdout)
        self.assertIn("default:group:4321:r-x", r.stdout)
        self.assertIn("default:mask::r-x", r.stdout)
        r = subprocess.run(["getfacl", "-n", os.path.join(mnt, "acl/file")],
                           capture_output=True, text=True, check=True)
        self.assertIn("user:1234:r--", r.stdout)
        self.assertNotIn("default:", r.stdout)
        r = subprocess.run(["getfattr", "-d", "-m", "-", "-e", "hex",
                            os.path.join(mnt, "x/libarchive")],
                           capture_output=True, text=True, check=True)
        self.assertIn("trusted.lax=0x74", r.stdout)
        lax = os.path.join(mnt, "x/libarchive")
        self.assertEqual(os.getxattr(lax, "user.lax name=1"),
                         b"bin\0ary\xff")
        st = os.lstat(os.path.join(mnt, "pax/owners"))
        self.assertEqual((st.st_uid, st.st_gid), (4000000000, 3000000000))

    def test_sparse_holes_read_as_zeros(self):
        reason = can_mount()
        if reason:
            skip(self, reason)
        mnt = self.mounted(self.convert_ok("sparse.tar")[0])
        with open(os.path.join(mnt, "sparse/few"), "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 300000)
        self.assertEqual(data[100:65536], bytes(65436))
        self.assertEqual(data[65536 + 4096:200000], bytes(200000 - 69632))
        self.assertEqual(data[205000:], bytes(95000))
        self.assertNotEqual(data[:100], bytes(100))
        with open(os.path.join(mnt, "sparse/allhole"), "rb") as f:
            self.assertEqual(f.read(), bytes(1 << 20))

    def test_file_over_4gib_streamed_through_a_pipe(self):
        size = (4 << 30) + 5
        out = os.path.join(self.work, "huge.erofs")
        log = tempfile.TemporaryFile(dir=self.work)
        self.addCleanup(log.close)
        self.addCleanup(lambda: os.path.exists(out) and os.unlink(out))
        proc = subprocess.Popen([self.tool, "-", out],
                                stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=log)
        try:
            for piece in huge_tar(size):
                proc.stdin.write(piece)
            proc.stdin.close()
            proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log.seek(0)
        self.assertEqual(proc.returncode, 0, log.read().decode())
        r = subprocess.run(["dump.erofs", "--path=/huge/file", out],
                           capture_output=True, text=True, check=True)
        self.assertIn("Size: %d " % size, r.stdout)
        reason = can_mount()
        if reason:
            skip(self, "size checked with dump.erofs; contents need the "
                 "kernel mount: " + reason)
        mnt = self.mounted(out)
        path = os.path.join(mnt, "huge/file")
        self.assertEqual(os.stat(path).st_size, size)
        with open(path, "rb") as f:
            for off, want in huge_marks(size):
                f.seek(off)
                self.assertEqual(f.read(len(want)), want, off)
            f.seek(size - 5)
            self.assertEqual(f.read(), b"tail!")

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

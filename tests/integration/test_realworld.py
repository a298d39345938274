#!/usr/bin/env python3
"""Real-world layer tars (Debian packages' data.tar) against GNU tar.

fixtures/debian-tars.sh fetches the packages (apt-get download, cached in
/var/cache/ocicache-fixtures) and gives plain tars. Each is converted
(`ocicache convert` when OCICACHE_BIN is set, else OCICACHE_CONVERT_TOOL or
build*/tests/convert_tool), the image is mounted by the kernel, and the
mount is compared with `tar -xf` of the same tar (as root, numeric owners,
every xattr, permissions kept): names, types, modes, owners, sizes, content
hashes, symlink targets, hard links by inode identity, xattrs and mtimes.

A package that cannot be fetched is a failure, never a skip. Without root or
without erofs in the kernel the comparison cannot run: a SKIP line says so.

Environment: OCICACHE_DEBIAN_TARS, a folder of PACKAGE.tar made earlier by
the script, skips the fetch.
"""

import glob
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
PACKAGES = ["coreutils", "bash", "util-linux", "iputils-ping", "tzdata",
            "perl-base"]


def converter():
    cli = os.environ.get("OCICACHE_BIN")
    if cli:
        return [cli, "convert"]
    tool = os.environ.get("OCICACHE_CONVERT_TOOL")
    if tool:
        return [tool]
    found = sorted(glob.glob(os.path.join(REPO, "build*", "tests",
                                          "convert_tool")))
    if not found:
        raise RuntimeError("set OCICACHE_BIN or OCICACHE_CONVERT_TOOL")
    return [found[0]]


def cannot_mount():
    if os.geteuid() != 0:
        return "not running as root (tar -x and mount need it)"
    with open("/proc/filesystems") as f:
        if "erofs" not in f.read().split():
            return "the kernel has no erofs"
    return None


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot(top):
    """Relative path -> what a user sees of it; and inode -> paths."""
    out = {}
    groups = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, top)
            out[rel] = describe(full)
            st = os.lstat(full)
            if not stat.S_ISDIR(st.st_mode):
                groups.setdefault(st.st_ino, []).append(rel)
    out["."] = describe(top)
    links = sorted(sorted(paths) for paths in groups.values())
    return out, links


def describe(path):
    st = os.lstat(path)
    d = {
        "type": stat.S_IFMT(st.st_mode),
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "owner": (st.st_uid, st.st_gid),
        "mtime_ns": st.st_mtime_ns,
        "xattrs": {n: os.getxattr(path, n, follow_symlinks=False)
                   for n in os.listxattr(path, follow_symlinks=False)},
    }
    if stat.S_ISREG(st.st_mode):
        d["size"] = st.st_size
        d["sha256"] = sha256(path)
        d["nlink"] = st.st_nlink
    elif stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return d


def restore_dir_times(tar, top):
    """GNU tar makes symlinks last (placeholders first, for safety), after
    it has set its directories' times, so a directory holding a symlink
    keeps the time of extraction. Set them again from the tar itself."""
    with tarfile.open(tar) as t:
        dirs = [m for m in t if m.isdir()]
    for m in sorted(dirs, key=lambda m: -m.name.count("/")):
        path = os.path.normpath(os.path.join(top, m.name))
        os.utime(path, ns=(m.mtime * 10**9, int(m.mtime) * 10**9),
                 follow_symlinks=False)


class RealWorldTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="ocicache-realworld-")
        cls.tars = os.environ.get("OCICACHE_DEBIAN_TARS")
        cls.fetch = None
        if not cls.tars:
            cls.tars = os.path.join(cls.work, "tars")
            cls.fetch = subprocess.run(
                [os.path.join(REPO, "fixtures", "debian-tars.sh"), cls.tars,
                 *PACKAGES], capture_output=True, text=True)

    @classmethod
    def tearDownClass(cls):
        for mnt in glob.glob(os.path.join(cls.work, "mnt-*")):
            subprocess.run(["umount", mnt], capture_output=True)
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_debian_packages_were_fetched(self):
        if self.fetch is not None:
            self.assertEqual(self.fetch.returncode, 0,
                             "fixtures/debian-tars.sh failed:\n" +
                             self.fetch.stderr[-3000:])
        for pkg in PACKAGES:
            path = os.path.join(self.tars, pkg + ".tar")
            self.assertTrue(os.path.getsize(path) > 0, path)

    def compare(self, pkg):
        tar = os.path.join(self.tars, pkg + ".tar")
        self.assertTrue(os.path.exists(tar), f"{tar} missing: the fetch "
                        "failed (see test_debian_packages_were_fetched)")
        image = os.path.join(self.work, pkg + ".erofs")
        r = subprocess.run(converter() + [tar, image], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, f"{pkg}: {r.stderr}")

        ref = os.path.join(self.work, "ref-" + pkg)
        os.mkdir(ref)
        subprocess.run(["tar", "-xf", tar, "-C", ref, "--numeric-owner",
                        "--same-owner", "-p", "--xattrs",
                        "--xattrs-include=*"], check=True)
        restore_dir_times(tar, ref)
        mnt = os.path.join(self.work, "mnt-" + pkg)
        os.mkdir(mnt)
        subprocess.run(["mount", "-t", "erofs", "-o", "ro,loop", image, mnt],
                       check=True)
        try:
            want, want_links = snapshot(ref)
            got, got_links = snapshot(mnt)
        finally:
            subprocess.run(["umount", mnt], check=True)
        self.assertEqual(sorted(got), sorted(want), f"{pkg}: names")
        for path in sorted(want):
            self.assertEqual(got[path], want[path], f"{pkg}: /{path}")
        self.assertEqual(got_links, want_links, f"{pkg}: hard links")
        return want, want_links

    def test_packages_match_tar_extraction(self):
        reason = cannot_mount()
        if reason:
            print(f"SKIP test_packages_match_tar_extraction: {reason}",
                  file=sys.stderr)
            self.skipTest(reason)
        seen_links = seen_setuid = 0
        for pkg in PACKAGES:
            with self.subTest(package=pkg):
                tree, links = self.compare(pkg)
                seen_links += sum(1 for g in links if len(g) > 1)
                seen_setuid += sum(1 for d in tree.values()
                                   if int(d["mode"], 8) & 0o4000)
        # The comparison covered the cases these packages are here for.
        self.assertGreaterEqual(seen_links, 1, "no hard link compared")
        self.assertGreaterEqual(seen_setuid, 1, "no setuid file compared")


if __name__ == "__main__":
    unittest.main()

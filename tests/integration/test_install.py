"""The installed library as a user meets it: `meson install` into a staging
folder, then a program built only from the installed header and the
pkg-config file opens a cache, lists it, converts a layer and reads the
error message of a failing call."""
import json
import os
import subprocess
import tempfile
import textwrap
import unittest

BIN = os.environ.get("OCICACHE_BIN", "build/cli/ocicache")
BUILD = os.path.dirname(os.path.dirname(os.path.abspath(BIN)))

PROGRAM = textwrap.dedent(r"""
    #include <ocicache/ocicache.h>
    #include <stdio.h>
    #include <string.h>

    int main(int argc, char **argv)
    {
        ocicache *cache;
        ocicache_image **images;
        ocicache_image *image = NULL;
        struct ocicache_convert_result res;
        size_t count;
        int rc;

        if (argc != 4)
            return 2;
        if (ocicache_open(&cache, argv[1]) != 0)
            return 3;
        if (ocicache_image_list(&images, &count, cache) != 0)
            return 4;
        printf("images %zu\n", count);
        ocicache_image_list_free(images, count);
        if (ocicache_convert_layer(&res, argv[2], argv[3]) != 0)
            return 5;
        printf("diff_id %s\n", res.diff_id);
        rc = ocicache_image_get(&image, cache, "no/such:image");
        printf("get %s: %s\n", ocicache_strerror(rc),
               ocicache_error_message());
        ocicache_close(cache);
        return rc == OCICACHE_ENOTFOUND && image == NULL ? 0 : 6;
    }
""")


def sanitize_flags():
    p = subprocess.run(["meson", "introspect", BUILD, "--buildoptions"],
                       stdout=subprocess.PIPE, text=True, check=True)
    for opt in json.loads(p.stdout):
        if opt["name"] == "b_sanitize" and opt["value"] != "none":
            return ["-fsanitize=" + opt["value"]]
    return []


class InstalledLibraryTest(unittest.TestCase):
    def test_program_builds_from_installed_header_and_pkg_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            stage = os.path.join(tmp, "stage")
            subprocess.run(["meson", "install", "-C", BUILD, "--destdir",
                            stage, "--quiet"], check=True,
                           stdout=subprocess.DEVNULL)
            pcs = []
            for root, _, files in os.walk(stage):
                pcs += [root for f in files if f == "ocicache.pc"]
            self.assertEqual(len(pcs), 1, "one ocicache.pc installed")
            env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=stage,
                       PKG_CONFIG_PATH=pcs[0])
            flags = subprocess.run(
                ["pkg-config", "--cflags", "--libs", "ocicache"], env=env,
                stdout=subprocess.PIPE, text=True, check=True).stdout.split()

            src = os.path.join(tmp, "user.c")
            with open(src, "w") as f:
                f.write(PROGRAM)
            exe = os.path.join(tmp, "user")
            subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror",
                            src, "-o", exe] + flags + sanitize_flags(),
                           check=True)

            tar = os.path.join(tmp, "layer.tar")
            subprocess.run(["tar", "-cf", tar, "-C", "/etc", "hostname"],
                           check=True)
            libdir = [fl[2:] for fl in flags if fl.startswith("-L")][0]
            run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
            p = subprocess.run([exe, os.path.join(tmp, "cache"), tar,
                                os.path.join(tmp, "layer.erofs")],
                               env=run_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            lines = p.stdout.splitlines()
            self.assertEqual(lines[0], "images 0")
            self.assertRegex(lines[1], r"^diff_id sha256:[0-9a-f]{64}$")
            self.assertIn("get not found:", lines[2])
            self.assertIn("no/such:image", lines[2])
            fsck = subprocess.run(["fsck.erofs",
                                   os.path.join(tmp, "layer.erofs")],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
            self.assertEqual(fsck.returncode, 0, fsck.stdout)
            self.assertNotIn("<E>", fsck.stdout)


if __name__ == "__main__":
    unittest.main()

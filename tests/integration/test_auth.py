"""ocicache pulling from registries that want credentials or TLS.

- basic auth: the registry's htpasswd (bcrypt); credentials from the
  ocicache config file ($OCICACHE_CONFIG) or Docker's config.json.
- token auth: the registry's `auth.token` with the rig's token server
  (RS256 JWTs), anonymous pull tokens and tokens for credentials.
- TLS: a self-signed certificate for 127.0.0.1, trusted through the CA file
  named in the ocicache config.
"""

import base64
import os
import unittest

import rig

USER, PASSWORD = "alice", "correct horse"


def creds_config(host, user=USER, password=PASSWORD):
    return {"registries": {host: {"username": user, "password": password}}}


class AuthBase(unittest.TestCase):
    registry = None

    @classmethod
    def tearDownClass(cls):
        for attr in ("registry", "token_server"):
            obj = getattr(cls, attr, None)
            if obj is not None:
                obj.stop()

    def new_cache(self, config=None, docker_config=None):
        c = rig.Cache(config=config, docker_config=docker_config)
        self.addCleanup(c.cleanup)
        return c

    def ref(self, name="two"):
        return "%s/auth/%s:latest" % (self.registry.host, name)

    def assert_pulled(self, cache, p, name="two"):
        self.assertEqual(p.returncode, 0, p.stderr)
        digest = rig.layout_manifest_digest(name)
        self.assertEqual(p.stdout, "%s@%s\n" % (self.ref(name), digest))
        images = cache.json("images", "--json")
        self.assertEqual([i["manifest_digest"] for i in images], [digest])


class TestBasicAuth(AuthBase):
    @classmethod
    def setUpClass(cls):
        cls.registry = rig.Registry(auth=("htpasswd", {USER: PASSWORD}))
        cls.registry.push("two", "auth/two:latest", creds=(USER, PASSWORD))

    def test_credentials_from_config(self):
        c = self.new_cache(creds_config(self.registry.host))
        p = c.run("pull", "--plain-http", self.ref())
        self.assert_pulled(c, p)

    def test_credentials_from_docker_config(self):
        auth = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode())
        c = self.new_cache(docker_config={"auths": {
            self.registry.host: {"auth": auth.decode()}}})
        p = c.run("pull", "--plain-http", self.ref())
        self.assert_pulled(c, p)

    def test_wrong_password_exits_5(self):
        c = self.new_cache(creds_config(self.registry.host,
                                        password="wrong"))
        p = c.run("pull", "--plain-http", self.ref())
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertNotIn("wrong", p.stderr, "the password was printed")
        self.assertEqual(c.json("images", "--json"), [])

    def test_no_credentials_exits_5(self):
        c = self.new_cache()
        p = c.run("pull", "--plain-http", self.ref())
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertEqual(c.json("images", "--json"), [])

    def test_password_never_printed(self):
        c = self.new_cache(creds_config(self.registry.host))
        p = c.run("-v", "pull", "--plain-http", self.ref())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(PASSWORD, p.stdout + p.stderr)
        self.assertNotIn(base64.b64encode(
            ("%s:%s" % (USER, PASSWORD)).encode()).decode(),
            p.stdout + p.stderr)


class TestTokenAuth(AuthBase):
    @classmethod
    def setUpClass(cls):
        cls.token_server = rig.TokenServer(users={USER: PASSWORD},
                                           anonymous=True)
        cls.registry = rig.Registry(auth=("token", cls.token_server))
        cls.registry.push("two", "auth/two:latest", creds=(USER, PASSWORD))

    def setUp(self):
        self.token_server.anonymous = True
        del self.token_server.requests[:]

    def test_anonymous_token(self):
        c = self.new_cache()
        p = c.run("pull", "--plain-http", self.ref())
        self.assert_pulled(c, p)
        granted = [r for r in self.token_server.requests if r["granted"]]
        self.assertTrue(granted, "no token was requested")
        for r in granted:
            self.assertIsNone(r["user"])
            self.assertIn("repository:auth/two:pull", r["scope"])
            self.assertEqual(r["service"], rig.TokenServer.service)

    def test_token_with_credentials(self):
        self.token_server.anonymous = False
        c = self.new_cache(creds_config(self.registry.host))
        p = c.run("pull", "--plain-http", self.ref())
        self.assert_pulled(c, p)
        users = {r["user"] for r in self.token_server.requests
                 if r["granted"]}
        self.assertEqual(users, {USER})

    def test_token_wrong_password_exits_5(self):
        self.token_server.anonymous = False
        c = self.new_cache(creds_config(self.registry.host,
                                        password="wrong"))
        p = c.run("pull", "--plain-http", self.ref())
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertEqual(c.json("images", "--json"), [])

    def test_token_anonymous_refused_exits_5(self):
        self.token_server.anonymous = False
        c = self.new_cache()
        p = c.run("pull", "--plain-http", self.ref())
        self.assertEqual(p.returncode, 5, p.stderr)


class TestTls(AuthBase):
    @classmethod
    def setUpClass(cls):
        cls.registry = rig.Registry(tls=True)
        cls.registry.push("two", "auth/two:latest")

    def test_untrusted_certificate_exits_5(self):
        c = self.new_cache()
        p = c.run("pull", self.ref())
        self.assertEqual(p.returncode, 5, p.stderr)
        self.assertEqual(c.json("images", "--json"), [])

    def test_ca_file_from_config(self):
        c = self.new_cache({"registries": {self.registry.host: {
            "ca_file": self.registry.ca_file}}})
        p = c.run("pull", self.ref())
        self.assert_pulled(c, p)

    def test_insecure_in_config_means_plain_http(self):
        # The TLS registry does not speak plain http: the pull must fail,
        # which shows the config's "insecure" switched the scheme.
        c = self.new_cache({"registries": {self.registry.host: {
            "insecure": True}}})
        p = c.run("pull", self.ref())
        self.assertEqual(p.returncode, 5, p.stderr)


if __name__ == "__main__":
    unittest.main()

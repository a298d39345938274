"""Test rig for ocicache's integration tests (Python standard library only).

- Registry: Debian's `docker-registry serve` (the CNCF distribution registry)
  on a free 127.0.0.1 port with its own storage, in plain HTTP, TLS (a
  self-signed certificate for IP 127.0.0.1), basic auth (bcrypt htpasswd) or
  token auth.
- TokenServer: a token service for the registry's `auth.token`; JWTs are
  RS256, signed with `openssl dgst -sha256 -sign`.
- CorruptingProxy: forwards everything to a registry but flips one byte in
  the body of 200 blob responses.
- Fixtures: the layouts fixtures/build-images.sh makes, pushed with skopeo.
- The ocicache CLI runner and helpers that read what it made: trees of
  files, the VMDK as a flat raw disk mounted by the kernel.

Every process or server started here is stopped by its stop() method and,
failing that, at interpreter exit. When OCICACHE_RIG_PIDDIR is set, the pid
of each registry is written there while it runs so that tests/run can stop
it even if this process dies.
"""

import atexit
import base64
import contextlib
import hashlib
import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])

_cleanups = []
_cleanup_lock = threading.Lock()


def _register_cleanup(fn):
    with _cleanup_lock:
        _cleanups.append(fn)


def _unregister_cleanup(fn):
    with _cleanup_lock:
        if fn in _cleanups:
            _cleanups.remove(fn)


@atexit.register
def _run_cleanups():
    while True:
        with _cleanup_lock:
            if not _cleanups:
                return
            fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # best effort at exit
            print("rig: cleanup failed: %s" % e, file=sys.stderr)


def run(cmd, check=True, timeout=300, **kw):
    """subprocess.run with text output captured; raise with the output on
    failure when `check`."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s exited %d\nstdout: %s\nstderr: %s" % (
            " ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port nothing listens on (bound, never listened, closed)."""
    return free_port()


# ------------------------------------------------------------------ fixtures

_fixtures_dir = None


def fixtures_dir():
    """The directory of fixture layouts: $OCICACHE_IMAGE_FIXTURES, else
    fixtures/out, built with fixtures/build-images.sh when incomplete."""
    global _fixtures_dir
    if _fixtures_dir:
        return _fixtures_dir
    d = os.environ.get("OCICACHE_IMAGE_FIXTURES") or os.path.join(
        REPO_ROOT, "fixtures", "out")
    if not os.path.exists(os.path.join(d, "DONE")):
        run([os.path.join(REPO_ROOT, "fixtures", "build-images.sh"), d],
            timeout=600)
    _fixtures_dir = d
    return d


def layout(name):
    return os.path.join(fixtures_dir(), name)


def layout_manifest_digest(name, tag="latest"):
    """The digest index.json gives `tag` in layout `name` (for `multi`,
    the index's)."""
    index = json.load(open(os.path.join(layout(name), "index.json")))
    for m in index["manifests"]:
        if m.get("annotations", {}).get(
                "org.opencontainers.image.ref.name") == tag:
            return m["digest"]
    raise KeyError("%s has no tag %s" % (name, tag))


def layout_blob(name, digest):
    with open(os.path.join(layout(name), "blobs",
                           *digest.split(":")), "rb") as f:
        return f.read()


def layout_json(name, digest):
    return json.loads(layout_blob(name, digest))


def source_ref(name):
    """The skopeo source for fixture `name`."""
    if name == "two-v2s2":
        return "dir:" + layout(name)
    return "oci:%s:latest" % layout(name)


_unpacked = {}


def unpacked_rootfs(name, tag="latest"):
    """`umoci unpack` of fixture `name` (the expected merged tree, from a
    reader we did not write); made once per process."""
    key = (name, tag)
    if key not in _unpacked:
        d = tempfile.mkdtemp(prefix="ocicache-umoci-")
        _register_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
        bundle = os.path.join(d, "bundle")
        run(["umoci", "unpack", "--image", "%s:%s" % (layout(name), tag),
             bundle])
        _unpacked[key] = os.path.join(bundle, "rootfs")
    return _unpacked[key]


# ------------------------------------------------------------------ certificates

def make_cert(directory, cn="127.0.0.1",
              san="IP:127.0.0.1,DNS:localhost"):
    """A self-signed RSA certificate and key: (cert_path, key_path)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-days", "2", "-subj", "/CN=" + cn, "-keyout", key, "-out", cert,
         "-addext", "subjectAltName=" + san])
    return cert, key


def htpasswd_file(path, users):
    """Write a bcrypt htpasswd file for {user: password}."""
    lines = []
    for user, password in users.items():
        p = run(["htpasswd", "-Bbn", user, password])
        lines.append(p.stdout.strip())
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# ------------------------------------------------------------------ registry

class Registry:
    """Debian's docker-registry on 127.0.0.1:PORT with its own storage.

    auth: None, ("htpasswd", {user: password}) or ("token", TokenServer).
    tls: serve HTTPS with a fresh self-signed certificate (self.ca_file).
    """

    def __init__(self, auth=None, tls=False, storage=None):
        self.dir = tempfile.mkdtemp(prefix="ocicache-registry-")
        self.storage = storage or os.path.join(self.dir, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.auth = auth
        self.tls = tls
        self.ca_file = None
        self.proc = None
        self.port = None
        self._pidfile = None
        self._stop_cb = self.stop
        if tls:
            self.ca_file, self._key = make_cert(self.dir)
        _register_cleanup(self._stop_cb)
        self.start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "%s://%s" % ("https" if self.tls else "http", self.host)

    def _config(self):
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            "    rootdirectory: %s" % self.storage,
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            "  addr: 127.0.0.1:%d" % self.port,
            "  secret: ocicache-test-rig",
        ]
        if self.tls:
            lines += ["  tls:",
                      "    certificate: %s" % self.ca_file,
                      "    key: %s" % self._key]
        if self.auth and self.auth[0] == "htpasswd":
            path = os.path.join(self.dir, "htpasswd")
            htpasswd_file(path, self.auth[1])
            lines += ["auth:", "  htpasswd:", "    realm: ocicache-test",
                      "    path: %s" % path]
        elif self.auth and self.auth[0] == "token":
            ts = self.auth[1]
            lines += ["auth:", "  token:",
                      "    realm: %s" % ts.realm,
                      "    service: %s" % ts.service,
                      "    issuer: %s" % ts.issuer,
                      "    rootcertbundle: %s" % ts.cert]
        elif self.auth:
            raise ValueError("unknown auth %r" % (self.auth,))
        return "\n".join(lines) + "\n"

    def start(self):
        last = None
        for _ in range(5):
            self.port = free_port()
            cfg = os.path.join(self.dir, "config.yml")
            with open(cfg, "w") as f:
                f.write(self._config())
            log = open(os.path.join(self.dir, "registry.log"), "ab")
            self.proc = subprocess.Popen(
                ["docker-registry", "serve", cfg], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
            self._write_pid()
            try:
                self._wait_ready()
                return
            except RuntimeError as e:
                last = e
                self.stop(keep_files=True)
        raise RuntimeError("registry did not start: %s\n%s" % (
            last, self.log()))

    def _write_pid(self):
        piddir = os.environ.get("OCICACHE_RIG_PIDDIR")
        if piddir and os.path.isdir(piddir):
            self._pidfile = os.path.join(piddir, "registry.%d" %
                                         self.proc.pid)
            with open(self._pidfile, "w") as f:
                f.write("%d\n" % self.proc.pid)

    def _wait_ready(self, timeout=15):
        ctx = ssl._create_unverified_context() if self.tls else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("exited with %d" % self.proc.returncode)
            try:
                urllib.request.urlopen(self.url + "/v2/", timeout=2,
                                       context=ctx).close()
                return
            except urllib.error.HTTPError:
                return  # 401: up, with auth
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise RuntimeError("no answer from %s/v2/ in %ds" % (self.url,
                                                             timeout))

    def log(self):
        try:
            with open(os.path.join(self.dir, "registry.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, keep_files=False):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self._pidfile:
            with contextlib.suppress(OSError):
                os.unlink(self._pidfile)
            self._pidfile = None
        if not keep_files:
            _unregister_cleanup(self._stop_cb)
            shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self):
        """Stop and start again on a new port, keeping the storage."""
        self.stop(keep_files=True)
        self.start()

    # -- content

    def push(self, fixture, repo_tag, creds=None, fmt=None):
        """Push fixture `fixture` to REPO:TAG with skopeo, digests kept."""
        cmd = ["skopeo", "copy", "-q", "--preserve-digests",
               "--dest-tls-verify=false"]
        if fixture == "multi":
            cmd.append("--all")
        if fmt:
            cmd += ["--format", fmt]
            cmd.remove("--preserve-digests")
        if creds:
            cmd += ["--dest-creds", "%s:%s" % creds]
        else:
            cmd.append("--dest-no-creds")
        cmd += [source_ref(fixture),
                "docker://%s/%s" % (self.host, repo_tag)]
        run(cmd, env=skopeo_env(), timeout=300)

    def manifest(self, repo, reference, creds=None):
        """(digest, content_type, body) of a manifest as the registry
        serves it (digest = sha256 of the body)."""
        if self.auth is None:
            req = urllib.request.Request(
                "%s/v2/%s/manifests/%s" % (self.url, repo, reference),
                headers={"Accept": MANIFEST_ACCEPT})
            ctx = ssl._create_unverified_context() if self.tls else None
            with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                body = r.read()
                ctype = r.headers.get("Content-Type")
        else:
            cmd = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
            if creds:
                cmd += ["--creds", "%s:%s" % creds]
            p = run(cmd + ["docker://%s/%s:%s" % (self.host, repo,
                                                     reference)],
                    env=skopeo_env())
            body = p.stdout.encode()
            ctype = json.loads(body).get("mediaType")
        return "sha256:" + hashlib.sha256(body).hexdigest(), ctype, body

    def delete_manifest(self, repo, digest):
        req = urllib.request.Request(
            "%s/v2/%s/manifests/%s" % (self.url, repo, digest),
            method="DELETE")
        ctx = ssl._create_unverified_context() if self.tls else None
        urllib.request.urlopen(req, timeout=10, context=ctx).close()


_skopeo_dir = None


def skopeo_env():
    """skopeo's environment: its own empty auth file and no registries.conf
    surprises from the caller."""
    global _skopeo_dir
    if _skopeo_dir is None:
        _skopeo_dir = tempfile.mkdtemp(prefix="ocicache-skopeo-")
        _register_cleanup(lambda: shutil.rmtree(_skopeo_dir,
                                                ignore_errors=True))
        with open(os.path.join(_skopeo_dir, "auth.json"), "w") as f:
            f.write('{"auths": {}}\n')
    env = dict(os.environ)
    env["REGISTRY_AUTH_FILE"] = os.path.join(_skopeo_dir, "auth.json")
    return env


# ------------------------------------------------------------------ servers

class _Server:
    """A ThreadingHTTPServer on 127.0.0.1:free port, served from a thread."""

    def __init__(self, handler):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()
        self._stop_cb = self.stop
        _register_cleanup(self._stop_cb)

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=10)
            self.httpd = None
        _unregister_cleanup(self._stop_cb)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        ts = self.server.owner
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        user = None
        authz = self.headers.get("Authorization")
        if authz and authz.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(
                    authz[6:].strip()).decode().partition(":")
            except ValueError:
                return self._reply(400, {"errors": "bad basic auth"})
            if ts.users.get(user) != password:
                ts.requests.append({"user": user, "granted": False,
                                    "scope": q.get("scope", [])})
                return self._reply(401, {"details": "bad credentials"})
        elif not ts.anonymous:
            ts.requests.append({"user": None, "granted": False,
                                "scope": q.get("scope", [])})
            return self._reply(401, {"details": "credentials required"})
        access = []
        for scope in q.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) < 3 or parts[0] != "repository":
                    continue
                name = ":".join(parts[1:-1])
                wanted = parts[-1].split(",")
                allowed = ["pull", "push", "delete", "*"] if user else \
                    ["pull"]
                actions = [a for a in wanted if a in allowed]
                access.append({"type": "repository", "name": name,
                               "actions": actions})
        ts.requests.append({"user": user, "granted": True,
                            "scope": q.get("scope", []),
                            "service": q.get("service", [None])[0]})
        token = ts.sign(user or "", access)
        self._reply(200, {"token": token, "access_token": token,
                          "expires_in": 300,
                          "issued_at": time.strftime(
                              "%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def _reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="token"')
        self.end_headers()
        self.wfile.write(body)


class TokenServer(_Server):
    """A registry token service. `users` {name: password} may get tokens
    with their credentials (pull and push); with `anonymous`, a client
    without credentials gets a pull token. Every request is recorded in
    self.requests ({"user", "granted", "scope"})."""

    service = "ocicache-test-registry"
    issuer = "ocicache-test-issuer"

    def __init__(self, users=None, anonymous=True):
        self.users = dict(users or {})
        self.anonymous = anonymous
        self.requests = []
        self.dir = tempfile.mkdtemp(prefix="ocicache-token-")
        self.cert, self.key = make_cert(self.dir, cn="ocicache-token",
                                        san="DNS:ocicache-token")
        p = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform",
                            "DER"], stdout=subprocess.PIPE, check=True)
        der = p.stdout
        self.x5c = base64.b64encode(der).decode()
        super().__init__(_TokenHandler)

    @property
    def realm(self):
        return "http://%s/token" % self.host

    def sign(self, subject, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service,
                  "exp": now + 300, "nbf": now - 60, "iat": now,
                  "jti": b64url(os.urandom(12)), "access": access}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                           input=signing_input.encode(),
                           stdout=subprocess.PIPE, check=True)
        return signing_input + "." + b64url(p.stdout)

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


_HOP = {"connection", "keep-alive", "proxy-authenticate",
        "proxy-authorization", "te", "trailers", "transfer-encoding",
        "upgrade", "content-length"}


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _forward(self):
        px = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection("127.0.0.1", px.upstream_port,
                                          timeout=60)
        try:
            # Header by header: a client may send several Accept lines.
            conn.putrequest(self.command, self.path, skip_host=True,
                            skip_accept_encoding=True)
            conn.putheader("Host", "127.0.0.1:%d" % px.upstream_port)
            for k, v in self.headers.items():
                if k.lower() not in _HOP and k.lower() != "host":
                    conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            data = r.read()
            status = r.status
            rheaders = r.getheaders()
        finally:
            conn.close()
        path = urllib.parse.urlparse(self.path).path
        if (self.command == "GET" and status == 200 and "/blobs/sha256:" in
                path and data and px.should_corrupt(path)):
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
            px.corrupted.append(path.rsplit("/", 1)[1])
        self.send_response(status)
        for k, v in rheaders:
            if k.lower() not in _HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class CorruptingProxy(_Server):
    """Forwards to 127.0.0.1:upstream_port; flips one byte in the middle of
    every 200 blob body whose digest is in `digests` (all blobs when None).
    self.corrupted lists the digests it corrupted."""

    def __init__(self, upstream_port, digests=None):
        self.upstream_port = upstream_port
        self.digests = set(digests) if digests else None
        self.corrupted = []
        super().__init__(_ProxyHandler)

    def should_corrupt(self, path):
        digest = path.rsplit("/", 1)[1]
        return self.digests is None or digest in self.digests


class _StallingHandler(_ProxyHandler):
    """Serves half of a chosen blob, then holds the connection open."""

    def do_GET(self):
        px = self.server.owner
        path = urllib.parse.urlparse(self.path).path
        if "/blobs/sha256:" in path:
            px.ranges.append((path.rsplit("/", 1)[1],
                              self.headers.get("Range")))
        digest = path.rsplit("/", 1)[1]
        if not (px.stall and digest in px.digests):
            return self._forward()
        conn = http.client.HTTPConnection("127.0.0.1", px.upstream_port,
                                          timeout=60)
        try:
            conn.request("GET", self.path)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        px.stalled.set()
        px.release.wait(120)


class StallingProxy(_Server):
    """Forwards to 127.0.0.1:upstream_port, but while `stall` is true serves
    only the first half of each blob in `digests` and then stalls, as a
    connection does when the machine at the other end dies. Records every
    blob request's (digest, Range header) in self.ranges."""

    def __init__(self, upstream_port, digests):
        self.upstream_port = upstream_port
        self.digests = set(digests)
        self.stall = True
        self.ranges = []
        self.stalled = threading.Event()
        self.release = threading.Event()
        super().__init__(_StallingHandler)

    def should_corrupt(self, path):
        return False

    def stop(self):
        self.release.set()
        super().stop()


# ------------------------------------------------------------------ ocicache

def ocicache_bin():
    b = os.environ.get("OCICACHE_BIN") or os.path.join(
        REPO_ROOT, "build", "cli", "ocicache")
    return os.path.abspath(b)


class Cache:
    """A fresh cache root and an environment isolated from the caller's
    configuration (HOME, OCICACHE_CONFIG and DOCKER_CONFIG point into a
    temporary directory)."""

    def __init__(self, config=None, docker_config=None):
        self.dir = tempfile.mkdtemp(prefix="ocicache-test-")
        self.root = os.path.join(self.dir, "root")
        home = os.path.join(self.dir, "home")
        docker = os.path.join(self.dir, "docker")
        os.makedirs(home)
        os.makedirs(docker)
        self.config_path = os.path.join(self.dir, "config.json")
        self.write_config(config or {"registries": {}})
        with open(os.path.join(docker, "config.json"), "w") as f:
            json.dump(docker_config or {"auths": {}}, f)
        self.env = dict(os.environ)
        for k in ("OCICACHE_ROOT", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
            self.env.pop(k, None)
        self.env.update(HOME=home, OCICACHE_CONFIG=self.config_path,
                        DOCKER_CONFIG=docker)
        self._cleanup_cb = self.cleanup
        _register_cleanup(self._cleanup_cb)

    def write_config(self, config):
        with open(self.config_path, "w") as f:
            json.dump(config, f)

    def run(self, *args, env=None, timeout=300, root=True):
        """Run `ocicache [--root ROOT] ARGS`; returns CompletedProcess."""
        cmd = [ocicache_bin()]
        if root:
            cmd += ["--root", self.root]
        cmd += list(args)
        e = dict(self.env)
        if env:
            e.update(env)
        return subprocess.run(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=e,
                              timeout=timeout)

    def ok(self, *args, **kw):
        p = self.run(*args, **kw)
        if p.returncode != 0:
            raise AssertionError("ocicache %s exited %d\nstdout: %s\n"
                                 "stderr: %s" % (" ".join(args),
                                                 p.returncode, p.stdout,
                                                 p.stderr))
        return p

    def json(self, *args, **kw):
        p = self.ok(*args, **kw)
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise AssertionError("ocicache %s printed no JSON (%s): %r" %
                                 (" ".join(args), e, p.stdout[:2000]))

    def files_under(self, sub):
        """Regular files (any depth) under ROOT/sub."""
        out = []
        for dirpath, _, files in os.walk(os.path.join(self.root, sub)):
            out += [os.path.join(dirpath, f) for f in files]
        return sorted(out)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        _unregister_cleanup(self._cleanup_cb)


# ------------------------------------------------------------------ trees

def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _xattrs(path):
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for n in names:
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False).hex()
        except OSError as e:
            out[n] = "error %d" % e.errno
    return out


def snapshot(top, xattrs=True, owners=True, modes=True, mtimes=True,
             hardlinks=True):
    """{relative path: description} of every entry under `top` (top itself
    is "."), plus "#hardlinks": the groups of paths sharing an inode."""
    entries = {}
    inodes = {}
    for dirpath, dirs, files in os.walk(top):
        dirs.sort()
        for name in ["."] + sorted(dirs + files) if dirpath == top else \
                sorted(dirs + files):
            path = os.path.normpath(os.path.join(dirpath, name))
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            d = {"type": stat.S_IFMT(st.st_mode)}
            if modes:
                d["mode"] = "%o" % stat.S_IMODE(st.st_mode)
            if owners:
                d["uid"], d["gid"] = st.st_uid, st.st_gid
            if stat.S_ISREG(st.st_mode):
                d["size"] = st.st_size
                d["sha256"] = _sha256_file(path)
                if mtimes:
                    d["mtime"] = int(st.st_mtime)
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            if xattrs:
                d["xattrs"] = _xattrs(path)
            entries[rel] = d
    if hardlinks:
        entries["#hardlinks"] = sorted(sorted(g) for g in inodes.values()
                                       if len(g) > 1)
    return entries


def diff_snapshots(want, got, limit=30):
    """Human-readable differences between two snapshots ('' if none)."""
    lines = []
    for k in sorted(set(want) | set(got)):
        if k not in got:
            lines.append("missing: %s %s" % (k, want[k]))
        elif k not in want:
            lines.append("unexpected: %s %s" % (k, got[k]))
        elif want[k] != got[k]:
            lines.append("differs: %s\n  want %s\n  got  %s" % (
                k, want[k], got[k]))
        if len(lines) >= limit:
            lines.append("...")
            break
    return "\n".join(lines)


# ------------------------------------------------------------------ mounts

def mount_skip_reason():
    """Why the kernel mount tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root: mounting an EROFS image needs root"
    try:
        with open("/proc/filesystems") as f:
            if not any(line.split()[-1] == "erofs" for line in f
                       if line.strip()):
                return "the kernel has no erofs in /proc/filesystems"
    except OSError as e:
        return "cannot read /proc/filesystems: %s" % e
    for tool in ("qemu-img", "mount", "umount"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    return None


@contextlib.contextmanager
def mounted_vmdk(vmdk, workdir):
    """qemu-img converts the VMDK to one flat raw disk, which the kernel
    mounts read-only (through fsmeta's mapped_blkaddr); yields the mount
    point and always unmounts."""
    raw = os.path.join(workdir, "flat.raw")
    mnt = os.path.join(workdir, "mnt")
    os.makedirs(mnt, exist_ok=True)
    run(["qemu-img", "convert", "-f", "vmdk", vmdk, "-O", "raw", raw])
    run(["mount", "-t", "erofs", "-o", "ro,loop", raw, mnt])
    try:
        yield mnt
    finally:
        p = run(["umount", mnt], check=False)
        if p.returncode != 0:
            time.sleep(0.5)
            run(["umount", "-l", mnt], check=False)
        with contextlib.suppress(OSError):
            os.unlink(raw)


def fsck_extract(fsmeta, layer_paths, outdir):
    """fsck.erofs --device per layer --extract=OUTDIR FSMETA (checks the
    image while extracting). Returns the CompletedProcess."""
    cmd = ["fsck.erofs"] + ["--device=%s" % p for p in layer_paths] + \
        ["--extract=%s" % outdir, fsmeta]
    return run(cmd, check=False)

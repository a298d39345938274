"""Rootfs sources: what a sandbox's root comes from.

Each source has `await materialize(sandbox_id) -> RootfsDisk` and
`await release(sandbox_id)`. Only an oci source touches the cache: it pins
its image for the sandbox until released. bind and disk sources are checked
and returned, and pin nothing.
"""

import asyncio
import os
import stat

from . import _errors, _image, _lib
from ._types import RootfsDisk

PULL_POLICIES = ("always", "if-missing", "never")
DISK_FORMATS = ("raw", "qcow2", "vmdk")

QCOW2_MAGIC = b"QFI\xfb"
VMDK_SPARSE_MAGIC = b"KDMV"
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"


def _invalid(message):
    return _errors.InvalidArgumentError(message, _errors.EINVAL)


def _check_sandbox_id(sandbox_id):
    if not isinstance(sandbox_id, str):
        raise TypeError("sandbox_id must be a str, not %s" %
                        type(sandbox_id).__name__)
    if not sandbox_id:
        raise _invalid("empty sandbox id")
    _lib.encode(sandbox_id, "sandbox id")


def _abspath(path, what):
    _lib.encode(path, what)
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise _invalid("empty %s" % what)
    return os.path.abspath(path)


class OciSource:
    """An OCI image as the root disk: `Image.oci(reference, ...)`.

    pull: "if-missing" (default: pull when the cache lacks the reference),
      "always" (ask the registry every time, like `docker pull`) or
      "never" (ImageNotFoundError when the cache lacks it).
    platform, plain_http, jobs, on_progress: as for Image.pull.

    materialize(sandbox_id) records that the sandbox uses the image, which
    pins it against Image.remove (ImageInUseError) and Image.prune, and
    returns a RootfsDisk with the VMDK path, the fsmeta path and the layer
    paths. A sandbox uses one image at a time: materializing again for the
    same id moves its pin. release(sandbox_id) drops the pin
    (ImageNotFoundError when the sandbox holds none).
    """

    def __init__(self, reference, *, pull="if-missing", platform=None,
                 plain_http=False, jobs=None, on_progress=None):
        if not isinstance(reference, str):
            raise TypeError("reference must be a str, not %s" %
                            type(reference).__name__)
        if pull not in PULL_POLICIES:
            raise _invalid("pull policy %r is not one of %s" % (
                pull, ", ".join(PULL_POLICIES)))
        if on_progress is not None and not callable(on_progress):
            raise TypeError("on_progress must be callable")
        _lib.encode(reference, "reference")
        if platform is not None:
            _lib.encode(platform, "platform")
        self.reference = reference
        self.pull = pull
        self.platform = platform
        self.plain_http = bool(plain_http)
        self.jobs = jobs
        self.on_progress = on_progress

    def __repr__(self):
        return "OciSource(%r, pull=%r, platform=%r)" % (
            self.reference, self.pull, self.platform)

    def _materialize(self, s, sandbox_id, opts, callback):
        if self.pull == "always":
            _image.pull_sync(s, self.reference, opts, callback)
        else:
            try:
                _image.get_sync(s, self.reference)
            except _errors.ImageNotFoundError as e:
                if self.pull == "never":
                    raise _errors.ImageNotFoundError(
                        "%s (and pull is 'never')" % e.message, e.code)
                _image.pull_sync(s, self.reference, opts, callback)
        sid = _lib.encode(sandbox_id, "sandbox id")
        # Pin, then check that the pin and the paths are of one manifest:
        # another process may move the tag or remove the image between.
        for attempt in range(3):
            detail, vmdk, fsmeta, layers = _image.inspect_sync(
                s, self.reference)
            ref = detail.handle.reference
            rc = s.lib.ocicache_sandbox_add(s.ptr, sid,
                                            _lib.encode(ref, "reference"))
            if rc == _errors.ENOTFOUND and self.pull != "never" and \
                    attempt < 2:
                _image.pull_sync(s, self.reference, opts, callback)
                continue
            _lib.check(rc)
            now, _, _ = _image.get_sync(s, ref)
            if now.manifest_digest == detail.handle.manifest_digest:
                return RootfsDisk(
                    kind="oci", path=vmdk, format="vmdk", fstype="erofs",
                    readonly=True, sandbox_id=sandbox_id, reference=ref,
                    manifest_digest=detail.handle.manifest_digest,
                    fsmeta_path=fsmeta, layer_paths=layers)
        raise _errors.OcicacheError(
            "image %s kept changing while sandbox %s was pinning it" % (
                self.reference, sandbox_id), _errors.ERROR)

    async def materialize(self, sandbox_id):
        _check_sandbox_id(sandbox_id)
        opts = _image.pull_options(self.platform, self.plain_http, self.jobs)
        callback = _image.progress_callback(asyncio.get_running_loop(),
                                            self.on_progress)
        return await _image.run(self._materialize, sandbox_id, opts,
                                callback)

    async def release(self, sandbox_id):
        _check_sandbox_id(sandbox_id)
        await _image.run(_release_sync, sandbox_id)


def _release_sync(s, sandbox_id):
    _lib.check(s.lib.ocicache_sandbox_release(
        s.ptr, _lib.encode(sandbox_id, "sandbox id")))


class BindSource:
    """A host directory as the root, served as it is: `Image.bind(path,
    readonly=True)`. materialize checks that the directory exists (else
    InvalidArgumentError naming the path) and returns it; it pins
    nothing, and release does nothing."""

    def __init__(self, path, *, readonly=True):
        self.path = _abspath(path, "bind path")
        self.readonly = bool(readonly)

    def __repr__(self):
        return "BindSource(%r, readonly=%r)" % (self.path, self.readonly)

    def _check(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise _invalid("bind source %s: no such directory" % self.path)
        except OSError as e:
            raise _invalid("bind source %s: %s" % (self.path, e.strerror))
        if not stat.S_ISDIR(st.st_mode):
            raise _invalid("bind source %s is not a directory" % self.path)
        if not os.access(self.path, os.R_OK | os.X_OK):
            raise _invalid("bind source %s is not readable" % self.path)

    async def materialize(self, sandbox_id):
        _check_sandbox_id(sandbox_id)
        await asyncio.to_thread(self._check)
        return RootfsDisk(kind="bind", path=self.path, format="dir",
                          fstype=None, readonly=self.readonly,
                          sandbox_id=sandbox_id, reference=None,
                          manifest_digest=None, fsmeta_path=None,
                          layer_paths=[])

    async def release(self, sandbox_id):
        _check_sandbox_id(sandbox_id)


def sniff_disk_format(head):
    """The disk format the first bytes of an image say: "qcow2" (magic
    QFI\\xfb), "vmdk" (a descriptor file, or the sparse extent magic
    KDMV) or "raw"."""
    if head.startswith(QCOW2_MAGIC):
        return "qcow2"
    if head.startswith(VMDK_SPARSE_MAGIC) or head.startswith(VMDK_DESCRIPTOR):
        return "vmdk"
    return "raw"


class DiskSource:
    """A disk image as the root disk: `Image.disk(path, format=None,
    fstype=None)`.

    format: None (detect), "raw", "qcow2" or "vmdk". The first bytes of
      the file decide: qcow2's magic QFI\\xfb, a VMDK descriptor ("# Disk
      DescriptorFile") or sparse VMDK magic KDMV, else raw. A given format
      the bytes contradict is an InvalidArgumentError.
    fstype: the filesystem inside (e.g. "ext4"), passed through; optional.

    materialize checks the file (a regular file or block device, not
    empty) and returns it with its format; it pins nothing, and release
    does nothing.
    """

    def __init__(self, path, *, format=None, fstype=None):
        self.path = _abspath(path, "disk path")
        if format is not None and format not in DISK_FORMATS:
            raise _invalid("disk format %r is not one of %s" % (
                format, ", ".join(DISK_FORMATS)))
        if fstype is not None:
            if not isinstance(fstype, str):
                raise TypeError("fstype must be a str, not %s" %
                                type(fstype).__name__)
            if not fstype or any(c.isspace() or c in ",\0" for c in fstype):
                raise _invalid("fstype %r is not a filesystem type name" %
                               fstype)
        self.format = format
        self.fstype = fstype

    def __repr__(self):
        return "DiskSource(%r, format=%r, fstype=%r)" % (
            self.path, self.format, self.fstype)

    def _check(self):
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _invalid("disk source %s: no such file" % self.path)
        except OSError as e:
            raise _invalid("disk source %s: %s" % (self.path, e.strerror))
        try:
            st = os.fstat(fd)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
                raise _invalid("disk source %s is not a regular file or "
                               "block device" % self.path)
            head = os.pread(fd, 512, 0)
        except OSError as e:
            raise _invalid("disk source %s: %s" % (self.path, e.strerror))
        finally:
            os.close(fd)
        if not head:
            raise _invalid("disk source %s is empty" % self.path)
        found = sniff_disk_format(head)
        if self.format is not None and self.format != found:
            raise _invalid("disk source %s is %s, not %s as given" % (
                self.path, found, self.format))
        return found

    async def materialize(self, sandbox_id):
        _check_sandbox_id(sandbox_id)
        found = await asyncio.to_thread(self._check)
        return RootfsDisk(kind="disk", path=self.path, format=found,
                          fstype=self.fstype, readonly=False,
                          sandbox_id=sandbox_id, reference=None,
                          manifest_digest=None, fsmeta_path=None,
                          layer_paths=[])

    async def release(self, sandbox_id):
        _check_sandbox_id(sandbox_id)

"""The `Image` namespace: the cache's operations as coroutines.

Each operation runs its blocking C calls in a worker thread
(asyncio.to_thread) with a cache handle of its own, opened and closed there.
"""

import asyncio
import ctypes
import json

from . import _errors, _lib
from ._types import (ImageConfigDetail, ImageDetail, ImageHandle,
                     ImageLayerDetail, ImagePruneReport, PullProgress)


def _handle(c):
    """An ImageHandle from a struct ocicache_image."""
    created = _lib.opt64(c.created_at)
    used = _lib.opt64(c.last_used_at)
    return ImageHandle(
        reference=_lib.text(c.reference),
        manifest_digest=_lib.text(c.manifest_digest),
        architecture=_lib.text(c.architecture),
        os=_lib.text(c.os),
        layer_count=int(c.layer_count),
        size_bytes=_lib.opt64(c.size_bytes),
        created_at=None if created is None else float(created),
        last_used_at=None if used is None else float(used))


def _labels(raw):
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise _errors.VerificationError(
            "image config labels are not JSON (%s): %.200r" % (e, raw),
            _errors.EFORMAT)
    if not isinstance(value, dict):
        raise _errors.VerificationError(
            "image config labels are not a JSON object: %.200r" % raw,
            _errors.EFORMAT)
    return value


def _config(c):
    return ImageConfigDetail(
        digest=_lib.text(c.digest),
        env=_lib.strv(c.env) or [],
        cmd=_lib.strv(c.cmd),
        entrypoint=_lib.strv(c.entrypoint),
        working_dir=_lib.text(c.working_dir),
        user=_lib.text(c.user),
        labels=_labels(_lib.text(c.labels_json)),
        stop_signal=_lib.text(c.stop_signal))


def _layer(c):
    return ImageLayerDetail(
        diff_id=_lib.text(c.diff_id),
        blob_digest=_lib.text(c.blob_digest),
        media_type=_lib.text(c.media_type),
        compressed_size_bytes=_lib.opt64(c.compressed_size_bytes),
        erofs_size_bytes=_lib.opt64(c.erofs_size_bytes),
        position=int(c.position))


# ------------------------------------------------------------ blocking calls
# Each takes an open _lib.Session; they run in worker threads.

def get_sync(s, reference):
    """(ImageHandle, vmdk_path, fsmeta_path)."""
    ref = _lib.encode(reference, "reference")
    out = ctypes.POINTER(_lib.Image)()
    _lib.check(s.lib.ocicache_image_get(ctypes.byref(out), s.ptr, ref))
    try:
        return (_handle(out.contents), _lib.text(out.contents.vmdk_path),
                _lib.text(out.contents.fsmeta_path))
    finally:
        s.lib.ocicache_image_free(out)


def list_sync(s):
    out = ctypes.POINTER(ctypes.POINTER(_lib.Image))()
    count = ctypes.c_size_t()
    _lib.check(s.lib.ocicache_image_list(ctypes.byref(out),
                                         ctypes.byref(count), s.ptr))
    try:
        return [_handle(out[i].contents) for i in range(count.value)]
    finally:
        s.lib.ocicache_image_list_free(out, count)


def inspect_sync(s, reference):
    """(ImageDetail, vmdk_path, fsmeta_path, [layer path])."""
    ref = _lib.encode(reference, "reference")
    out = ctypes.POINTER(_lib.ImageDetail)()
    _lib.check(s.lib.ocicache_image_inspect(ctypes.byref(out), s.ptr, ref))
    try:
        d = out.contents
        h = d.handle.contents
        layers = [d.layers[i] for i in range(d.layer_count)]
        detail = ImageDetail(
            handle=_handle(h),
            config=_config(d.config.contents) if d.config else None,
            layers=[_layer(l) for l in layers])
        return (detail, _lib.text(h.vmdk_path), _lib.text(h.fsmeta_path),
                [_lib.text(l.path) for l in layers])
    finally:
        s.lib.ocicache_image_detail_free(out)


def remove_sync(s, reference, force):
    ref = _lib.encode(reference, "reference")
    _lib.check(s.lib.ocicache_image_remove(s.ptr, ref, 1 if force else 0))


def prune_sync(s, opts):
    report = _lib.PruneReport()
    _lib.check(s.lib.ocicache_prune(ctypes.byref(report), s.ptr,
                                    ctypes.byref(opts) if opts else None))
    return ImagePruneReport(
        image_refs_removed=int(report.image_refs_removed),
        manifests_removed=int(report.manifests_removed),
        layers_removed=int(report.layers_removed),
        fsmeta_removed=int(report.fsmeta_removed),
        vmdk_removed=int(report.vmdk_removed),
        bytes_reclaimed=_lib.opt64(report.bytes_reclaimed))


def pull_options(platform, plain_http, jobs):
    """Checked pull options, without a progress callback."""
    opts = _lib.PullOptions()
    _lib.lib().ocicache_pull_options_init(ctypes.byref(opts))
    if platform is not None:
        opts.platform = _lib.encode(platform, "platform")
    opts.plain_http = 1 if plain_http else 0
    if jobs is not None:
        if isinstance(jobs, bool) or not isinstance(jobs, int):
            raise TypeError("jobs must be an int, not %s" %
                            type(jobs).__name__)
        if not 1 <= jobs <= 64:
            raise _errors.InvalidArgumentError(
                "jobs %d is out of range 1..64" % jobs, _errors.EINVAL)
        opts.jobs = jobs
    return opts


def progress_callback(loop, on_progress):
    """A ctypes progress callback that copies each event and hands it to
    `on_progress` on `loop`'s thread; None when there is no on_progress.
    The caller keeps the returned object alive for the whole pull."""
    if on_progress is None:
        return None

    def deliver(event_p, userdata):
        try:
            e = event_p.contents
            kind = (_lib.PROGRESS_KINDS[e.kind]
                    if 0 <= e.kind < len(_lib.PROGRESS_KINDS)
                    else "unknown(%d)" % e.kind)
            event = PullProgress(kind=kind, reference=_lib.text(e.reference),
                                 digest=_lib.text(e.digest),
                                 layer_index=int(e.layer_index),
                                 layer_count=int(e.layer_count),
                                 bytes=_lib.opt64(e.bytes))
            loop.call_soon_threadsafe(on_progress, event)
        except Exception as exc:  # never unwind into C
            try:
                loop.call_soon_threadsafe(loop.call_exception_handler, {
                    "message": "ocicache: progress event lost",
                    "exception": exc})
            except RuntimeError:
                pass  # the loop is closed: nobody is left to tell

    return _lib.PROGRESS_FN(deliver)


def pull_sync(s, reference, opts, callback):
    """(ImageHandle, vmdk_path, fsmeta_path). `callback` must stay
    referenced by the caller until this returns."""
    ref = _lib.encode(reference, "reference")
    if callback is not None:
        opts.on_progress = callback
    out = ctypes.POINTER(_lib.Image)()
    _lib.check(s.lib.ocicache_pull(ctypes.byref(out), s.ptr, ref,
                                   ctypes.byref(opts)))
    try:
        return (_handle(out.contents), _lib.text(out.contents.vmdk_path),
                _lib.text(out.contents.fsmeta_path))
    finally:
        s.lib.ocicache_image_free(out)


def in_session(fn, *args):
    """Run fn(session, *args) with a cache opened for this call alone."""
    with _lib.Session() as s:
        return fn(s, *args)


async def run(fn, *args):
    """fn(session, *args) in a worker thread."""
    return await asyncio.to_thread(in_session, fn, *args)


def _check_ref(reference):
    if not isinstance(reference, str):
        raise TypeError("reference must be a str, not %s" %
                        type(reference).__name__)


class Image:
    """The cache's operations (a namespace: every method is static)."""

    def __init__(self):
        raise TypeError("Image is a namespace; call Image.get() etc.")

    @staticmethod
    async def get(reference):
        """The cached image `reference` (an ImageHandle); raises
        ImageNotFoundError when it is not cached. Does not move
        last_used_at."""
        _check_ref(reference)
        return (await run(get_sync, reference))[0]

    @staticmethod
    async def list():
        """Every cached image (one per reference), newest first."""
        return await run(list_sync)

    @staticmethod
    async def inspect(reference):
        """The ImageDetail of the cached image `reference`."""
        _check_ref(reference)
        return (await run(inspect_sync, reference))[0]

    @staticmethod
    async def remove(reference, *, force=False):
        """Remove the cached image `reference` (and, with its manifest's
        last reference, the data nothing else uses). An image a sandbox
        uses raises ImageInUseError unless `force`, which also drops the
        sandbox references."""
        _check_ref(reference)
        await run(remove_sync, reference, bool(force))

    @staticmethod
    async def prune(*, dry_run=False, older_than_ms=None, keep_bytes=None):
        """Remove every reference, manifest, layer, fsmeta and VMDK that no
        sandbox and no snapshot pins; returns an ImagePruneReport.

        Our additions, all optional: `dry_run` reports without deleting;
        `older_than_ms` only takes images last used longer ago than that
        many milliseconds; `keep_bytes` stops once the cache is at most
        that size."""
        opts = None
        if dry_run or older_than_ms is not None or keep_bytes is not None:
            opts = _lib.PruneOptions()
            _lib.lib().ocicache_prune_options_init(ctypes.byref(opts))
            opts.dry_run = 1 if dry_run else 0
            for name, v in (("older_than_ms", older_than_ms),
                            ("keep_bytes", keep_bytes)):
                if v is None:
                    continue
                if isinstance(v, bool) or not isinstance(v, int):
                    raise TypeError("%s must be an int" % name)
                if v < 0:
                    raise _errors.InvalidArgumentError(
                        "%s %d is negative" % (name, v), _errors.EINVAL)
                setattr(opts, name, v)
        return await run(prune_sync, opts)

    @staticmethod
    async def pull(reference, *, platform=None, on_progress=None,
                   plain_http=False, jobs=None):
        """Ask the registry what `reference` points to now, fetch and
        convert every layer the cache lacks, and record the image; returns
        its ImageHandle.

        platform: "os/arch[/variant]"; None: the host's.
        on_progress: a plain callable given a PullProgress per event, called
          on this event loop's thread; every event is delivered before pull
          returns. An exception it raises goes to the loop's exception
          handler and does not stop the pull.
        plain_http (ours): talk http:// to the registry instead of https://.
        jobs (ours): layers fetched at once, 1..64; None: the library's
          default (4).
        """
        _check_ref(reference)
        if on_progress is not None and not callable(on_progress):
            raise TypeError("on_progress must be callable")
        opts = pull_options(platform, plain_http, jobs)
        loop = asyncio.get_running_loop()
        # The worker thread's arguments (and opts) keep the ctypes callback
        # alive until the C pull returns, even if this task is cancelled
        # while the thread still runs.
        callback = progress_callback(loop, on_progress)
        return (await run(pull_sync, reference, opts, callback))[0]

    @staticmethod
    def oci(reference, *, pull="if-missing", platform=None,
            plain_http=False, jobs=None, on_progress=None):
        """An OCI image as a sandbox's root disk (see OciSource)."""
        from ._rootfs import OciSource
        return OciSource(reference, pull=pull, platform=platform,
                         plain_http=plain_http, jobs=jobs,
                         on_progress=on_progress)

    @staticmethod
    def bind(path, *, readonly=True):
        """A host directory as a sandbox's root (see BindSource)."""
        from ._rootfs import BindSource
        return BindSource(path, readonly=readonly)

    @staticmethod
    def disk(path, *, format=None, fstype=None):
        """A disk image (raw, qcow2 or vmdk) as a sandbox's root disk (see
        DiskSource)."""
        from ._rootfs import DiskSource
        return DiskSource(path, format=format, fstype=fstype)

"""ocicache: OCI images as microVM root disks, from asyncio.

A pure standard-library SDK (ctypes over libocicache, asyncio). Every
method of `Image` is a coroutine, but for the rootfs source constructors
`Image.oci`, `Image.bind` and `Image.disk`:

    import asyncio
    from ocicache import Image

    async def main():
        images = await Image.list()
        for image in images:
            print(image.reference, image.layer_count)

    asyncio.run(main())

Operations
    await Image.get(reference) -> ImageHandle (ImageNotFoundError if not
        cached)
    await Image.list() -> [ImageHandle], newest first
    await Image.inspect(reference) -> ImageDetail
    await Image.remove(reference, *, force=False)
    await Image.prune(*, dry_run=False, older_than_ms=None,
        keep_bytes=None) -> ImagePruneReport
    await Image.pull(reference, *, platform=None, on_progress=None,
        plain_http=False, jobs=None) -> ImageHandle
    ImageHandle.remove(force=False), ImageHandle.inspect()

    Our additions to the SDK surface: pull's `plain_http` (talk http:// to
    the registry) and `jobs` (layers fetched at once, 1..64, default 4);
    prune's `dry_run`, `older_than_ms` and `keep_bytes`, which narrow it
    (with none given it removes every unpinned image).

    on_progress is a plain callable given a PullProgress (kind, reference,
    digest, layer_index, layer_count, bytes) per event, always on the
    event loop's thread, every event before pull returns.

Rootfs sources
    Image.oci(reference, *, pull="if-missing", platform=None,
              plain_http=False, jobs=None, on_progress=None)
        pull: "if-missing", "always" or "never" (never + not cached:
        ImageNotFoundError). materialize(sandbox_id) pulls as the policy
        says, records the sandbox's use of the image (ocicache_sandbox_add:
        Image.remove then raises ImageInUseError and Image.prune leaves it)
        and returns a RootfsDisk with the VMDK path (`path`), `fsmeta_path`
        and `layer_paths` (bottom to top). release(sandbox_id) drops the
        sandbox's reference.
    Image.bind(path, *, readonly=True)
        A host directory. materialize checks that it exists and is a
        directory (else InvalidArgumentError naming the path) and returns
        it. Pins nothing; release does nothing.
    Image.disk(path, *, format=None, fstype=None)
        A disk image. materialize checks the file and reads its first
        bytes: qcow2 magic QFI\\xfb -> "qcow2", a VMDK descriptor ("# Disk
        DescriptorFile") or sparse VMDK magic KDMV -> "vmdk", anything else
        "raw". A `format` the bytes contradict is an InvalidArgumentError.
        fstype is an optional filesystem name passed through. Pins nothing;
        release does nothing.

Errors
    OcicacheError is the base of every failure; `code` is the library's
    result code (OCICACHE_E*, negative) and the message the library's.
    ImageNotFoundError (not found), ImageInUseError (a sandbox uses it),
    InvalidArgumentError (bad reference, argument, source), RegistryError
    (network or registry), VerificationError (digest, size or format);
    anything else is an OcicacheError. LibraryNotFoundError: the library
    could not be loaded.

Environment
    OCICACHE_LIBRARY: the path of libocicache.so; else
        ctypes.util.find_library("ocicache"). The library is loaded at
        first use, so importing never fails for want of it.
    OCICACHE_ROOT: the cache root; else the library's default
        ($XDG_CACHE_HOME/ocicache or ~/.cache/ocicache).

Threads: every blocking C call runs in a worker thread
(asyncio.to_thread) that opens its own cache handle and closes it, so any
number of operations may run at once.
"""

from ._errors import (ImageInUseError, ImageNotFoundError,
                      InvalidArgumentError, LibraryNotFoundError,
                      OcicacheError, RegistryError, VerificationError)
from ._image import Image
from ._rootfs import BindSource, DiskSource, OciSource, sniff_disk_format
from ._types import (ImageConfigDetail, ImageDetail, ImageHandle,
                     ImageLayerDetail, ImagePruneReport, PullProgress,
                     RootfsDisk)

__version__ = "0.1.0"

for _cls in (Image, ImageHandle, ImageDetail, ImageConfigDetail,
             ImageLayerDetail, ImagePruneReport, PullProgress, RootfsDisk,
             OciSource, BindSource, DiskSource, OcicacheError,
             ImageNotFoundError, ImageInUseError, InvalidArgumentError,
             RegistryError, VerificationError, LibraryNotFoundError):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "Image", "ImageHandle", "ImageDetail", "ImageConfigDetail",
    "ImageLayerDetail", "ImagePruneReport", "PullProgress", "RootfsDisk",
    "OciSource", "BindSource", "DiskSource", "sniff_disk_format",
    "OcicacheError", "ImageNotFoundError", "ImageInUseError",
    "InvalidArgumentError", "RegistryError", "VerificationError",
    "LibraryNotFoundError",
]

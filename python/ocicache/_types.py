"""The SDK's value types: small read-only records with __repr__ and
equality over their attributes."""


class _Record:
    __slots__ = ()
    _fields = ()

    def __init__(self, **kw):
        missing = [f for f in self._fields if f not in kw]
        extra = [k for k in kw if k not in self._fields]
        if missing or extra:
            raise TypeError("%s: missing %s, unexpected %s" % (
                type(self).__name__, missing, extra))
        for f in self._fields:
            object.__setattr__(self, f, kw[f])

    def __setattr__(self, name, value):
        raise AttributeError("%s is read-only" % type(self).__name__)

    def __delattr__(self, name):
        raise AttributeError("%s is read-only" % type(self).__name__)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (f, getattr(self, f)) for f in self._fields))

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f)
                   for f in self._fields)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None


class ImageHandle(_Record):
    """One cached image, as `Image.get`, `Image.list` and `Image.pull`
    return it."""

    __slots__ = ("reference", "manifest_digest", "architecture", "os",
                 "layer_count", "size_bytes", "created_at", "last_used_at")
    _fields = __slots__

    def __hash__(self):
        return hash(tuple(getattr(self, f) for f in self._fields))

    async def remove(self, force=False):
        """Remove this image from the cache (see `Image.remove`)."""
        from ._image import Image
        await Image.remove(self.reference, force=force)

    async def inspect(self):
        """The full detail of this image (see `Image.inspect`)."""
        from ._image import Image
        return await Image.inspect(self.reference)


class ImageConfigDetail(_Record):
    """The parsed OCI image config."""

    __slots__ = ("digest", "env", "cmd", "entrypoint", "working_dir",
                 "user", "labels", "stop_signal")
    _fields = __slots__


class ImageLayerDetail(_Record):
    """One layer, `position` 0 being the bottom one."""

    __slots__ = ("diff_id", "blob_digest", "media_type",
                 "compressed_size_bytes", "erofs_size_bytes", "position")
    _fields = __slots__


class ImageDetail(_Record):
    """An image's handle, parsed config (None when not recorded) and layers
    bottom to top."""

    __slots__ = ("handle", "config", "layers")
    _fields = __slots__


class ImagePruneReport(_Record):
    """What `Image.prune` removed; `bytes_reclaimed` is None when nothing
    could be measured."""

    __slots__ = ("image_refs_removed", "manifests_removed",
                 "layers_removed", "fsmeta_removed", "vmdk_removed",
                 "bytes_reclaimed")
    _fields = __slots__


class PullProgress(_Record):
    """One progress event of a pull, handed to `on_progress` on the event
    loop's thread.

    kind: "resolved" (manifest and config known), "layer_cached" (the
    layer was already cached), "layer_done" (fetched and converted) or
    "done" (fsmeta and VMDK written). digest: the layer's blob digest, or
    the manifest's for "resolved" and "done". bytes: the layer's
    compressed size, or None."""

    __slots__ = ("kind", "reference", "digest", "layer_index",
                 "layer_count", "bytes")
    _fields = __slots__


class RootfsDisk(_Record):
    """What materializing a rootfs source gave a sandbox.

    kind: "oci", "bind" or "disk".
    path: what to hand the VM: the image's VMDK descriptor (oci), the host
      directory (bind) or the disk image (disk); absolute.
    format: "vmdk" (oci), "dir" (bind), or "raw", "qcow2", "vmdk" (disk).
    fstype: "erofs" (oci), the given fstype or None (disk), None (bind).
    readonly: True for oci; the given flag for bind; False for disk.
    sandbox_id: the sandbox it was materialized for.
    reference, manifest_digest: the image (oci), else None.
    fsmeta_path: the image's fsmeta EROFS (oci), else None.
    layer_paths: the layer EROFS images bottom to top (oci), else [].
    """

    __slots__ = ("kind", "path", "format", "fstype", "readonly",
                 "sandbox_id", "reference", "manifest_digest", "fsmeta_path",
                 "layer_paths")
    _fields = __slots__

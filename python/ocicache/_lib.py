"""ctypes bindings for libocicache (include/ocicache/ocicache.h).

The structs below mirror the header field by field. Every function here is
blocking and is meant to run in a worker thread; each `session()` opens its
own `ocicache *` because the C handle may be used by one thread at a time.
"""

import ctypes
import ctypes.util
import os
import threading

from . import _errors

# enum ocicache_progress_kind
PROGRESS_KINDS = ("resolved", "layer_cached", "layer_done", "done")


class Image(ctypes.Structure):
    _fields_ = [
        ("reference", ctypes.c_char_p),
        ("manifest_digest", ctypes.c_char_p),
        ("index_digest", ctypes.c_char_p),
        ("architecture", ctypes.c_char_p),
        ("os", ctypes.c_char_p),
        ("variant", ctypes.c_char_p),
        ("layer_count", ctypes.c_uint32),
        ("size_bytes", ctypes.c_int64),
        ("created_at", ctypes.c_int64),
        ("last_used_at", ctypes.c_int64),
        ("fsmeta_path", ctypes.c_char_p),
        ("vmdk_path", ctypes.c_char_p),
    ]


class Progress(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_int),
        ("reference", ctypes.c_char_p),
        ("digest", ctypes.c_char_p),
        ("layer_index", ctypes.c_uint32),
        ("layer_count", ctypes.c_uint32),
        ("bytes", ctypes.c_int64),
    ]


PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(Progress),
                               ctypes.c_void_p)


class PullOptions(ctypes.Structure):
    _fields_ = [
        ("platform", ctypes.c_char_p),
        ("plain_http", ctypes.c_int),
        ("jobs", ctypes.c_int),
        ("on_progress", PROGRESS_FN),
        ("progress_userdata", ctypes.c_void_p),
    ]


class Config(ctypes.Structure):
    _fields_ = [
        ("digest", ctypes.c_char_p),
        ("env", ctypes.POINTER(ctypes.c_char_p)),
        ("cmd", ctypes.POINTER(ctypes.c_char_p)),
        ("entrypoint", ctypes.POINTER(ctypes.c_char_p)),
        ("working_dir", ctypes.c_char_p),
        ("user", ctypes.c_char_p),
        ("labels_json", ctypes.c_char_p),
        ("stop_signal", ctypes.c_char_p),
    ]


class Layer(ctypes.Structure):
    _fields_ = [
        ("diff_id", ctypes.c_char_p),
        ("blob_digest", ctypes.c_char_p),
        ("media_type", ctypes.c_char_p),
        ("compressed_size_bytes", ctypes.c_int64),
        ("erofs_size_bytes", ctypes.c_int64),
        ("position", ctypes.c_uint32),
        ("path", ctypes.c_char_p),
    ]


class ImageDetail(ctypes.Structure):
    _fields_ = [
        ("handle", ctypes.POINTER(Image)),
        ("config", ctypes.POINTER(Config)),
        ("layers", ctypes.POINTER(Layer)),
        ("layer_count", ctypes.c_size_t),
    ]


class PruneOptions(ctypes.Structure):
    _fields_ = [
        ("dry_run", ctypes.c_int),
        ("older_than_ms", ctypes.c_int64),
        ("keep_bytes", ctypes.c_int64),
    ]


class PruneReport(ctypes.Structure):
    _fields_ = [
        ("image_refs_removed", ctypes.c_uint64),
        ("manifests_removed", ctypes.c_uint64),
        ("layers_removed", ctypes.c_uint64),
        ("fsmeta_removed", ctypes.c_uint64),
        ("vmdk_removed", ctypes.c_uint64),
        ("bytes_reclaimed", ctypes.c_int64),
    ]


_P = ctypes.POINTER
_c = ctypes.c_void_p  # an opaque ocicache *
_SIGNATURES = {
    "ocicache_error_message": (ctypes.c_char_p, []),
    "ocicache_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "ocicache_open": (ctypes.c_int, [_P(_c), ctypes.c_char_p]),
    "ocicache_close": (None, [_c]),
    "ocicache_root": (ctypes.c_char_p, [_c]),
    "ocicache_image_free": (None, [_P(Image)]),
    "ocicache_pull_options_init": (None, [_P(PullOptions)]),
    "ocicache_pull": (ctypes.c_int, [_P(_P(Image)), _c, ctypes.c_char_p,
                                     _P(PullOptions)]),
    "ocicache_image_get": (ctypes.c_int, [_P(_P(Image)), _c,
                                          ctypes.c_char_p]),
    "ocicache_image_list": (ctypes.c_int, [_P(_P(_P(Image))),
                                           _P(ctypes.c_size_t), _c]),
    "ocicache_image_list_free": (None, [_P(_P(Image)), ctypes.c_size_t]),
    "ocicache_image_inspect": (ctypes.c_int, [_P(_P(ImageDetail)), _c,
                                              ctypes.c_char_p]),
    "ocicache_image_detail_free": (None, [_P(ImageDetail)]),
    "ocicache_image_remove": (ctypes.c_int, [_c, ctypes.c_char_p,
                                             ctypes.c_int]),
    "ocicache_prune_options_init": (None, [_P(PruneOptions)]),
    "ocicache_prune": (ctypes.c_int, [_P(PruneReport), _c,
                                      _P(PruneOptions)]),
    "ocicache_sandbox_add": (ctypes.c_int, [_c, ctypes.c_char_p,
                                            ctypes.c_char_p]),
    "ocicache_sandbox_release": (ctypes.c_int, [_c, ctypes.c_char_p]),
}

_lib = None
_lib_lock = threading.Lock()


def _candidates():
    """(what was tried, how to load it) in order."""
    env = os.environ.get("OCICACHE_LIBRARY")
    if env:
        return [("$OCICACHE_LIBRARY=%s" % env, env)]
    found = ctypes.util.find_library("ocicache")
    if found:
        return [("find_library('ocicache') -> %s" % found, found)]
    return []


def lib():
    """The loaded library, loaded on first use."""
    global _lib
    if _lib is not None:
        return _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        tried = _candidates()
        if not tried:
            raise _errors.LibraryNotFoundError(
                "libocicache not found: $OCICACHE_LIBRARY is not set and "
                "ctypes.util.find_library('ocicache') found nothing; set "
                "OCICACHE_LIBRARY to the path of libocicache.so")
        what, name = tried[0]
        try:
            handle = ctypes.CDLL(name)
        except OSError as e:
            raise _errors.LibraryNotFoundError(
                "libocicache could not be loaded from %s: %s" % (what, e))
        for fn, (restype, argtypes) in _SIGNATURES.items():
            try:
                f = getattr(handle, fn)
            except AttributeError:
                raise _errors.LibraryNotFoundError(
                    "%s (from %s) lacks %s: not a compatible libocicache"
                    % (name, what, fn))
            f.restype = restype
            f.argtypes = argtypes
        _lib = handle
        return _lib


def fail(code):
    """The exception for result `code`, with this thread's message: call
    right after the failing call, on the same thread."""
    msg = lib().ocicache_error_message()
    text = msg.decode("utf-8", "replace") if msg else ""
    if not text:
        name = lib().ocicache_strerror(code)
        text = name.decode("utf-8", "replace") if name else "error %d" % code
    return _errors.from_code(code, text)


def check(code):
    if code != 0:
        raise fail(code)


def encode(value, what):
    """`value` (str or os.PathLike) as a C string; a NUL inside is an
    InvalidArgumentError naming `what`."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        b = value
    elif isinstance(value, str):
        b = os.fsencode(value)
    else:
        raise TypeError("%s must be a str, not %s" % (
            what, type(value).__name__))
    if b"\0" in b:
        raise _errors.InvalidArgumentError(
            "%s %r contains a NUL byte" % (what, value),
            _errors.EINVAL)
    return b


def text(b):
    """A C string field as str, or None."""
    if b is None:
        return None
    return b.decode("utf-8", "surrogateescape")


def strv(ptr):
    """A NULL-terminated char ** as a list of str; None for NULL."""
    if not ptr:
        return None
    out = []
    i = 0
    while ptr[i] is not None:
        out.append(text(ptr[i]))
        i += 1
    return out


def opt64(v):
    """int64 -1 (the cache does not have it) as None."""
    return None if v < 0 else int(v)


class Session:
    """One open cache for the calls of one worker-thread job."""

    def __init__(self):
        self.lib = lib()
        root = os.environ.get("OCICACHE_ROOT") or None
        self.ptr = ctypes.c_void_p()
        rc = self.lib.ocicache_open(
            ctypes.byref(self.ptr),
            encode(root, "OCICACHE_ROOT") if root else None)
        if rc != 0:
            raise fail(rc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.ptr:
            self.lib.ocicache_close(self.ptr)
            self.ptr = ctypes.c_void_p()

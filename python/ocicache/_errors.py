"""The SDK's exceptions: one base class, one subclass per class of failure.

`code` is the library's result code (the OCICACHE_E* values of
include/ocicache/ocicache.h); the message is the library's own, naming the
reference, digest, path or URL that failed.
"""

OK = 0
ERROR = -1
ENOTFOUND = -2
EINUSE = -3
EINVAL = -4
ENETWORK = -5
EREGISTRY = -6
EDIGEST = -7
EFORMAT = -8
EIO = -9
ENOMEM = -10
EUNSUPPORTED = -11


class OcicacheError(Exception):
    """Base of every failure the SDK reports. `code` is the library's
    result code (a negative OCICACHE_E* value), `message` its message."""

    def __init__(self, message, code=ERROR):
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self):
        return self.message


class ImageNotFoundError(OcicacheError, LookupError):
    """No such image (or tag, layer, file or sandbox reference):
    OCICACHE_ENOTFOUND."""


class ImageInUseError(OcicacheError):
    """A sandbox still uses the image: OCICACHE_EINUSE."""


class InvalidArgumentError(OcicacheError, ValueError):
    """An invalid reference, argument, option or rootfs source:
    OCICACHE_EINVAL."""


class RegistryError(OcicacheError):
    """The registry could not be reached (OCICACHE_ENETWORK) or refused or
    answered badly (OCICACHE_EREGISTRY)."""


class VerificationError(OcicacheError):
    """A digest or size did not match (OCICACHE_EDIGEST) or content was
    malformed (OCICACHE_EFORMAT)."""


class LibraryNotFoundError(OcicacheError):
    """libocicache could not be found or loaded."""


_BY_CODE = {
    ENOTFOUND: ImageNotFoundError,
    EINUSE: ImageInUseError,
    EINVAL: InvalidArgumentError,
    ENETWORK: RegistryError,
    EREGISTRY: RegistryError,
    EDIGEST: VerificationError,
    EFORMAT: VerificationError,
}


def from_code(code, message):
    return _BY_CODE.get(code, OcicacheError)(message, code)

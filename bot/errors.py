"""Error types: UserError carries a short message meant for the member or console user."""

from __future__ import annotations

import errno
import secrets

from cadenza.models.errors import shown

__all__ = ["DISK_ERRNOS", "CadenzaError", "ResourceError", "UserError", "WriteError",
           "new_error_id", "shown", "write_error"]


def new_error_id() -> str:
    """A short id that ties an apology shown to a member to the logged traceback."""
    return secrets.token_hex(4)




class CadenzaError(Exception):
    """Base class for Cadenza's own errors."""


class UserError(CadenzaError):
    """Bad input or a missing resource the user can fix; ``str(e)`` is shown verbatim.

    Messages are one line, specific and free of tracebacks, e.g.
    ``bars must be between 1 and 32 (got 40)``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ResourceError(UserError):
    """A file, model, soundfont or program Cadenza needs is missing or unreadable."""


class WriteError(ResourceError):
    """Files could not be written for a reason the operator can fix (a full disk, a read-only
    or missing folder, no permission)."""


# errnos of the environment, not of a bug: a full disk or quota, a read-only or vanished folder
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                         errno.EIO, errno.EFBIG, errno.ENOENT})


def write_error(error: OSError, what: str) -> WriteError | None:
    """``what`` could not be written because of ``error``, as a one-line WriteError; None for
    an OSError that is more likely a bug (those keep their traceback)."""
    if error.errno not in DISK_ERRNOS:
        return None
    return WriteError(f"cannot write {what}: {error.strerror or error}")

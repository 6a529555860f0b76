"""Reading a file a user named, within bounds: a regular file (never a FIFO, device, socket or
folder, and a FIFO never blocks the read), at most ``MAX_BYTES`` long."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

MAX_BYTES = 4 << 20  # 4 MiB: the largest shipped file is ~15 KB
_KINDS = (
    (stat.S_ISDIR, "is a folder, expected a YAML file"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), expected a regular file"),
    (stat.S_ISCHR, "is a character device, expected a regular file"),
    (stat.S_ISBLK, "is a block device, expected a regular file"),
    (stat.S_ISSOCK, "is a socket, expected a regular file"),
)


class InputRefused(Exception):
    """The file cannot be read as an input; the message says why, in words for the user."""


def _refuse_kind(mode: int) -> None:
    for test, message in _KINDS:
        if test(mode):
            raise InputRefused(message)
    if not stat.S_ISREG(mode):
        raise InputRefused("is not a regular file")


def read_input(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The bytes of ``path``; raises InputRefused for a missing, unreadable, non-regular or
    too large file. Opened non-blocking and checked with fstat before anything is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputRefused("file not found") from None
    except IsADirectoryError:
        raise InputRefused("is a folder, expected a YAML file") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        with contextlib.suppress(OSError, ValueError):
            _refuse_kind(os.stat(path).st_mode)  # a socket: ENXIO
        raise InputRefused(f"cannot read: {getattr(e, 'strerror', None) or e}") from e
    try:
        _refuse_kind(os.fstat(fd).st_mode)
        st = os.fstat(fd)
        if st.st_size > limit:
            raise InputRefused(f"is {st.st_size} bytes; files over {limit} bytes are refused")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise InputRefused(f"is over {limit} bytes; larger files are refused")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise InputRefused(f"cannot read: {e.strerror or e}") from e
    finally:
        os.close(fd)

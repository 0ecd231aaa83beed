"""Atomic file writes: a failed write leaves no half-written file and keeps any previous one.

Every output (fits, figures, reports) is rendered in memory first and then written with plain
``os.write`` calls to a temporary file beside the target, flushed to disk and renamed over it.
A full disk or a read-only file system then fails as one ``OSError`` in our own code, turned into
an error naming the output (never the hidden temporary), instead of inside HDF5 or matplotlib (an
HDF5 write that hit a full disk made the process crash at exit). Temporaries are named
``.NAME.HOST-PID.RANDOM.tmp``; a write removes the temporaries of the same output whose process is
gone (killed during a save), so concurrent writers never delete each other's.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bayeslaw.errors import BayeslawError

STALE_SECONDS = 3600.0  # a temporary of another host, or of the old naming, is stale after this long
_HOST = re.sub(r"[^A-Za-z0-9]+", "-", socket.gethostname())[:32] or "host"


def _temporary_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporaries of ``path`` left by writers that are gone; return the ones removed.

    A temporary of this host is stale when its process no longer exists; one of another host (a shared
    folder) or without a process id (written before this naming) when older than ``STALE_SECONDS``.
    """
    path = Path(path)
    removed = []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.)?[^.]+\.tmp$")
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = pattern.match(tmp.name)
        if match is None:
            continue
        try:
            if match["pid"] is not None and match["host"] == _HOST:
                stale = not _alive(int(match["pid"]))
            else:
                stale = time.time() - tmp.lstat().st_mtime > STALE_SECONDS
            if stale and tmp.is_file():
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def describe_os_error(err: OSError) -> str:
    """'No space left on device' and the like, without the file name (the caller names the output)."""
    if err.strerror:
        return err.strerror
    return os.strerror(err.errno) if err.errno else str(err)


def check_readable(path: str | os.PathLike, what: str, error: type[BayeslawError] = BayeslawError) -> Path:
    """Refuse an input that is not there or is a directory, naming ``what`` was expected ("a fit file")."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a directory, not {what}")
    if not path.exists():
        raise error(f"{path}: no such file")
    return path


def check_writable(path: str | os.PathLike, error: type[BayeslawError] = BayeslawError) -> Path:
    """Refuse, before any work, an output that cannot be written: a missing folder, a directory or a
    special file in its place, a folder that is read-only or not writable (a probe file is created
    there and removed)."""
    path = Path(path)
    if str(path) in ("", ".") or path.name in ("", ".", ".."):
        raise error(f"cannot write '{path}': give a file name")
    folder = path.parent
    if not folder.exists():
        raise error(f"cannot write {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise error(f"cannot write {path}: {folder} is not a folder")
    if path.is_dir():
        raise error(f"cannot write {path}: it is a directory; give a file name")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise error(f"cannot write {path}: it exists and is not a regular file")
    probe = _temporary_name(path)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        raise error(f"cannot write {path}: {describe_os_error(err)}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes | bytearray | memoryview,
                       error: type[BayeslawError] = BayeslawError) -> Path:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename.

    The file gets the usual permissions (0666 less the umask). Any failure (full disk, read-only file
    system, permissions) removes the temporary, keeps a previous file and raises ``error`` naming ``path``.
    """
    path = check_writable(path, error)
    clean_stale_temporaries(path)
    tmp = _temporary_name(path)
    umask = os.umask(0)
    os.umask(umask)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~umask)
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = describe_os_error(err)
        if err.errno == errno.ENOSPC:
            reason += f" ({len(data) / 1e6:.3g} MB to write)"
        raise error(f"cannot write {path}: {reason}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[Any], Any],
                 error: type[BayeslawError] = BayeslawError) -> Path:
    """Call ``write(buffer)`` on an in-memory binary buffer, then write it to ``path`` atomically
    (:func:`write_bytes_atomic`). The output is checked before ``write`` runs."""
    import io

    check_writable(path, error)
    buffer = io.BytesIO()
    write(buffer)
    return write_bytes_atomic(path, buffer.getbuffer(), error)

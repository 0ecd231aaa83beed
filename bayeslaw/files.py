"""Atomic file writes: a failed write leaves no half-written file and keeps any previous one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bayeslaw.errors import BayeslawError


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any],
                 error: type[BayeslawError] = BayeslawError) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    The file gets the usual permissions (0666 less the umask; mkstemp alone makes it private).
    A missing folder raises ``error``; any failure removes the temporary file and re-raises.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise error(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

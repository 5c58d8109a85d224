"""Writing the user's files: checked before the work, written whole or not at all, never over
an existing file unasked, never over an input.

Every output (``.mrt`` files, PNGs, results, reports, plots, weights, models) goes to a
temporary file in the target folder and is renamed into place only when complete, so a
failed, full or killed run leaves nothing under the final name; without ``force`` the final
step is an exclusive create (a hard link), so a file that appeared during the work is kept.
"""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import MrtlabError


def check_writable(path: str | Path, force: bool = False) -> None:
    """Before the work: ``path`` may be written (missing folders are made when it is)."""
    path = Path(path)
    if path.is_dir():
        raise MrtlabError(f"{path} is a folder, not a file")
    if path.exists() and not force:
        raise MrtlabError(f"{path} exists (use --force to overwrite)")
    folder = next(p for p in path.absolute().parents if p.exists())
    if not folder.is_dir():
        raise MrtlabError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MrtlabError(f"cannot write {path}: no permission to write in {folder}")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (through links and ``..``), existing or not."""
    a, b = Path(a), Path(b)
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def write_atomic(path: str | Path, content: bytes | str | Callable[[BinaryIO], None],
                 force: bool = False) -> Path:
    """Write ``content`` (bytes, text, or a function that writes into a binary file) to
    ``path`` through a temporary file beside it; refuse an existing ``path`` unless ``force``.
    An OS error (full disk, no permission, file too large) is one line naming the file."""
    path = Path(path)
    if isinstance(content, str):
        content = content.encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as e:
        raise MrtlabError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        place(tmp, path, force)
    except OSError as e:
        raise MrtlabError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def place(tmp: str | Path, path: Path, force: bool) -> None:
    """The last step of a write: the complete file ``tmp`` becomes ``path``; without ``force``
    only if nothing is there (atomically, by a hard link, where the file system has them)."""
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise MrtlabError(f"{path} exists (it appeared while this ran; use --force to overwrite)") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if path.exists():  # a file system without hard links: check, then rename
            raise MrtlabError(f"{path} exists (it appeared while this ran; use --force to overwrite)") from None
        os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

"""Where archived files live: a small storage interface and its local-disk implementation.

Keys are relative POSIX paths (``court/2026/05/<hearing-id>/tracks/judge-video-001.webm``) built by the
server from database records and sealed manifests, never taken from a request.  Every key is validated,
and a local key must resolve (symlinks followed) to a path under the storage root.  The methods block:
call them from a worker thread.  An S3-compatible store implements the same methods.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

MAX_KEY_LENGTH = 1024


class StorageError(Exception):
    """A key is unusable (malformed or outside the root) or the object cannot be read."""


class ObjectMissing(StorageError):
    """No object is stored under the key."""


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key, size and version tag.

    ``ctime_ns`` is when its inode last changed (0 if the store cannot say); unlike the mtime it cannot be
    set back, so it reveals an edit hidden by ``utime``.
    """

    key: str
    size: int
    mtime_ns: int
    ctime_ns: int = 0

    @property
    def etag(self) -> str:
        """A strong entity tag (quoted) that changes whenever the object is rewritten."""
        return f'"{self.mtime_ns:x}-{self.size:x}"'


def validate_key(key: str) -> str:
    """``key`` when it is a clean relative POSIX path; :class:`StorageError` otherwise."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise StorageError("a storage key is 1 to 1024 characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key) or "\\" in key:
        raise StorageError("a storage key holds no control characters or backslashes")
    if key.startswith("/") or key.endswith("/"):
        raise StorageError("a storage key is relative and names an object, not a folder")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise StorageError("a storage key has no empty, '.' or '..' segments")
    return key


def join_key(prefix: str, name: str) -> str:
    """``prefix/name``, both validated: the key of a file inside a hearing folder."""
    return validate_key(f"{validate_key(prefix)}/{validate_key(name)}")


class Storage(Protocol):
    """Objects addressed by validated keys; every method blocks."""

    def stat(self, key: str) -> ObjectInfo:
        """Size and version of one object; :class:`ObjectMissing` if absent."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A seekable binary reader positioned at the start (seek to read a range)."""
        ...

    def read_bytes(self, key: str, limit: int) -> bytes:
        """The whole object, refused if larger than ``limit`` bytes."""
        ...

    def iterate(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix/``, by key."""
        ...

    def delete(self, key: str) -> None:
        """Remove one object (absent objects are not an error)."""
        ...

    def materialize(self, prefix: str) -> AbstractContextManager[Path]:
        """A local folder holding the objects under ``prefix`` (a remote store downloads them first)."""
        ...


class LocalDiskStorage:
    """Objects as files under one root folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def path_of(self, key: str) -> Path:
        """The file of ``key``; refuses any key that resolves (through symlinks) outside the root."""
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise StorageError("the key resolves outside the storage root")
        return path

    def stat(self, key: str) -> ObjectInfo:
        """Size and version of one file."""
        path = self.path_of(key)
        try:
            st = path.stat()
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        if not path.is_file():
            raise ObjectMissing(key)
        return ObjectInfo(key, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def open(self, key: str) -> BinaryIO:
        """The file opened for reading (never following a symlink swapped in after the check)."""
        path = self.path_of(key)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        except IsADirectoryError as exc:
            raise ObjectMissing(key) from exc
        return os.fdopen(fd, "rb")

    def read_bytes(self, key: str, limit: int) -> bytes:
        """The whole file if it is at most ``limit`` bytes."""
        with self.open(key) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise StorageError(f"{key} is larger than {limit} bytes")
        return data

    def iterate(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every regular file under the prefix folder (symlinks are not followed), sorted by key."""
        folder = self.path_of(prefix)
        if not folder.is_dir():
            return
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            dirnames.sort()
            for name in filenames:
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                st = path.stat()
                key = PurePosixPath(path.relative_to(self.root)).as_posix()
                found.append(ObjectInfo(key, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        yield from sorted(found, key=lambda info: info.key)

    def delete(self, key: str) -> None:
        """Remove the file and any folders left empty up to the root."""
        path = self.path_of(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    @contextmanager
    def materialize(self, prefix: str) -> Iterator[Path]:
        """The prefix's own folder: local files need no copy."""
        folder = self.path_of(prefix)
        if not folder.is_dir():
            raise ObjectMissing(prefix)
        yield folder

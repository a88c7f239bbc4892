"""Files that several machines may share: background exports and uploaded license server exports.

Both go through Django's storage API (``STORAGES["exports"]`` and ``STORAGES["imports"]``):
folders on disk by default, or any S3-compatible store (``PORTAL_FILE_STORAGE=s3``), so a
web server can serve a file that a worker on another machine wrote.
"""

import time
from collections.abc import Callable
from pathlib import Path
from tempfile import NamedTemporaryFile

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

EXPORTS = "exports"
IMPORTS = "imports"
# Half-written files of local storages wait here, on the same disk, until they are whole.
PARTIAL_DIR = ".partial"


def export_storage() -> Storage:
    return storages[EXPORTS]


def import_storage() -> Storage:
    return storages[IMPORTS]


class _MovableFile(File):
    """A finished local file: FileSystemStorage moves it into place (one rename) instead of
    copying it."""

    def __init__(self, file, path: Path):
        super().__init__(file, name=path.name)
        self._path = path

    def temporary_file_path(self) -> str:
        return str(self._path)


def _partial_path(store: Storage, partial_name: str) -> Path:
    if isinstance(store, FileSystemStorage):
        folder = Path(store.location) / PARTIAL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        return folder / partial_name
    with NamedTemporaryFile(prefix="portal-", suffix=f"-{partial_name}", delete=False) as handle:
        return Path(handle.name)


def save_whole(store: Storage, name: str, write: Callable[[Path], object], *, partial_name: str):
    """Write a file with ``write(path)`` into a partial file, then put it in ``store`` under
    ``name`` in one step, replacing what was there. Returns what ``write`` returned.

    A run that starts again with the same ``partial_name`` truncates it: a file is never
    appended to, and readers never see half of one."""
    path = _partial_path(store, partial_name)
    try:
        result = write(path)
        with open(path, "rb") as handle:
            saved = store.save(name, _MovableFile(handle, path))
        if saved != name:  # the storage must keep the name: it is how the job finds its file
            raise RuntimeError(f"The file store saved {name!r} as {saved!r}; it must allow overwriting.")
    finally:
        path.unlink(missing_ok=True)
    return result


def purge_partials(store: Storage, *, older_than_seconds: float) -> int:
    """Delete half-written files a dead worker left behind (local storages only)."""
    if not isinstance(store, FileSystemStorage):
        return 0
    folder = Path(store.location) / PARTIAL_DIR
    if not folder.is_dir():
        return 0
    oldest = time.time() - older_than_seconds
    removed = 0
    for leftover in folder.iterdir():
        if leftover.is_file() and leftover.stat().st_mtime < oldest:
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed

"""Atomic file and folder writes, and reading input arrays: numpy and the standard library only.

Every file fastml_lab writes goes through :func:`atomic_destination`: a temporary file beside the
target, renamed onto it only when the write succeeded, so a reader sees the old content or the new,
never half of it, and a failure leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import io
import json
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path


#: The flags of tempfile.mkstemp: a new file only, never through a link, not inherited by children.
_EXCLUSIVE = (os.O_WRONLY | os.O_CREAT | os.O_EXCL
              | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def _create_beside(folder: Path, prefix: str, suffix: str, directory: bool = False) -> tuple[Path, int]:
    """Create a new file (``directory``: folder) named ``prefix + random + suffix`` in ``folder`` and
    return its path and permission bits.

    It is created with mode 0666 (folder: 0777) so the kernel applies the umask (and any default
    ACL) itself, as a plain ``open()`` or ``mkdir`` would: the process umask is never changed, since
    that would race with every other thread that creates files meanwhile.
    """
    for _ in range(tempfile.TMP_MAX):
        path = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            if directory:
                os.mkdir(path, 0o777)
                return path, stat.S_IMODE(os.lstat(path).st_mode)
            fd = os.open(path, _EXCLUSIVE, 0o666)
        except FileExistsError:
            continue
        try:
            return path, stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    raise FileExistsError(errno.EEXIST, f"No unused temporary name {prefix}*{suffix} in {folder}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale(folder: Path, name: str, suffix: str) -> None:
    """Remove what a killed writer left beside ``name``: ``.{name}.{pid}.*{suffix}`` whose process is gone."""
    for leftover in folder.glob(f".{glob.escape(name)}.*{suffix}"):
        pid = leftover.name[len(name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def check_destination(path, folder: bool = False) -> Path:
    """``path`` as a Path if a file (``folder``: a folder) can be written there; else a ConfigError
    naming it: a folder where a file is wanted or the reverse, or a parent that is a file."""
    from .exceptions import ConfigError

    path = Path(path)
    if path.is_dir() and not folder:
        example = path / ("result" + (path.suffix or ".npy"))
        raise ConfigError(f"{path} is a folder; give the name of a file to write, e.g. {example}.")
    if path.exists() and not path.is_dir() and folder:
        raise ConfigError(f"{path} is a file; give the name of a folder to write.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"Cannot write {path}: {parent} is a file, not a folder.")
            break
    return path


@contextlib.contextmanager
def atomic_destination(path):
    """Yield a temporary path beside ``path`` (same suffix); move it onto ``path`` on success."""
    path = check_destination(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.stem, f".tmp{path.suffix}")
    tmp, mode = _create_beside(path.parent, f".{path.stem}.{os.getpid()}.", f".tmp{path.suffix}")
    try:
        yield tmp
        os.chmod(tmp, mode)  # the usual mode, even if the writer made the file anew with another
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes_atomic(path, data: bytes) -> Path:
    with atomic_destination(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, data, indent: int = 2) -> Path:
    """``data`` as indented JSON with a final newline."""
    return write_text_atomic(path, json.dumps(data, indent=indent) + "\n")


def read_json(path, what: str, error=None):
    """The JSON value in ``path``, read as UTF-8; for a file that is missing, unreadable, not UTF-8,
    not JSON, or nested too deeply to read, ``error`` (default DataError) with a message that
    names ``what`` and the file."""
    from .exceptions import DataError

    error = error or DataError
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"Cannot read {what} {path}: the file does not exist.") from None
    except UnicodeDecodeError as exc:
        raise error(f"Cannot read {what} {path}: it is not UTF-8 text (byte {exc.start}); "
                    "expected JSON.") from None
    except json.JSONDecodeError as exc:
        raise error(f"Cannot read {what} {path}: it is not valid JSON ({exc}).") from None
    except RecursionError:
        raise error(f"Cannot read {what} {path}: its JSON is nested too deeply to be {what}.") from None
    except OSError as exc:
        raise error(f"Cannot read {what} {path}: {exc.strerror or exc}.") from None


def save_npy_atomic(path, array) -> Path:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array)
    return write_bytes_atomic(path, buf.getvalue())


def load_npy(path):
    """Read an input ``.npy`` array; DataError naming the file for anything else."""
    import numpy as np

    from .exceptions import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Cannot read {path}: the file does not exist.")
    try:
        return np.load(path, allow_pickle=False)
    except EOFError:
        raise DataError(f"Cannot read {path}: the file is empty or truncated; expected a .npy array.") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {path} as a .npy array ({exc}).") from None


def recover_replaced(target) -> bool:
    """Put back the folder ``target`` if a replacement by :func:`atomic_directory` was killed between
    its two renames (``target`` gone, ``.{name}.old`` present); True if it did."""
    target = Path(target)
    old = target.with_name(f".{target.name}.old")
    if old.is_dir() and not target.exists():
        try:
            os.replace(old, target)
        except OSError:
            return False
        return True
    return False


@contextlib.contextmanager
def atomic_directory(target, overwrite: bool = False):
    """Build a folder in a temporary sibling and move it to ``target`` only if the block succeeds.

    Yields the temporary folder's path. On any exception (Ctrl-C included) the temporary folder
    is removed and ``target`` is left as it was. A writer killed outright (``kill -9``) can leave
    only hidden siblings: its temporary folder, removed by the next write, and, if it died between
    the two renames of a replacement, the previous folder as ``.{name}.old``, which the next write
    puts back before anything else.
    """
    target = check_destination(Path(target).resolve(), folder=True)
    old = target.with_name(f".{target.name}.old")
    recover_replaced(target)
    if target.parent.is_dir():
        remove_stale(target.parent, target.name, ".partial")
    if target.exists() and not overwrite:
        from .exceptions import ConfigError

        raise ConfigError(f"{target} already exists; choose another folder or allow overwriting.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp, _ = _create_beside(target.parent, f".{target.name}.{os.getpid()}.", ".partial", directory=True)
    try:
        yield tmp
        if target.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

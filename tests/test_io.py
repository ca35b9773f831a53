"""fastml_lab._io: atomic writes give the mode a plain open()/mkdir would, without touching the umask."""

import os
import stat

import pytest

from fastml_lab import _io


def _current_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


@pytest.fixture
def umask_027():
    umask = os.umask  # kept: umask_untouchable may replace os.umask before this puts the old one back
    old = umask(0o027)
    yield 0o027
    umask(old)


@pytest.fixture
def umask_untouchable(monkeypatch):
    """os.umask raises: the process umask is shared by every thread, so the writes must not set it."""
    def refuse(mask):
        raise AssertionError(f"os.umask({mask:#o}) called: it changes the umask of every thread")
    monkeypatch.setattr(os, "umask", refuse)


def test_atomic_file_gets_the_plain_open_mode_without_calling_umask(tmp_path, umask_027, umask_untouchable):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    path = _io.write_text_atomic(tmp_path / "sub" / "out.txt", "hello")
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask_027 == stat.S_IMODE(plain.stat().st_mode)
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]  # no temporary file left


def test_atomic_file_replacing_one_gets_the_usual_mode(tmp_path, umask_027, umask_untouchable):
    target = tmp_path / "out.json"
    target.write_text("{}")
    target.chmod(0o600)
    _io.write_json_atomic(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask_027


def test_writer_that_recreates_the_temporary_file_still_gets_the_usual_mode(tmp_path, umask_027,
                                                                           umask_untouchable):
    with _io.atomic_destination(tmp_path / "model.bin") as tmp:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"data")
        os.close(fd)
    assert (tmp_path / "model.bin").read_bytes() == b"data"
    assert stat.S_IMODE((tmp_path / "model.bin").stat().st_mode) == 0o666 & ~umask_027


def test_failed_write_leaves_nothing(tmp_path, umask_untouchable):
    with pytest.raises(RuntimeError), _io.atomic_destination(tmp_path / "out.npy") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_temporary_file_has_the_usual_mode_and_a_name_remove_stale_recognises(tmp_path):
    with _io.atomic_destination(tmp_path / "out.csv") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(f".out.{os.getpid()}.") and tmp.name.endswith(".tmp.csv")
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o666 & ~_current_umask()
        tmp.write_text("a")
    dead = tmp_path / ".out.999999999.abcd1234.tmp.csv"   # beyond any pid_max: its writer is gone
    dead.write_text("left by a killed writer")
    _io.write_text_atomic(tmp_path / "out.csv", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_atomic_directory_gets_the_plain_mkdir_mode_without_calling_umask(tmp_path, umask_027,
                                                                          umask_untouchable):
    (tmp_path / "plain").mkdir()
    with _io.atomic_directory(tmp_path / "pkg") as tmp:
        assert tmp.name.startswith(f".pkg.{os.getpid()}.") and tmp.name.endswith(".partial")
        (tmp / "a.txt").write_text("a")
    mode = stat.S_IMODE((tmp_path / "pkg").stat().st_mode)
    assert mode == 0o777 & ~umask_027 == stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg", "plain"]

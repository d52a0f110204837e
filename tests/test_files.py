"""toolkit.files.AtomicFile: complete or absent, never half; the old file kept on failure."""

import os

import pytest

from toolkit.files import AtomicFile


def test_commit_replaces_and_keeps_the_old_files_mode(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with AtomicFile(path) as f:
        f.write(b"new")
        assert path.read_bytes() == b"old", "nothing reaches the destination before commit"
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["out.bin"]


def test_an_exception_or_ctrl_c_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    for error in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with AtomicFile(path) as f:
                f.write(b"half")
                raise error
        assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


def test_new_file_gets_the_umasks_mode_and_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        AtomicFile(tmp_path / "no" / "out.bin")
    path = tmp_path / "out.bin"
    writer = AtomicFile(path)
    writer.stream.write(b"x")
    writer.commit()
    writer.commit()  # a second commit (or a discard after it) changes nothing
    writer.discard()
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_bytes() == b"x" and path.stat().st_mode & 0o777 == 0o666 & ~umask

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


def test_discard_removes_the_temporary_file_even_when_closing_it_fails(tmp_path):
    class Full:
        """A stream whose last flush fails, as closing a file on a full disk does."""

        def __init__(self, stream):
            self.stream = stream

        def close(self):
            self.stream.close()
            raise OSError(28, "No space left on device")

    writer = AtomicFile(tmp_path / "out.bin")
    writer.stream = Full(writer.stream)
    writer.discard()
    assert os.listdir(tmp_path) == []


def test_text_is_decoded_as_it_arrives_alike_at_any_chunk_size(monkeypatch):
    import io

    from toolkit import files
    from toolkit.io import text_lines

    data = "é\r\nü\rx\n\n\u2028y\r".encode()
    for size in (1, 2, 3, 1 << 16):
        monkeypatch.setattr(files, "CHUNK_BYTES", size)
        assert "".join(files.decoded(io.BytesIO(data), "utf-8")) == data.decode()
        assert text_lines(data.decode()) == ["é", "ü", "x", "", "\u2028y"]
        # The text before a bad byte comes out before the error, which names its line and offset.
        chunks = files.decoded(io.BytesIO(b"ok\n\xc3\xa9\nbad\xff\n"), "utf-8")
        read = []
        with pytest.raises(ValueError, match=r"^line 3: not valid utf-8 \(byte 0xff at offset 9\)$"):
            for chunk in chunks:
                read.append(chunk)
        assert "".join(read) == "ok\né\nbad"


def test_lines_cut_as_they_arrive_are_the_lines_of_the_whole_text(monkeypatch):
    import io
    import random

    from toolkit import files
    from toolkit.io import _split_lines, text_lines

    rng = random.Random(18)
    pieces = ["a", "b", "\r", "\n", "\r\n", "é", "\u2028"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        # Line ends are \n, \r\n and \r alone; a last line end ends the last line, it does not start one.
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        lines = lines[:-1] if lines[-1] == "" else lines
        assert text_lines(text) == lines, text
        for size in (1, 2, 3, 64):
            monkeypatch.setattr(files, "CHUNK_BYTES", size)
            assert list(_split_lines(files.decoded(io.BytesIO(text.encode()), "utf-8"))) == lines, text

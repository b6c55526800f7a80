"""The one atomic-write helper: the destination is the old file or the new one, never half of one."""
import os
import stat

import pytest

from huafeng.atomic import atomic_open, atomic_path, write_bytes, write_text


def test_a_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "a.bin"
    write_bytes(out, b"one")
    write_bytes(out, b"two")
    assert out.read_bytes() == b"two" and os.listdir(tmp_path) == ["a.bin"]
    write_text(tmp_path / "b.json", "{}")
    assert (tmp_path / "b.json").read_text() == "{}"


def test_a_failed_write_keeps_the_old_file(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(out, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("disk full")
    assert out.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_the_temporary_is_beside_the_file_with_its_extension_and_the_mode_is_kept(tmp_path):
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"x")
    os.chmod(out, 0o640)
    with atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp.name.startswith(".clip.")
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and stat.S_IMODE(out.stat().st_mode) == 0o640
    write_bytes(tmp_path / "w.safetensors", b"w", 0o644)
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == 0o644

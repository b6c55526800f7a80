"""Training and evaluation work out of the box: without --content they use the photos shipped in the package."""
from __future__ import annotations

from pathlib import Path

import pytest

from huafeng.cli.commands import _data_dir
from huafeng.errors import SettingsError
from huafeng.train.common import list_images


def test_without_a_folder_the_shipped_kodak_photos_and_paintings_are_used(monkeypatch, tmp_path):
    monkeypatch.delenv("HUAFENG_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing like ../shared/data around
    photos = list_images(_data_dir(None, "content"))
    assert len(photos) == 24 and all(p.name.startswith("kodak-") for p in photos)
    assert len(list_images(_data_dir(None, "styles"))) >= 14
    assert _data_dir(str(tmp_path), "content") == str(tmp_path)  # a given folder wins


def test_huafeng_data_is_used_and_a_wrong_one_is_one_line(monkeypatch, tmp_path):
    (tmp_path / "content").mkdir()
    monkeypatch.setenv("HUAFENG_DATA", str(tmp_path))
    assert Path(_data_dir(None, "content")) == tmp_path / "content"
    with pytest.raises(SettingsError) as e:
        _data_dir(None, "styles")
    assert "\n" not in str(e.value) and "HUAFENG_DATA" in str(e.value)


def test_the_product_has_no_shared_folder_fallback():
    root = Path(__file__).resolve().parents[1] / "huafeng"
    hits = [str(p) for p in root.rglob("*.py") if "../shared" in p.read_text(encoding="utf-8")]
    assert hits == []

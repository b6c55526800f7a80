"""Bundled assets and the --style NAME_OR_PATH[:WEIGHT] syntax."""
import pytest

from huafeng.errors import SettingsError
from huafeng.image import read_image
from huafeng.styles import BUNDLED, PHOTOS, parse_style_spec, resolve_content, resolve_style, sample_photo


def test_every_bundled_image_is_there_small_and_readable():
    assert len(BUNDLED) >= 8
    for st in BUNDLED.values():
        rgb, _ = read_image(st.path)
        assert max(rgb.shape[-2:]) == 512 and st.path.stat().st_size < 250_000
    for name in PHOTOS:
        assert read_image(sample_photo(name))[0].shape[1] == 3


@pytest.mark.parametrize("spec, expected", [
    ("wave.jpg:0.7", ("wave.jpg", 0.7)),
    ("starry-night", ("starry-night", 1.0)),
    ("C:\\art\\wave.jpg", ("C:\\art\\wave.jpg", 1.0)),   # a Windows drive colon is not a weight
    ("a:b:2", ("a:b", 2.0)),
])
def test_parse_style_spec(spec, expected):
    assert parse_style_spec(spec) == expected


def test_negative_weight_and_unknown_style_are_one_line_errors():
    with pytest.raises(SettingsError):
        parse_style_spec("wave.jpg:-1")
    with pytest.raises(SettingsError) as e:
        resolve_style("no-such-painting")
    assert "starry-night" in str(e.value) and "\n" not in str(e.value)


def test_resolve_content_prefers_real_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_content("parrots") == sample_photo("parrots")
    (tmp_path / "parrots").write_bytes(b"x")
    assert resolve_content("parrots").resolve() == (tmp_path / "parrots").resolve()

"""Per-style networks: shapes, tiling, the trainer (loss falls, resumes), bad input, the fast method."""
import json

import pytest
import torch

from huafeng.errors import HuafengError, SettingsError
from huafeng.image import save_image
from huafeng.methods.fast import FastSettings, FastStylizer, TransformerNet, gallery, load_net
from huafeng.train.style import StyleTrainSettings, train_style


def test_network_keeps_size_and_range():
    net = TransformerNet().eval()
    for h, w in [(64, 64), (37, 53), (5, 9)]:
        with torch.no_grad():
            y = net(torch.rand(1, 3, h, w))
        assert y.shape == (1, 3, h, w) and 0 <= y.min() and y.max() <= 1


def test_tiles_match_the_untiled_result(tmp_path):
    from huafeng.weights import save_file

    torch.manual_seed(0)
    net = TransformerNet()
    path = tmp_path / "n.safetensors"
    from huafeng.methods.fast import NetConfig, net_metadata

    save_file(net.state_dict(), path, net_metadata(NetConfig()))
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 10, 14), size=(120, 170), mode="bicubic").clamp(0, 1)
    tiled = FastStylizer(FastSettings(tile=96, overlap=40)).stylize(x, [str(path)])
    # the untiled reference with the same normalisation statistics (recorded on the picture at tile size)
    from huafeng.image import resize_long_side

    net = load_net(str(path))
    with torch.no_grad():
        net.norm_mode("record")
        net(resize_long_side(x, 96))
        net.norm_mode("fixed")
        whole = net(x)
        net.norm_mode("normal")
    d = (whole - tiled).abs()
    assert d.mean() < 0.01 and d.max() < 0.1, (d.mean().item(), d.max().item())


@pytest.fixture()
def data(tmp_path):
    torch.manual_seed(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        save_image(torch.rand(1, 3, 48, 64), photos / f"{i}.png")
    painting = tmp_path / "painting.png"
    stripes = torch.zeros(1, 3, 64, 64)
    stripes[:, 0, :, ::8] = 1
    stripes[:, 2, ::8, :] = 1
    save_image(stripes, painting)
    return photos, painting


def test_tiny_training_lowers_the_loss_writes_curves_and_resumes(data, tmp_path):
    photos, painting = data
    s = StyleTrainSettings(painting=str(painting), content_dir=str(photos), out=str(tmp_path / "run"), steps=24,
                           batch=2, crop=32, lr=5e-3, checkpoint_every=8, minutes=5)
    summary = train_style(s)
    rows = json.loads((tmp_path / "run" / "log.json").read_text())["log"]
    assert len(rows) == 24 and summary["steps"] == 24
    assert sum(r["style"] for r in rows[-4:]) < 0.8 * sum(r["style"] for r in rows[:4])
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    # "interrupted": rerun with a larger step budget continues from 24, not from 0
    more = train_style(StyleTrainSettings(**{**s.__dict__, "steps": 30}))
    assert more["steps"] == 30
    assert [r["step"] for r in json.loads((tmp_path / "run" / "log.json").read_text())["log"]] == list(range(1, 31))
    # the trained file works through the fast method
    out = FastStylizer().stylize(torch.rand(1, 3, 40, 50), [summary["weights"]])
    assert out.shape == (1, 3, 40, 50) and torch.isfinite(out).all()


def test_bad_training_input_is_a_one_line_error(data, tmp_path):
    photos, painting = data
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a painting")
    for kwargs in [dict(content_dir=str(empty)), dict(painting=str(bad)), dict(minutes=0)]:
        args = {"painting": str(painting), "content_dir": str(photos), "out": str(tmp_path / "x"), "steps": 1, **kwargs}
        with pytest.raises(HuafengError) as e:
            train_style(StyleTrainSettings(**args))
        assert "\n" not in str(e.value)


def test_unknown_network_lists_the_gallery():
    with pytest.raises(SettingsError, match="train one"):
        load_net("no-such-style")


def test_every_shipped_network_loads_and_runs():
    for name in gallery():
        out = FastStylizer().stylize(torch.rand(1, 3, 64, 80), [name])
        assert out.shape == (1, 3, 64, 80) and torch.isfinite(out).all()


def test_fast_is_the_default_when_every_style_has_a_network(monkeypatch, tmp_path):
    import huafeng.methods.fast as fast
    from huafeng.methods import DEFAULT_METHOD, auto_method

    monkeypatch.setattr(fast, "gallery", lambda: {"starry-night": tmp_path / "x.safetensors"})
    assert auto_method(["starry-night"]) == "fast"
    assert auto_method(["starry-night:0.5"]) == "fast"
    assert auto_method(["starry-night", "udnie"]) == DEFAULT_METHOD
    assert auto_method(["painting.jpg"]) == DEFAULT_METHOD

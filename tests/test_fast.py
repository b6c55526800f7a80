"""Per-style networks: shapes, identity start, tiling, the trainer (loss falls, resumes, evaluates),
bad input, shipped models, the fast method."""
import json
from pathlib import Path

import pytest
import torch

from huafeng.errors import HuafengError, SettingsError, WeightsError
from huafeng.image import resize_long_side, save_image
from huafeng.image import load_image
from huafeng.methods.fast import (HEADS, FastSettings, FastStylizer, NetConfig, TransformerNet, gallery, load_net,
                                  net_metadata)
from huafeng.styles import sample_photo
from huafeng.train.style import StyleTrainSettings, split_photos, train_style
from huafeng.weights import WEIGHTS_DIR, load_file, save_file


@pytest.mark.parametrize("head", HEADS)
def test_network_keeps_size_and_range(head):
    net = TransformerNet(NetConfig(head=head)).eval()
    with torch.no_grad():
        net.head.weight.normal_(0, 0.5)  # a non-trivial network, not the identity start
        for h, w in [(64, 64), (37, 53), (5, 9), (1, 1)]:
            y = net(torch.rand(2, 3, h, w))
            assert y.shape == (2, 3, h, w) and 0 <= y.min() and y.max() <= 1


def test_an_untrained_network_returns_the_photo():
    x = torch.rand(1, 3, 30, 44) * 0.98 + 0.01
    with torch.no_grad():
        y = TransformerNet().eval()(x)
    assert (y - x).abs().max() < 1e-5


@pytest.mark.parametrize("palette,head", [(False, "shuffle"), (True, "shuffle"), (True, "bilinear")])
def test_tiles_match_the_untiled_result(tmp_path, palette, head):
    torch.manual_seed(0)
    net = TransformerNet(NetConfig(palette=palette, head=head))
    with torch.no_grad():
        net.head.weight.normal_(0, 0.1)  # (the rest is randomly initialised already)
    if palette:
        net.palette.set_target(torch.rand(1, 3, 30, 30) * 0.5)
    path = tmp_path / "n.safetensors"
    save_file(net.state_dict(), path, net_metadata(NetConfig(palette=palette, head=head)))
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 10, 14), size=(120, 170), mode="bicubic").clamp(0, 1)
    tiled = FastStylizer(FastSettings(tile=96, overlap=40)).stylize(x, [str(path)])
    # the untiled reference with the same normalisation statistics (recorded on the picture at tile size)
    net = load_net(str(path))
    with torch.no_grad():
        net.norm_mode("record")
        net(resize_long_side(x, 96))
        net.norm_mode("fixed")
        whole = net(x)
        net.norm_mode("normal")
    # each tile runs with its receptive field of real context around it, so they agree to rounding
    assert (whole - tiled).abs().max() < 1e-4
    assert (whole - x).abs().mean() > 0.02  # the comparison is not between two copies of the photo


def test_the_palette_maps_the_output_onto_the_painting_colours():
    from huafeng.methods.fast import _colour_stats

    torch.manual_seed(0)
    net = TransformerNet(NetConfig(palette=True))
    painting = torch.rand(1, 3, 50, 60) * torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1)
    net.palette.set_target(painting)
    x = torch.rand(2, 3, 40, 52) * 0.9 + 0.05
    with torch.no_grad():
        net.head.weight.normal_(0, 0.1)
        y = net.eval()(x)
        mu_p, cov_p = _colour_stats(painting)
        for i in range(2):
            mu, cov = _colour_stats(y[i:i + 1])
            assert (mu - mu_p).abs().max() < 1e-3 and (cov - cov_p).abs().max() < 1e-3
        assert (_colour_stats(x[:1])[0] - mu_p).abs().max() > 0.1  # the photo's colours were elsewhere
        net.palette.sqrt = "newton-schulz"  # the ONNX export's matrix roots: the same pictures
        assert (net(x) - y).abs().max() < 1e-5
        net.palette.sqrt = "eigh"
        assert (net.train()(x) - net.palette(net.train()(x))).abs().max() > 0.05  # not applied in training


def test_shipped_networks_change_the_borders_like_the_interior():
    # the mean change over 24 random crops is the same everywhere for a shift-invariant network; with a
    # 16-px margin the shipped Scream of session 3 changed its outer 6 px by 0.13 more than the interior
    # (a dark band on the right), with the 32-px inference margin by 0.02
    g = torch.Generator().manual_seed(0)
    ims = [load_image(sample_photo(n)) for n in ("parrots", "cat")]
    crops = []
    for k in range(24):
        im = ims[k % 2]
        y0 = torch.randint(0, im.shape[-2] - 160, (1,), generator=g).item()
        x0 = torch.randint(0, im.shape[-1] - 160, (1,), generator=g).item()
        crops.append(im[..., y0:y0 + 160, x0:x0 + 160])
    x = torch.cat(crops)
    for name in gallery():
        with torch.no_grad():
            d = (load_net(name)(x) - x).mean((0, 1))
        inner = d[16:-16, 16:-16].mean()
        worst = max((e.mean() - inner).abs().item() for e in (d[:, :6], d[:, -6:], d[:6], d[-6:]))
        assert worst < 0.06, (name, worst)


def test_a_file_of_another_architecture_is_a_one_line_error(tmp_path):
    p = tmp_path / "old.safetensors"
    save_file({"w": torch.zeros(3)}, p, {"arch": "huafeng-fast-transformer", "net": "{}"})
    with pytest.raises(WeightsError) as e:
        load_net(str(p))
    assert "\n" not in str(e.value)


@pytest.fixture()
def data(tmp_path):
    torch.manual_seed(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):  # smooth random pictures: photo-like total variation
        img = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8), size=(48, 64), mode="bicubic")
        save_image(img.clamp(0, 1), photos / f"{i}.png")
    painting = tmp_path / "painting.png"  # blotches in a blue palette: a style a few steps can learn
    blue = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16), size=(64, 64), mode="bicubic").clamp(0, 1)
    save_image(blue * torch.tensor([0.2, 0.4, 1.0]).view(1, 3, 1, 1), painting)
    return photos, painting


def _tiny(photos, art, out, **kw):
    return StyleTrainSettings(**{"painting": str(art), "content_dir": str(photos), "out": str(out), "steps": 24,
                                 "batch": 2, "crop": 64, "lr": 5e-3, "checkpoint_every": 8, "minutes": 5,
                                 "holdout": 1, "eval_size": 40, "eval_steps": 3, **kw})


def test_held_out_photos_never_train():
    files = [f"{d}/{i}.jpg" for d in "abc" for i in range(10)]
    train, held = split_photos(files, 4)
    assert len(held) == 4 and not set(held) & set(train) and len(train) + 4 == 30
    assert {h[0] for h in held} == set("abc")  # spread over the subfolders
    assert split_photos(files[:3], 4) == (files[:3], [])  # too few photos: none held out


class _Stop(Exception):
    pass


def test_tiny_training_lowers_the_loss_writes_curves_evaluates_and_resumes(data, tmp_path):
    photos, painting = data
    s = _tiny(photos, painting, tmp_path / "run")

    def interrupt(p):  # an interruption mid-run, after the checkpoint at step 8
        if p.stage.startswith("train") and p.step == 13:
            raise _Stop

    with pytest.raises(_Stop):
        train_style(s, progress=interrupt)
    seen = []
    summary = train_style(s, progress=seen.append)  # the same command again: continues from step 8
    assert summary["steps"] == 24 and seen[0].step == 9
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    rows = log["log"]
    assert [r["step"] for r in rows] == list(range(1, 25))
    for key in ("total", "style"):
        assert sum(r[key] for r in rows[-4:]) < 0.85 * sum(r[key] for r in rows[:4]), key
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    # calibration: the style term starts near style_weight whatever the painting
    assert 0.5 < rows[0]["style"] * log["style_weight_effective"] / s.style_weight < 2
    # evaluation on the held-out photo, against the optimisation method
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert ev["photos"] == 1 and log["train_photos"] == 4 and len(log["held_out"]) == 1
    assert ev["rows"][0]["photo"] == Path(log["held_out"][0]).name
    for k in ("fast_style", "optimize_style", "fast_ssim", "optimize_ssim"):
        assert ev["mean"][k] == ev["mean"][k] and ev["mean"][k] >= 0  # finite numbers
    assert isinstance(ev["passes"], bool) and ev["bar"] == {"style_ratio_max": 2.0, "ssim_ratio_min": 0.9}
    assert (tmp_path / "run" / "eval.png").stat().st_size > 1000
    # the trained file works through the fast method and describes itself
    _, meta = load_file(summary["weights"])
    assert json.loads(meta["net"])["channels"] == list(NetConfig().channels) and meta["steps"] == "24"
    out = FastStylizer().stylize(torch.rand(1, 3, 40, 50), [summary["weights"]])
    assert out.shape == (1, 3, 40, 50) and torch.isfinite(out).all()


def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(data, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    photos, painting = data
    s = _tiny(photos, painting, tmp_path / "run", steps=10_000, checkpoint_every=3, holdout=0)
    code = ("import torch; torch.set_num_threads(1); from huafeng.train.style import StyleTrainSettings, train_style; "
            f"train_style(StyleTrainSettings(**{s.__dict__!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code])
    ckpt, deadline = tmp_path / "run" / "checkpoint.safetensors", time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)  # somewhere between two checkpoints, perhaps while writing one
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "no checkpoint was written before the kill"
    from huafeng.train.common import load_checkpoint
    done = load_checkpoint(ckpt)[1]  # the last checkpoint (log.json is written after it, and may lag a kill)
    summary = train_style(StyleTrainSettings(**{**s.__dict__, "steps": done + 4}))
    assert summary["steps"] == done + 4
    rows = json.loads((tmp_path / "run" / "log.json").read_text())["log"]
    assert [r["step"] for r in rows] == list(range(1, done + 5))


def test_a_checkpoint_of_another_network_is_a_one_line_error(data, tmp_path):
    photos, painting = data
    train_style(_tiny(photos, painting, tmp_path / "run", steps=2, holdout=0))
    with pytest.raises(SettingsError) as e:
        train_style(_tiny(photos, painting, tmp_path / "run", steps=3, holdout=0, channels=(8, 24)))
    assert "\n" not in str(e.value) and "--out" in str(e.value)


@pytest.mark.parametrize("bad", ["empty", "painting", "zero", "negative"])
def test_bad_training_input_is_a_one_line_error(data, tmp_path, bad):
    photos, painting = data
    empty = tmp_path / "empty"
    empty.mkdir()
    unreadable = tmp_path / "bad.jpg"
    unreadable.write_text("not a painting")
    kwargs = {"empty": dict(content_dir=str(empty)), "painting": dict(painting=str(unreadable)),
              "zero": dict(minutes=0), "negative": dict(minutes=-1)}[bad]
    with pytest.raises(HuafengError) as e:
        train_style(_tiny(photos, kwargs.pop("painting", painting), tmp_path / "x", steps=1, **kwargs))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x" / "checkpoint.safetensors").exists()


def test_train_style_command_reports_bad_input_in_one_line(data, tmp_path, capsys):
    from huafeng.cli import main

    photos, painting = data
    assert main(["train", "style", str(painting), "--content", str(photos), "--minutes", "0",
                 "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "minutes" in err and "\n" not in err


def test_unknown_network_lists_the_gallery():
    with pytest.raises(SettingsError, match="train one"):
        load_net("no-such-style")


def test_every_shipped_network_loads_and_runs():
    for name, path in gallery().items():
        _, meta = load_file(path)
        assert meta.get("painting") and meta.get("steps"), name
        assert (WEIGHTS_DIR / f"fast-{name}.md").exists(), f"{name} has no model card"
        for h, w in [(64, 80), (33, 47)]:
            out = FastStylizer().stylize(torch.rand(1, 3, h, w), [name])
            assert out.shape == (1, 3, h, w) and torch.isfinite(out).all()


def test_fast_is_the_default_when_every_style_has_a_network(monkeypatch, tmp_path):
    import huafeng.methods.fast as fast
    from huafeng.methods import DEFAULT_METHOD, auto_method

    monkeypatch.setattr(fast, "gallery", lambda: {"starry-night": tmp_path / "x.safetensors"})
    assert auto_method(["starry-night"]) == "fast"
    assert auto_method(["starry-night:0.5"]) == "fast"
    assert auto_method(["starry-night", "udnie"]) == DEFAULT_METHOD
    assert auto_method(["painting.jpg"]) == DEFAULT_METHOD


def test_a_strength_conditioned_network_renders_the_strength_itself(data, tmp_path):
    photos, art = data
    summary = train_style(_tiny(photos, art, tmp_path / "run", conditioned=True, holdout=0, steps=40))
    net = load_net(summary["weights"])
    assert net.conditioned and any(k.endswith("weight_s") for k in net.state_dict())
    x = resize_long_side(load_image(next(photos.iterdir())), 48)
    with torch.no_grad():
        outs = {}
        for s in (0.0, 1.0):
            net.set_strength(s)
            outs[s] = net(x)
        net.set_strength(1.0)
    # strength 0 trained towards the photo (content term only), strength 1 towards the painting
    assert (outs[0.0] - x).abs().mean() < (outs[1.0] - x).abs().mean()
    # the fast method renders --strength inside a conditioned network, not as a blend with the photo
    from huafeng.controls import Controls, blend_strength

    half = FastStylizer().stylize(x, [summary["weights"]], controls=Controls(strength=0.5))
    with torch.no_grad():
        net.set_strength(0.5)
        inside = net(x)
        net.set_strength(1.0)
    assert (half - inside).abs().max() < 1e-5
    assert (half - blend_strength(x, outs[1.0], 0.5)).abs().max() > 1e-4
    assert (FastStylizer().stylize(x, [summary["weights"]]) - outs[1.0]).abs().max() < 1e-5  # reset to 1


def test_the_bilinear_head_and_the_antialiased_loss_train(data, tmp_path):
    """The pattern levers of the gallery (issue 17): a head without a 2x2 sub-pixel layout, and the
    anti-aliased Lite0 as the loss network; a tiny run lowers the loss and its file loads as such."""
    photos, painting = data
    summary = train_style(_tiny(photos, painting, tmp_path / "run", head="bilinear", loss_backbone="lite0-aa",
                                evaluate=False))
    rows = json.loads((tmp_path / "run" / "log.json").read_text())["log"]
    assert sum(r["style"] for r in rows[-4:]) < 0.85 * sum(r["style"] for r in rows[:4])
    net = load_net(summary["weights"])
    assert net.head.out_channels == 3 and not net.shuffle
    with pytest.raises(SettingsError):
        _tiny(photos, painting, tmp_path / "bad", loss_backbone="resnet")
    with pytest.raises(SettingsError):
        NetConfig(head="deconv")

"""The arbitrary-style painting network: controls, tiling, training (with kill -9), shipped weights, errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from huafeng.methods.arbitrary import ArbitrarySettings, ArbitraryStylizer
from huafeng.methods.paint_net import PaintDecoder, PaintNet, pad_to_lattice, unpad
from huafeng.train.common import load_checkpoint


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    dec = PaintDecoder()
    for p in dec.parameters():  # a non-identity residual block, so tiles see real context effects
        p.data.add_(0.01 * torch.randn_like(p))
    return PaintNet(dec).eval().requires_grad_(False)


def _smooth(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(torch.rand(1, 3, 10, 14, generator=g), size=(h, w), mode="bicubic",
                                           align_corners=False).clamp(0, 1)


def test_decoder_starts_from_the_reconstruction_decoder_and_keeps_the_size(untrained):
    from huafeng.train.paint import warm_start

    dec = PaintDecoder()
    warm_start(dec, "photoreal")  # the shipped L4 decoder; the residual block starts at zero
    assert all((p == 0).all() for p in dec.res.b.parameters())
    x, pads = pad_to_lattice(_smooth(61, 83), margin=5)
    assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0
    y = untrained(x, untrained.painting_stats(_smooth(64, 64, 1)))
    assert y.shape == x.shape and unpad(y, pads).shape == (1, 3, 61, 83)


def test_strength_zero_returns_the_content(untrained):
    from huafeng.controls import Controls

    content, style = _smooth(96, 128), _smooth(80, 80, 1)
    st = ArbitraryStylizer(ArbitrarySettings(), net=untrained)
    out = st.stylize(content, [style], controls=Controls(strength=0.0))
    assert torch.allclose(out, content, atol=1e-6)
    half = st.stylize(content, [style], controls=Controls(strength=0.5))
    full = st.stylize(content, [style])
    assert torch.allclose(half, (content + full) / 2, atol=1e-5)


@pytest.mark.parametrize("transform", ["adain", "wct"])
def test_tiles_match_the_untiled_result(untrained, transform):
    net = PaintNet(untrained.decoder, transform=transform).eval().requires_grad_(False)
    content, style = _smooth(200, 264), _smooth(80, 80, 1)
    whole = ArbitraryStylizer(ArbitrarySettings(work_size=0), net=net).stylize(content, [style])
    tiled = ArbitraryStylizer(ArbitrarySettings(work_size=0, tile=128, overlap=48), net=net).stylize(
        content, [style])
    assert tiled.shape == whole.shape == content.shape
    diff = (tiled - whole).abs()
    assert diff.max() < 0.02 and diff.mean() < 2e-3, (diff.max().item(), diff.mean().item())


def test_work_size_and_style_scale(untrained):
    content, style = _smooth(300, 400), _smooth(120, 120, 1)
    st = ArbitraryStylizer(ArbitrarySettings(work_size=128), net=untrained)
    assert st.stylize(content, [style]).shape == content.shape
    a = ArbitraryStylizer(ArbitrarySettings(style_scale=0.5), net=untrained).painting_stats(style)
    b = ArbitraryStylizer(ArbitrarySettings(style_scale=2.0), net=untrained).painting_stats(style)
    assert not torch.allclose(a.feat_std, b.feat_std)
    with pytest.raises(Exception):
        ArbitrarySettings(style_scale=0)


def test_blends_and_masks(untrained):
    from huafeng.controls import Controls

    content, s1, s2 = _smooth(96, 96), _smooth(64, 64, 1), _smooth(64, 64, 2) * 0.3
    st = ArbitraryStylizer(ArbitrarySettings(), net=untrained)
    a, b = st.stylize(content, [s1]), st.stylize(content, [s2])
    mixed = st.stylize(content, [s1, s2], weights=[0.5, 0.5])
    assert mixed.shape == content.shape and not torch.allclose(mixed, a) and not torch.allclose(mixed, b)
    mask = torch.zeros(1, 1, 96, 96)
    mask[..., :, :48] = 1
    m = st.stylize(content, [s1, s2], controls=Controls(mask=mask))
    assert torch.allclose(m[..., :, :40], a[..., :, :40], atol=1e-5)
    assert torch.allclose(m[..., :, 56:], b[..., :, 56:], atol=1e-5)


def _tiny_data(tmp_path):
    """Photos: crops of the two bundled photos; paintings: two bundled paintings, small."""
    from huafeng.image import load_image, save_image
    from huafeng.styles import BUNDLED, sample_photo

    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    photos.mkdir()
    paintings.mkdir()
    for name in ("cat", "parrots"):
        img = load_image(sample_photo(name), size=160)
        for i, (y, x) in enumerate([(0, 0), (20, 30), (40, 10)]):
            save_image(img[..., y:y + 96, x:x + 112], photos / f"{name}{i}.png")
    for name in ("starry-night", "great-wave"):
        save_image(load_image(BUNDLED[name].path, size=128), paintings / f"{name}.png")
    return photos, paintings


def _settings(tmp_path, **kw):
    from huafeng.train.paint import PaintTrainSettings

    photos, paintings = _tiny_data(tmp_path) if not (tmp_path / "photos").exists() else \
        (tmp_path / "photos", tmp_path / "paintings")
    base = dict(content_dir=str(photos), style_dirs=(str(paintings),), out=str(tmp_path / "run"), steps=30,
                batch=2, crop=64, style_sizes=(128,), lr=5e-4, eval_photos=2, eval_every=30, checkpoint_every=5,
                eval_photo_size=96, eval_style_size=128, ema=0.5,
                decay_from=None)
    base.update(kw)
    return PaintTrainSettings(**base)


def test_tiny_training_lowers_the_loss(tmp_path):
    from huafeng.train.paint import train_paint

    summary = train_paint(_settings(tmp_path), log=lambda *a, **k: None)
    rows = json.loads((tmp_path / "run" / "log.json").read_text())["log"]
    ev = [r for r in rows if "eval_ms" in r]  # fixed held-out photos x the paintings, at steps 1 and 30
    assert [r["step"] for r in ev] == [1, 30]
    first, last = (r["eval_ms"] + r["eval_gram"] for r in ev)
    assert last < 0.9 * first, (first, last)
    assert summary["steps"] == 30 and "eval_ms" in summary["last_eval"]
    # the shipped file is the weights' moving average, kept in the checkpoint beside the raw weights
    from huafeng.weights import load_file

    model, _, _, _ = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    shipped, _ = load_file(tmp_path / "run" / "paint.safetensors")
    assert set(shipped) and all(torch.equal(shipped[k], model[f"ema.{k}"]) for k in shipped)
    assert any(not torch.equal(shipped[k], model[k]) for k in shipped)
    assert (tmp_path / "run" / "samples.jpg").stat().st_size > 1000
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    # the trained file works through the method
    st = ArbitraryStylizer(ArbitrarySettings(weights=str(tmp_path / "run" / "paint.safetensors")))
    out = st.stylize(_smooth(64, 80), [_smooth(64, 64, 3)])
    assert out.shape == (1, 3, 64, 80) and torch.isfinite(out).all()


def test_feature_term_is_zero_for_the_features_own_picture_and_at_least_one_for_a_flat_one(untrained):
    from huafeng.train.paint import feature_loss

    x = _smooth(64, 64, 1)
    t = untrained.encode(x)
    assert feature_loss(untrained, x, t).item() == pytest.approx(0.0, abs=1e-6)
    # a flat picture's features are constant per channel: no constant is nearer t than t's own mean
    assert feature_loss(untrained, torch.full_like(x, 0.5), t).item() >= 1.0 - 1e-4


def test_tiny_training_with_the_feature_term_logs_it(tmp_path):
    from huafeng.train.paint import train_paint

    train_paint(_settings(tmp_path, steps=4, eval_every=4, feature_weight=1.0, transform="wct"),
                log=lambda *a, **k: None)
    rows = json.loads((tmp_path / "run" / "log.json").read_text())["log"]
    assert all("feat" in r and r["feat"] > 0 for r in rows)
    assert "eval_feat" in rows[-1] and rows[-1]["eval_feat"] > 0


def test_tiny_training_without_the_average_ships_the_raw_weights(tmp_path):
    from huafeng.train.paint import train_paint
    from huafeng.weights import load_file

    train_paint(_settings(tmp_path, steps=3, eval_every=3, ema=0.0), log=lambda *a, **k: None)
    model, _, _, _ = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    shipped, _ = load_file(tmp_path / "run" / "paint.safetensors")
    assert not any(k.startswith("ema.") for k in model)
    assert set(shipped) == set(model) and all(torch.equal(shipped[k], model[k]) for k in shipped)


@pytest.mark.slow
def test_a_training_run_killed_with_sigkill_resumes_with_a_contiguous_log(tmp_path):
    from huafeng.train.paint import train_paint

    s = _settings(tmp_path, steps=10_000, checkpoint_every=3)
    code = ("import torch; torch.set_num_threads(1); from huafeng.train.paint import PaintTrainSettings, train_paint; "
            f"train_paint(PaintTrainSettings(**{s.__dict__!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    ckpt, deadline = tmp_path / "run" / "checkpoint.safetensors", time.time() + 180
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(1.0)  # somewhere between two checkpoints, perhaps while writing one
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "no checkpoint was written before the kill"
    _, done, _, _ = load_checkpoint(ckpt)
    summary = train_paint(_settings(tmp_path, steps=done + 4, checkpoint_every=3), log=lambda *a, **k: None)
    assert summary["steps"] == done + 4
    rows = json.loads((tmp_path / "run" / "log.json").read_text())["log"]
    assert [r["step"] for r in rows] == list(range(1, done + 5))


def test_shipped_network_loads_and_paints_a_photo_visibly():
    import huafeng
    from huafeng.image import load_image
    from huafeng.metrics import gram_distance, ssim
    from huafeng.styles import BUNDLED, sample_photo

    content = load_image(sample_photo("parrots"), size=256)
    style = load_image(BUNDLED["starry-night"].path, size=512)
    out = huafeng.get_stylizer("arbitrary").stylize(content, [style])
    assert out.shape == content.shape and torch.isfinite(out).all()
    assert gram_distance(out, style, "vgg16") < 0.5 * gram_distance(content, style, "vgg16")
    assert ssim(out, content) > 0.2  # the photo is still there
    for p in huafeng.get_stylizer("arbitrary").net.decoder.parameters():
        assert not p.requires_grad  # loaded read-only


def test_lattice_pattern_finds_a_grid_and_ignores_noise():
    from huafeng.train.paint import lattice_pattern

    grid = torch.zeros(1, 3, 64, 64)
    grid[..., ::8, :] = 1
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert lattice_pattern(grid).pow(2).mean() > 50 * lattice_pattern(noise).pow(2).mean()


def test_a_bad_painting_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "painting.jpg"
    bad.write_bytes(b"not a picture at all")
    from huafeng.styles import sample_photo

    r = subprocess.run([sys.executable, "-m", "huafeng.cli", "stylize", str(sample_photo("parrots")), "--style", str(bad),
                        "--method", "arbitrary", "-o", str(tmp_path / "out.png")], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "painting.jpg" in r.stderr
    assert not (tmp_path / "out.png").exists()

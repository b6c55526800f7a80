"""Photoreal transfer (multi-level WCT with reconstruction decoders): transform maths, controls, training."""
import json
import random

import pytest
import torch

from huafeng import controls as ctl
from huafeng.methods.photoreal import (LEVELS, Decoder, PhotorealSettings, PhotorealStylizer, blend_stats,
                                       feature_stats, wct)
from huafeng.train.common import ImageBank, load_checkpoint


def test_wct_output_has_the_style_statistics():
    torch.manual_seed(0)
    content = torch.randn(1, 8, 12, 12) * 2 + 1
    style = (torch.randn(1, 8, 10, 10) @ torch.randn(10, 10)) * 0.5 - 3  # correlated channels
    out = wct(content, feature_stats(style))
    mu_o, cov_o = feature_stats(out)
    mu_s, cov_s = feature_stats(style)
    assert torch.allclose(mu_o, mu_s, atol=1e-4)
    assert torch.allclose(cov_o, cov_s, atol=1e-3 * cov_s.abs().max().item())


def test_wct_alpha_zero_is_identity_and_blend_of_one_style_is_that_style():
    x = torch.randn(1, 4, 6, 6)
    st = feature_stats(torch.randn(1, 4, 6, 6))
    assert torch.allclose(wct(x, st, alpha=0.0), x)
    mu, cov = blend_stats([st, st], [0.5, 0.5])
    assert torch.allclose(mu, st[0]) and torch.allclose(cov, st[1])


def test_wct_with_global_content_stats_matches_untiled():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8, 8)
    st = feature_stats(torch.randn(1, 4, 8, 8))
    whole = wct(x, st)
    cs = feature_stats(x)
    left = wct(x[..., :4], st, content_stats=cs)  # a tile, transformed with the whole picture's statistics
    assert torch.allclose(left, whole[..., :4], atol=1e-5)


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return {lv: Decoder(lv).eval() for lv in LEVELS}


def test_decoders_invert_the_encoder_shapes(untrained):
    from huafeng.features import FeatureExtractor

    fe = FeatureExtractor("lite0", list(LEVELS.values()))
    x = torch.rand(1, 3, 45, 61)
    feats = fe(x)
    for lv, d in untrained.items():
        y = d(feats[LEVELS[lv]], (45, 61))
        assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1


def test_strength_zero_returns_the_content_reconstruction(untrained):
    st = PhotorealStylizer(PhotorealSettings(size=64, levels=("L2",), margin=0), decoders=untrained)
    content, style = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 40, 40)
    out = st.stylize(content, [style], controls=ctl.Controls(strength=0.0))
    with torch.no_grad():
        rec = untrained["L2"](st.encoder(content, ["block1_expand"])["block1_expand"], (48, 64))
    assert torch.allclose(out, rec, atol=1e-5)


def test_detail_layer_restores_the_photo_resolution():
    from huafeng.image import load_image
    from huafeng.methods.photoreal import restore_detail
    from huafeng.metrics import ssim
    from huafeng.styles import sample_photo

    photo = load_image(sample_photo("parrots"), size=512)
    small = torch.nn.functional.interpolate(photo, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 1)
    blurry, sharp = restore_detail(small, photo, detail=0.0), restore_detail(small, photo, detail=1.0)
    assert blurry.shape == sharp.shape == photo.shape
    assert ssim(sharp, photo) > ssim(blurry, photo) + 0.1
    # the colours stay the small picture's: the mean colour is unchanged by the detail layer
    assert torch.allclose(sharp.mean((2, 3)), blurry.mean((2, 3)), atol=0.01)


def test_work_size_gives_a_full_size_result_and_margin_keeps_the_size(untrained):
    content, style = torch.rand(1, 3, 150, 200), torch.rand(1, 3, 40, 40)
    for ws, margin in [(96, 16), (0, 0), (0, 16)]:
        st = PhotorealStylizer(PhotorealSettings(levels=("L2",), work_size=ws, margin=margin), decoders=untrained)
        out = st.stylize(content, [style])
        assert out.shape == content.shape and torch.isfinite(out).all()


def test_image_bank_crops(tmp_path):
    from huafeng.image import save_image

    for i in range(3):
        save_image(torch.rand(1, 3, 40 + i * 10, 70), tmp_path / f"{i}.png")
    (tmp_path / "broken.jpg").write_text("no")
    bank = ImageBank(sorted(tmp_path.iterdir()), max_side=64)
    assert len(bank) == 3 and len(bank.skipped) == 1
    crops = bank.crops(5, 32, random.Random(0), jitter=0.2)
    assert crops.shape == (5, 3, 32, 32) and crops.min() >= 0 and crops.max() <= 1


def test_tiny_training_lowers_the_loss_and_resumes(tmp_path):
    from huafeng.image import save_image
    from huafeng.train.photoreal import PhotorealTrainSettings, train_photoreal

    torch.manual_seed(0)
    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    photos.mkdir()
    paintings.mkdir()
    for i in range(6):  # smooth colour gradients: learnable in a few steps
        yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
        img = torch.stack([yy, xx, (yy + xx) / 2 * (i / 5)])[None]
        save_image(img, photos / f"p{i}.png")
    save_image(torch.rand(1, 3, 64, 64), paintings / "s.png")
    s = PhotorealTrainSettings(content_dir=str(photos), style_dir=str(paintings), out=str(tmp_path / "run"),
                               levels=("L1",), steps=30, batch=2, crop=48, lr=3e-3, eval_photos=2,
                               eval_every=30, checkpoint_every=10)
    summary = train_photoreal(s)
    rows = json.loads((tmp_path / "run" / "log.json").read_text())["log"]
    first, last = sum(r["L1_pix"] for r in rows[:5]) / 5, sum(r["L1_pix"] for r in rows[-5:]) / 5
    assert last < 0.7 * first
    assert summary["last_eval"]["L1_psnr"] > rows[0]["L1_psnr"]
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    # the checkpoint round-trips, and a rerun with more steps resumes from step 30
    model, step, config, extra = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert step == 30 and config["steps"] == 30 and len(extra["log"]) == 30
    resumed = train_photoreal(PhotorealTrainSettings(**{**config, "steps": 35, "levels": ("L1",),
                                                        "held_out_styles": ()}))
    assert resumed["steps"] == 35
    rows = json.loads((tmp_path / "run" / "log.json").read_text())["log"]
    assert [r["step"] for r in rows] == list(range(1, 36))


def test_training_settings_refuse_empty_or_unknown_levels(tmp_path):
    from huafeng.errors import SettingsError
    from huafeng.train.photoreal import PhotorealTrainSettings

    for levels in ((), ("L9",)):  # () passed, then training failed on an assert
        with pytest.raises(SettingsError, match="levels must be one or more of") as e:
            PhotorealTrainSettings(content_dir=str(tmp_path), style_dir=str(tmp_path), levels=levels)
        assert "\n" not in str(e.value)
    assert PhotorealTrainSettings(content_dir=str(tmp_path), style_dir=str(tmp_path), levels=("L1",)).levels == ("L1",)


def test_tiles_reassemble_the_untiled_result(untrained):
    torch.manual_seed(0)
    content = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 18), size=(120, 180), mode="bicubic").clamp(0, 1)
    style = torch.rand(1, 3, 64, 64)
    levels = ("L4", "L2")
    whole = PhotorealStylizer(PhotorealSettings(levels=levels), decoders=untrained).stylize(content, [style])
    tiled = PhotorealStylizer(PhotorealSettings(levels=levels, tile=64, overlap=24), decoders=untrained).stylize(
        content, [style])
    assert tiled.shape == whole.shape
    diff = (tiled - whole).abs()
    assert diff.mean() < 0.01 and diff.max() < 0.08, (diff.mean().item(), diff.max().item())


def test_shipped_decoders_load_and_stylize():
    import huafeng
    from huafeng.image import load_image
    from huafeng.metrics import gram_distance
    from huafeng.styles import BUNDLED, sample_photo

    content = load_image(sample_photo("parrots"), size=160)
    style = load_image(BUNDLED["starry-night"].path, size=256)
    out = huafeng.get_stylizer("photoreal").stylize(content, [style])
    assert out.shape == content.shape and torch.isfinite(out).all()
    assert gram_distance(out, style) < 0.5 * gram_distance(content, style)  # clearly moved toward the painting

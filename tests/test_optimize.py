"""The optimisation method on tiny pictures: it lowers the style loss, and its controls work."""
import pytest
import torch

import huafeng
from huafeng import controls as ctl
from huafeng.errors import SettingsError
from huafeng.features import FeatureExtractor
from huafeng.image import load_image
from huafeng.losses import gram_matrix, style_loss
from huafeng.methods.optimize import LAYERS, OptimizeSettings, OptimizeStylizer
from huafeng.styles import BUNDLED, sample_photo


@pytest.fixture(scope="module")
def pics():
    return load_image(sample_photo("parrots"), size=64), load_image(BUNDLED["starry-night"].path, size=64)


def style_distance(x, style, backbone="lite0"):
    names = LAYERS[backbone]["style"]
    fe = FeatureExtractor(backbone, names)
    with torch.no_grad():
        fx, fs = fe(x), fe(style)
    return sum(style_loss(gram_matrix(fx[n]), gram_matrix(fs[n]), normalize=True).item() for n in names)


@pytest.mark.parametrize("backbone", ["lite0", "vgg16"])
def test_optimisation_moves_the_picture_toward_the_style(pics, backbone):
    content, style = pics
    out = OptimizeStylizer(OptimizeSettings(backbone=backbone, size=64, steps=15)).stylize(content, [style])
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1
    assert style_distance(out, style, backbone) < 0.5 * style_distance(content, style, backbone)


def test_seed_makes_results_repeatable(pics):
    content, style = pics
    run = lambda seed: OptimizeStylizer(OptimizeSettings(size=48, steps=5, seed=seed)).stylize(content, [style])  # noqa
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_progress_reaches_the_total(pics):
    content, style = pics
    seen = []
    OptimizeStylizer(OptimizeSettings(size=128, min_scale=64, steps=6)).stylize(content, [style], progress=seen.append)
    assert [p.step for p in seen] == sorted(p.step for p in seen)  # never goes back
    assert seen[-1].step == seen[-1].total == 6 + 6  # two scales: 6, then half of it floored at min(6, 10)
    assert {p.stage for p in seen} == {"scale 1/2 (64 px)", "scale 2/2 (128 px)"}


def test_multi_scale_pyramid():
    assert OptimizeSettings(size=512).scales() == [256, 512]
    assert OptimizeSettings(size=1500).scales() == [256, 512, 1024, 1500]
    assert OptimizeSettings(size=200).scales() == [200]


def test_blend_weights_pull_toward_the_heavier_style(pics):
    content, starry = pics
    scream = load_image(BUNDLED["the-scream"].path, size=64)
    st = OptimizeStylizer(OptimizeSettings(size=64, steps=15))
    mostly_starry = st.stylize(content, [starry, scream], [0.9, 0.1])
    mostly_scream = st.stylize(content, [starry, scream], [0.1, 0.9])
    assert style_distance(mostly_starry, starry) < style_distance(mostly_scream, starry)
    assert style_distance(mostly_scream, scream) < style_distance(mostly_starry, scream)


def test_strength_zero_gives_back_the_content_and_mask_keeps_regions(pics):
    content, style = pics
    st = OptimizeStylizer(OptimizeSettings(size=64, steps=10))
    assert torch.allclose(st.stylize(content, [style], controls=ctl.Controls(strength=0.0)), content, atol=1e-6)
    mask = torch.zeros(1, 1, *content.shape[-2:])
    mask[..., :, 32:] = 1
    out = st.stylize(content, [style], controls=ctl.Controls(mask=mask))
    assert torch.allclose(out[..., :, :31], content[..., :, :31], atol=1e-6)
    assert (out[..., :, 34:] - content[..., :, 34:]).abs().mean() > 0.02


def test_preserve_color_keeps_the_photo_chroma(pics):
    content, style = pics
    st = OptimizeStylizer(OptimizeSettings(size=64, steps=5))
    out = st.stylize(content, [style], controls=ctl.Controls(preserve_color="luminance"))
    uv = lambda x: ctl.rgb_to_yuv(x)[:, 1:]  # noqa: E731
    assert (uv(out) - uv(content)).abs().mean() < 0.02
    hist = st.stylize(content, [style], controls=ctl.Controls(preserve_color="histogram"))
    plain = st.stylize(content, [style])
    # recolouring the style to the photo keeps the photo's mean colour closer than plain transfer
    assert (hist.mean((2, 3)) - content.mean((2, 3))).abs().sum() < (plain.mean((2, 3)) - content.mean((2, 3))).abs().sum()


def test_public_api_accepts_paths_pil_and_tensors(pics, tmp_path):
    content, style = pics
    pil = huafeng.stylize(content, "starry-night", method="optimize", size=32, steps=2)
    assert max(pil.size) == 32 and pil.mode == "RGB"
    pil2 = huafeng.stylize(str(sample_photo("cat")), [(huafeng.load_image(BUNDLED["udnie"].path), 1.0)],
                           method="optimize", size=32, steps=2, preserve_color=True, strength=0.5)
    assert max(pil2.size) == 32
    with pytest.raises(SettingsError, match="no setting"):
        huafeng.stylize(content, "udnie", size=32, colour=3)


def test_settings_validation():
    for bad in [dict(backbone="x"), dict(optimizer="sgd"), dict(init="zeros"), dict(size=4), dict(steps=0)]:
        with pytest.raises(SettingsError):
            OptimizeSettings(**bad)

"""Metrics: SSIM against scikit-image, feature distances on tiny pictures, colour histograms by
hand, warping by integer shifts, and the timer/memory meter."""
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import single_thread
from huafeng import metrics as M
from huafeng.errors import SettingsError
from huafeng.image import load_image
from huafeng.styles import BUNDLED, sample_photo


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def noisy(x, amp, seed=1):
    return (x + amp * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))).clamp(0, 1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_the_file():
    with single_thread():  # tiny tensors: 42 s vs 4 s for this file on a busy CPU
        yield


@pytest.fixture(scope="module")
def photo():
    return load_image(sample_photo("parrots"), size=64)


@pytest.fixture(scope="module")
def starry():
    return load_image(BUNDLED["starry-night"].path, size=48)


@pytest.fixture(scope="module")
def stripes():
    x = torch.arange(64).float()
    s = ((x // 2) % 2).view(1, 1, 1, 64).expand(1, 3, 64, 64).clone()  # 2-px black/white stripes
    s[:, 1] = 1 - s[:, 1]
    return s


# --- SSIM ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def skssim():
    return pytest.importorskip("skimage.metrics").structural_similarity


def pair(h, w, c=1, seed=0):
    a = rand(1, c, h, w, seed=seed)
    b = (0.6 * a + 0.4 * rand(1, c, h, w, seed=seed + 1)).clamp(0, 1)
    return a, b


def test_ssim_of_an_image_with_itself_is_one(photo):
    assert M.ssim(photo, photo) == pytest.approx(1.0, abs=1e-12)
    assert M.ssim(photo, photo, luminance=False) == pytest.approx(1.0, abs=1e-12)
    assert M.edge_ssim(photo, photo) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("h,w,win,rng", [(32, 40, 7, 1.0), (17, 23, 11, 1.0), (20, 20, 7, 2.0), (9, 12, 3, 1.0)])
def test_ssim_matches_skimage_on_grey(skssim, h, w, win, rng):
    a, b = pair(h, w)
    ref = skssim(a[0, 0].double().numpy(), b[0, 0].double().numpy(), data_range=rng, win_size=win)
    assert M.ssim(a, b, data_range=rng, win_size=win) == pytest.approx(ref, abs=1e-5)
    # a grey picture as RGB: its luma is itself
    assert M.ssim(a.expand(1, 3, h, w), b.expand(1, 3, h, w), data_range=rng, win_size=win) == pytest.approx(ref, abs=1e-5)


def test_ssim_matches_skimage_on_rgb(skssim):
    a, b = pair(30, 26, c=3, seed=4)
    an, bn = a[0].double().numpy(), b[0].double().numpy()  # (3, H, W)
    ref = skssim(an, bn, data_range=1.0, channel_axis=0)
    assert ref == pytest.approx(skssim(an.transpose(1, 2, 0), bn.transpose(1, 2, 0), data_range=1.0, channel_axis=-1))
    assert M.ssim(a, b, luminance=False) == pytest.approx(ref, abs=1e-5)
    wts = np.array([0.299, 0.587, 0.114]).reshape(3, 1, 1)
    ref_y = skssim((an * wts).sum(0), (bn * wts).sum(0), data_range=1.0)
    assert M.ssim(a, b) == pytest.approx(ref_y, abs=1e-5)
    assert abs(ref_y - ref) > 1e-3  # the two modes really differ here


def test_ssim_small_images_shrink_the_window(skssim):
    a, b = pair(5, 9, seed=7)
    ref = skssim(a[0, 0].double().numpy(), b[0, 0].double().numpy(), data_range=1.0, win_size=5)
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-5)
    a, b = pair(4, 6, seed=8)  # largest odd window <= 4 is 3
    ref = skssim(a[0, 0].double().numpy(), b[0, 0].double().numpy(), data_range=1.0, win_size=3)
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-5)


def test_ssim_of_one_pixel_and_thin_strips():
    x, y = torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.25)
    assert M.ssim(x, x) == 1.0
    c1 = 0.01 ** 2
    assert M.ssim(x, y) == pytest.approx((2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1), rel=1e-9)
    s = rand(1, 3, 2, 50)
    assert M.ssim(s, s) == pytest.approx(1.0) and M.ssim(s, 1 - s) < 0.5


def test_ssim_falls_with_noise_and_checks_inputs(photo):
    values = [M.ssim(photo, noisy(photo, amp)) for amp in (0.02, 0.05, 0.1, 0.2)]
    assert all(u > v for u, v in zip(values, values[1:])), values
    edges = [M.edge_ssim(photo, noisy(photo, amp)) for amp in (0.02, 0.1)]
    assert 1.0 > edges[0] > edges[1]
    assert M.edge_ssim(photo, torch.full_like(photo, 0.5)) < 0.1  # every edge lost
    with pytest.raises(SettingsError):
        M.ssim(photo, photo, win_size=6)
    with pytest.raises(ValueError):
        M.ssim(photo[0], photo)


def test_ssim_resizes_the_second_image(photo):
    big = F.interpolate(photo, scale_factor=2, mode="bilinear", align_corners=False)
    assert 0.8 < M.ssim(photo, big) < 1.0


# --- feature distances ---------------------------------------------------------------------------

def test_style_distances_zero_for_identical_and_grow_with_noise(photo, starry, stripes):
    for fn in (M.gram_distance, M.mean_std_distance):
        assert fn(photo, photo) == pytest.approx(0.0, abs=1e-10)
        d = [fn(noisy(photo, amp), photo) for amp in (0.05, 0.15, 0.4)]
        assert 0 < d[0] < d[1] < d[2], (fn.__name__, d)
        assert fn(photo, stripes) > 5 * fn(photo, noisy(photo, 0.03))
    # a different size needs no resizing (Gram matrices are C x C)
    assert M.gram_distance(photo, starry) > M.gram_distance(photo, noisy(photo, 0.03))


def test_gram_distance_on_vgg16(photo, stripes):
    assert M.gram_distance(photo, photo, backbone="vgg16") == pytest.approx(0.0, abs=1e-10)
    mild = M.gram_distance(photo, noisy(photo, 0.03), backbone="vgg16")
    assert 0 < mild < M.gram_distance(photo, stripes, backbone="vgg16")


@pytest.mark.parametrize("backbone", ["lite0", "vgg16"])
def test_content_distance(photo, starry, backbone):
    assert M.content_distance(photo, photo, backbone) == pytest.approx(0.0, abs=1e-10)
    mild = M.content_distance(noisy(photo, 0.03), photo, backbone)
    assert 0 < mild < M.content_distance(starry, photo, backbone)  # starry is resized to the photo


def test_feature_metrics_reuse_one_extractor_and_check_the_backbone(photo):
    M.content_distance(photo, photo)
    before = M._extractor.cache_info()
    M.content_distance(photo, photo)
    after = M._extractor.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 2
    with pytest.raises(SettingsError):
        M.gram_distance(photo, photo, backbone="resnet")


def test_perceptual_distance_and_diversity(photo, starry):
    assert M.perceptual_distance(photo, photo) == pytest.approx(0.0, abs=1e-10)
    d = [M.perceptual_distance(photo, noisy(photo, amp)) for amp in (0.03, 0.1, 0.3)]
    assert 0 < d[0] < d[1] < d[2] <= 2.0, d
    assert M.diversity([photo]) == 0.0 and M.diversity([]) == 0.0
    assert M.diversity([photo, photo]) == pytest.approx(0.0, abs=1e-10)
    assert M.diversity([photo, starry]) == pytest.approx(M.perceptual_distance(photo, starry), rel=1e-6)
    x, y, z = photo, noisy(photo, 0.1), starry
    three = (M.perceptual_distance(x, y) + M.perceptual_distance(x, z) + M.perceptual_distance(y, z)) / 3
    assert M.diversity([x, y, z]) == pytest.approx(three, rel=1e-6)


# --- colour --------------------------------------------------------------------------------------

def test_color_distance(photo):
    assert M.color_distance(photo, photo) == pytest.approx(0.0, abs=1e-12)
    flat = photo.flatten(2)
    perm = flat[..., torch.randperm(flat.shape[-1], generator=torch.Generator().manual_seed(0))]
    assert M.color_distance(photo, perm.view_as(photo)) == pytest.approx(0.0, abs=1e-6)
    red, blue = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    red[:, 0], blue[:, 2] = 1.0, 1.0
    assert M.color_distance(red, blue) == 1.0
    half = red.clone()
    half[..., 2:] = blue[..., 2:]  # half red, half blue; vs all red: 1 - (min(.5,1) + min(.5,0))
    assert M.color_distance(half, red) == pytest.approx(0.5)
    # a quarter of the pixels moved to another bin, compared at another size: 1 - 0.75
    q = torch.full((1, 3, 2, 2), 0.3)
    q[..., 0, 0] = 0.9
    assert M.color_distance(q, torch.full((1, 3, 5, 5), 0.3)) == pytest.approx(0.25)
    assert M.color_distance(q, torch.full((1, 3, 5, 5), 0.3), bins=1) == 0.0  # one bin holds all


# --- warping -------------------------------------------------------------------------------------

def test_warp_identity_and_integer_shift():
    img = rand(2, 3, 12, 16, seed=3)
    zero = torch.zeros(2, 2, 12, 16)
    assert torch.allclose(M.warp(img, zero), img, atol=1e-6)
    flow = zero.clone()
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # out(y, x) = img(y - 1, x + 2)
    out, ref = M.warp(img, flow), torch.roll(img, shifts=(1, -2), dims=(2, 3))
    assert torch.allclose(out[..., 1:, :-2], ref[..., 1:, :-2], atol=1e-5)
    assert torch.allclose(out[..., 0, :-2], img[..., 0, 2:], atol=1e-5)  # border padding above the top
    half = zero.clone()
    half[:, 0] = 0.5
    assert torch.allclose(M.warp(img, half)[..., :-1], (img[..., :-1] + img[..., 1:]) / 2, atol=1e-5)


def test_warping_error(photo):
    prev = photo
    cur = torch.roll(prev, shifts=(2, 3), dims=(2, 3))  # content moved down 2, right 3
    h, w = prev.shape[-2:]
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0], flow[:, 1] = -3.0, -2.0  # backward flow t -> t-1
    mask = torch.zeros(1, 1, h, w)
    mask[..., 2:, 3:] = 1.0  # pixels whose source lies inside frame t-1
    right = M.warping_error(prev, cur, flow, mask)
    assert right < 1e-10
    assert M.warping_error(prev, cur, torch.zeros_like(flow), mask) > 1e3 * max(right, 1e-12)
    assert M.warping_error(prev, cur, torch.zeros_like(flow)) > 0.01
    assert M.warping_error(prev, prev, torch.zeros_like(flow)) == pytest.approx(0.0, abs=1e-10)


# --- time and memory -----------------------------------------------------------------------------

def test_measure_time_and_peak_memory():
    with M.Measure() as m:
        time.sleep(0.05)
    assert 0.05 <= m.seconds < 1.0
    with M.Measure() as m:
        x = torch.ones(50_000_000)  # 200 MB
        time.sleep(0.05)
        del x
    assert m.peak_rss_bytes >= 0.8 * 200e6, m.peak_rss_bytes
    assert m.peak_rss_total_bytes >= m.peak_rss_bytes
    assert m._thread is None  # the sampler stopped

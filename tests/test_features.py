"""The shipped backbones: shapes, named layers, and proof that the weights are the right ones."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from huafeng.errors import SettingsError
from huafeng.features import FeatureExtractor, get_backbone
from huafeng.image import load_image
from huafeng.styles import sample_photo

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def center_crop_224(img: torch.Tensor) -> torch.Tensor:
    """The classic ImageNet evaluation crop: short side 256 (bicubic), centre 224."""
    h, w = img.shape[-2:]
    s = 256 / min(h, w)
    img = F.interpolate(img, size=(round(h * s), round(w * s)), mode="bicubic", antialias=True).clamp(0, 1)
    h, w = img.shape[-2:]
    t, l = (h - 224) // 2, (w - 224) // 2
    return img[..., t:t + 224, l:l + 224]


def top5(path, backbone="lite0") -> list[int]:
    fe = FeatureExtractor(backbone, ["logits"])
    with torch.no_grad():
        logits = fe(center_crop_224(load_image(path)))["logits"]
    return logits.topk(5).indices[0].tolist()


CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize("backbone", ["lite0", "lite0-aa"])
def test_lite0_classifies_the_bundled_cat(backbone):
    assert top5(sample_photo("cat"), backbone)[0] in CAT_CLASSES


def _nyquist_share(g: torch.Tensor) -> float:
    """The share of a gradient's power in the 2-px checkerboard corner of its spectrum (|f| > 0.35/px)."""
    p = torch.fft.fftshift(torch.fft.fft2(g[0].mean(0)).abs().pow(2))
    n = p.shape[-1]
    f = (torch.arange(n) - n // 2) / n
    far = (f.abs()[:, None] > 0.35) & (f.abs()[None] > 0.35)
    return float(p[far].sum() / p.sum())


def test_antialiased_lite0_gives_the_optimizer_no_checkerboard_to_follow():
    """The optimize method's speckle came from Lite0's strided depthwise layers: the loss gradient on the
    picture is strong at the 2-px checkerboard frequency. Blurred before subsampling, it is not."""
    torch.manual_seed(0)
    x = F.avg_pool2d(torch.rand(1, 3, 256, 256), 5, 1, 2)  # a smooth picture: no checkerboard of its own
    target = torch.rand(1, 3, 256, 256)
    shares = {}
    for backbone in ("lite0", "lite0-aa"):
        fe = FeatureExtractor(backbone, ["stem", "block1_expand", "block3_expand"])
        with torch.no_grad():
            want = fe(target)
        xx = x.clone().requires_grad_(True)
        got = fe(xx)
        sum(((got[k].mean((2, 3)) - want[k].mean((2, 3))) ** 2).sum() + ((got[k] ** 2).mean() - (want[k] ** 2).mean()) ** 2
            for k in got).backward()
        shares[backbone] = _nyquist_share(xx.grad)
    assert shares["lite0-aa"] < 0.05 * shares["lite0"], shares


@pytest.mark.skipif(not (SHARED / "content/photos/coffee.png").exists(), reason="shared data not present")
def test_lite0_classifies_coffee_as_cup_or_espresso():
    assert top5(SHARED / "content/photos/coffee.png")[0] in {967, 968}  # espresso, cup


def test_lite0_layer_shapes_and_strides():
    fe = FeatureExtractor("lite0", ["stem", "block1_expand", "block3_expand", "block5_expand", "block8_expand", "head"])
    out = fe(torch.rand(2, 3, 64, 96))
    expected = {"stem": (32, 2), "block1_expand": (96, 2), "block3_expand": (144, 4),
                "block5_expand": (240, 8), "block8_expand": (480, 16), "head": (1280, 32)}
    for name, (c, stride) in expected.items():
        assert out[name].shape == (2, c, 64 // stride, 96 // stride), name
        assert out[name].min() >= 0 and out[name].max() <= 6  # post-ReLU6


def test_vgg16_layer_shapes():
    fe = FeatureExtractor("vgg16", ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])
    out = fe(torch.rand(1, 3, 48, 64))
    for (name, c), stride in zip([("relu1_1", 64), ("relu2_1", 128), ("relu3_1", 256), ("relu4_1", 512),
                                   ("relu5_1", 512)], [1, 2, 4, 8, 16]):
        assert out[name].shape == (1, c, 48 // stride, 64 // stride)


def test_odd_sizes_and_tiny_inputs_work():
    for backbone, layer in [("lite0", "block8_expand"), ("vgg16", "relu5_1")]:
        out = FeatureExtractor(backbone, [layer])(torch.rand(1, 3, 37, 21))
        assert out[layer].shape[-2:] == (3, 2)  # ceil(37/16), ceil(21/16): TF-SAME / ceil-mode pooling


def test_vgg16_with_hed_side_outputs_reproduces_an_edge_map():
    net = get_backbone("vgg16")
    x = torch.zeros(1, 3, 128, 128)
    x[..., 32:96, 32:96] = 1.0  # a white square on black
    with torch.no_grad():
        e = net.hed_edges(x)[0, 0]
    border = torch.cat([e[31:34, 40:88].flatten(), e[94:97, 40:88].flatten(), e[40:88, 31:34].flatten()])
    assert border.mean() > 0.8           # the square's outline is an edge
    assert e[48:80, 48:80].max() < 0.05  # its inside is not
    assert e[2:20, 2:20].max() < 0.05    # nor is the flat background


def test_extractor_stops_early_and_returns_only_what_was_asked():
    fe = FeatureExtractor("lite0", ["stem"])
    out = fe(torch.rand(1, 3, 32, 32))
    assert list(out) == ["stem"]


def test_no_gradients_reach_the_weights_but_reach_the_input():
    fe = FeatureExtractor("lite0", ["block3_expand"])
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    fe(x)["block3_expand"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not b.requires_grad for b in fe.net.buffers())


def test_unknown_names_are_one_line_errors():
    with pytest.raises(SettingsError, match="unknown backbone 'resnet'"):
        FeatureExtractor("resnet", ["x"])
    with pytest.raises(SettingsError) as e:
        FeatureExtractor("vgg16", ["relu9_9"])
    assert "\n" not in str(e.value)


def test_shipped_weights_are_checked_against_their_sha256(tmp_path):
    from huafeng import weights
    from huafeng.errors import WeightsError

    p = weights.shipped_path("lite0")
    digest = dict(line.split()[::-1] for line in (weights.WEIGHTS_DIR / "SHA256SUMS").read_text().splitlines())
    assert weights.sha256_of(p) == digest["lite0.safetensors"]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(WeightsError):
        weights.load_file(bad)
    with pytest.raises(WeightsError, match="sha256"):
        weights.load_file(p, sha256="0" * 64)


def test_lite0_classifies_the_bundled_parrots_as_macaw():
    assert top5(sample_photo("parrots"))[0] == 88  # macaw

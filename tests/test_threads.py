"""Concurrent calls never share mutable state: 4 threads run the same stylizer objects at once, with
different photos, sizes (tiled ones included), strengths and methods, and each result equals the
same call made alone."""
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import huafeng
from huafeng import controls as ctl
from huafeng.image import read_image
from huafeng.methods import get_stylizer
from huafeng.methods.fast import NetConfig, TransformerNet, gallery, net_metadata
from huafeng.methods.gan import gallery as gan_gallery
from huafeng.weights import save_file

ASSETS = Path(huafeng.__file__).parent / "assets"
THREADS = 4


def _conditioned_net(path: Path) -> Path:
    """A random strength-conditioned network with a palette (none is shipped): its strength and its
    tiles' statistics are both per-call state."""
    cfg = NetConfig(palette=True, conditioned=True)
    torch.manual_seed(5)
    net = TransformerNet(cfg)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    save_file(net.state_dict(), path, net_metadata(cfg, name=path.stem))
    return path


def _photo(name: str, size: tuple[int, int]) -> torch.Tensor:
    x = read_image(ASSETS / "photos" / name)[0]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """(stylizer, photo, styles, strength): every stylizer is used by several jobs of other sizes."""
    fast_style = "starry-night" if "starry-night" in gallery() else next(iter(gallery()), None)
    if fast_style is None or not gan_gallery():
        pytest.skip("needs a shipped per-style network and a shipped GAN model")
    cond = str(_conditioned_net(tmp_path_factory.mktemp("threads") / "cond.safetensors"))
    small, mid, tall = _photo("cat.jpg", (96, 128)), _photo("parrots.jpg", (150, 200)), _photo("cat.jpg", (200, 152))
    painting = F.interpolate(read_image(ASSETS / "styles" / "udnie.jpg")[0], size=(120, 160), mode="bilinear",
                             align_corners=False, antialias=True)
    fast = get_stylizer("fast", tile=64, overlap=16)  # tiled above 64 px: the norms' statistics per call
    gan = get_stylizer("gan", model=next(iter(gan_gallery())), tile=64, overlap=16)
    photoreal = get_stylizer("photoreal", work_size=0, tile=96, overlap=16)
    arbitrary = get_stylizer("arbitrary", work_size=0, tile=128, overlap=32)
    return [
        (fast, mid, [fast_style], 1.0), (fast, small, [fast_style], 0.6), (fast, tall, [cond], 0.3),
        (fast, mid, [cond], 0.9), (fast, small, [cond], 1.0),
        (gan, mid, None, 1.0), (gan, small, None, 0.5),
        (photoreal, small, [painting], 0.7), (photoreal, mid, [painting], 1.0),
        (arbitrary, tall, [painting], 1.0), (arbitrary, small, [painting], 0.8),
    ]


def _run(job) -> torch.Tensor:
    stylizer, photo, styles, strength = job
    return stylizer.stylize(photo, styles, controls=ctl.Controls(strength=strength))


def test_concurrent_calls_equal_their_solo_results(jobs):
    solo = [_run(j) for j in jobs]
    results: dict[tuple[int, int], torch.Tensor] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(k: int) -> None:
        try:
            start.wait()
            shift = k * len(jobs) // THREADS  # each thread in its own order, so different calls overlap
            order = list(range(shift, len(jobs))) + list(range(shift))
            for j in order[::-1] if k % 2 else order:
                results[k, j] = _run(jobs[j])
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == THREADS * len(jobs)
    worst = max((results[key] - solo[key[1]]).abs().max().item() for key in results)
    assert worst < 1e-4, f"a concurrent result differs from its solo result by {worst:.4f}"


def test_no_call_changes_a_process_wide_setting(jobs, monkeypatch):
    """Thread counts and flush-denormal belong to the process: another call may be running."""
    changed = []
    for name in ("set_num_threads", "set_num_interop_threads", "set_flush_denormal"):
        monkeypatch.setattr(torch, name, lambda *a, _n=name: changed.append(_n))
    for job in jobs:
        _run(job)
    assert not changed, f"a call changed {', '.join(sorted(set(changed)))}"

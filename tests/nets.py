"""Randomly initialised (seeded) networks saved like trained ones: for export and backend tests that
must not depend on which trained networks happen to be shipped."""
from pathlib import Path

import torch

from huafeng.weights import save_file


def _perturb(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Make every layer matter: random norm scales and shifts, a non-zero head (the fast network
    starts as the identity), so an export that drops or freezes a layer shows in the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif name.startswith("head"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return net.eval()


def random_fast_net(path: Path, seed: int = 0, card: str | None = None) -> Path:
    from huafeng.methods.fast import NetConfig, TransformerNet, net_metadata

    torch.manual_seed(seed)
    net = _perturb(TransformerNet(NetConfig()), seed)
    save_file(net.state_dict(), path, net_metadata(NetConfig(), name=path.stem, note="random test network"))
    if card is not None:
        path.with_suffix(".md").write_text(card)
    return path


def random_gan(path: Path, seed: int = 0) -> Path:
    from huafeng.methods.gan import Generator, GeneratorConfig, generator_metadata

    torch.manual_seed(seed)
    cfg = GeneratorConfig(channels=(8, 16, 16), res_blocks=1)
    net = _perturb(Generator(cfg), seed)
    save_file(net.state_dict(), path, generator_metadata(cfg, name=path.stem))
    return path

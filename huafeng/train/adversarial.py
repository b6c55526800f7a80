"""An adversarial term for per-style networks: ``huafeng train style --adversarial [WEIGHT]``.

A 70×70 PatchGAN (the CycleGAN discriminator, :class:`~huafeng.methods.gan.PatchDiscriminator`)
learns to tell random crops of the painting from the network's outputs; the network then minimises

    L = L_perceptual + w · L_lsgan(D(T(x)), 1),      D minimising ½[L_lsgan(D(s_crop), 1) + L_lsgan(D(T(x)), 0)]

so that, beyond matching Gram statistics, its patches look like the painting's (sharper, more
painterly marks: the idea of Li & Wand 2016's MGAN, here with an LSGAN loss, Mao et al. 2017).
The critic keeps its own resumable checkpoint (``critic.safetensors``) beside the trainer's, so
the style trainer's checkpoint format is unchanged.

Off by default, and experimental: in an equal-time trial here (starry-night, 5 minutes each on a
contended CPU: 143 steps without, 108 with weight 5) the held-out VGG16 style distance got worse,
1.02 against 0.62 (the photos themselves: 0.83), at the same SSIM (0.94 against 0.92): the critic
won easily (its loss 0.1) and pushed the network to a saturated blue cast, not to brush marks.
"""
from __future__ import annotations

import random
from pathlib import Path

import torch

from ..losses import lsgan_loss
from ..methods.gan import PatchDiscriminator
from . import distributed
from .common import ImageBank, load_checkpoint, save_checkpoint

Tensor = torch.Tensor


class PatchCritic:
    """A PatchGAN on crops of one painting, with its Adam (2e-4, β1 0.5) and its checkpoint file."""

    def __init__(self, painting: str | Path, crop: int, path: str | Path, *, side: int = 384, base: int = 16,
                 lr: float = 2e-4, seed: int = 0, device: torch.device | str = "cpu",
                 group: distributed.Dist | None = None) -> None:
        self.bank = ImageBank([Path(painting)], side)  # the painting at the style targets' scale
        self.crop, self.path, self.device = crop, Path(path), device
        self.group = group or distributed.Dist()  # data-parallel: global batch of real crops, averaged gradients
        torch.manual_seed(seed + 7)
        self.d = PatchDiscriminator(base).to(device)
        self.opt = torch.optim.Adam(self.d.parameters(), lr=lr, betas=(0.5, 0.999))
        self.rng = random.Random(seed + 7)
        self.last: dict[str, float] = {}
        if self.path.exists():
            state, step, _, _ = load_checkpoint(self.path, self.opt)
            self.d.load_state_dict(state)
            self.rng.seed(seed + 7 + step)

    def generator_loss(self, y: Tensor) -> Tensor:
        """L_lsgan(D(y), 1) with D frozen: the term the style network minimises."""
        self.d.requires_grad_(False)
        loss = lsgan_loss(self.d(y), True)
        self.d.requires_grad_(True)
        self.last["adv"] = loss.item()
        return loss

    def step(self, fakes: Tensor) -> float:
        """One discriminator update: painting crops are real, the network's (detached) outputs fake."""
        real = self.group.shard(self.bank.crops(fakes.shape[0] * self.group.world, self.crop, self.rng,
                                                scale=(0.4, 1.0))).to(fakes.device)
        loss = 0.5 * (lsgan_loss(self.d(real), True) + lsgan_loss(self.d(fakes.detach()), False))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.group.average_gradients(self.d.parameters())
        self.opt.step()
        self.last["critic"] = loss.item()
        return loss.item()

    def save(self, step: int) -> None:
        save_checkpoint(self.path, self.d.state_dict(), self.opt, step, {"kind": "patch-critic"})

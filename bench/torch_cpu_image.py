#!/usr/bin/python3
"""The reference's input side for one picture, one thread: PIL decode + RGB, resize to a longer
side of 512 with BILINEAR (dirtorch's Scale), torchvision ToTensor + Normalize (ImageNet).

Usage: /usr/bin/python3 bench/torch_cpu_image.py [--write PATH] [--image PATH] [--size 512]
  --write PATH  first write a 1024x768 synthetic JPEG (quality 90) there, then time it
  --image PATH  time this JPEG (default: the one --write wrote)
Prints the median milliseconds per call of decode, resize, normalize and the whole pipeline, named
as ImagePipelineBench's methods.
"""
import argparse
import os
import sys
import io

from python_requires import require  # the script's folder is on sys.path

require("numpy", "torch", "torchvision", "PIL")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from median_timing import median_time  # noqa: E402


def timeit(fn):
    return median_time(fn, 1.0, 1e3)


def synthetic(w, h):
    x = np.arange(w)[None, :]
    y = np.arange(h)[:, None]
    r = np.broadcast_to((x * 255) // w, (h, w))
    g = np.broadcast_to((y * 255) // h, (h, w))
    b = ((x // 7 + y // 5) & 1) * 120 + 60
    return Image.fromarray(np.stack([r, g, b], axis=-1).astype(np.uint8), "RGB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write")
    ap.add_argument("--image")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    torch.set_num_threads(1)
    path = args.image or args.write
    if args.write:
        synthetic(1024, 768).save(args.write, quality=90)
    if not path:
        ap.error("give --write PATH or --image PATH")
    data = open(path, "rb").read()
    tensor = T.Compose([T.ToTensor(), T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])

    def decode():
        return Image.open(io.BytesIO(data)).convert("RGB")

    img = decode()
    w, h = img.size
    long_side = max(w, h)
    size = (args.size, int(0.5 + args.size * h / w)) if w >= h else (int(0.5 + args.size * w / h), args.size)
    small = img.resize(size, Image.BILINEAR)
    print("torch", torch.__version__, "PIL", Image.__version__, "image %dx%d -> %dx%d, %d bytes" % (w, h, *size, len(data)))
    print("%-10s %8.2f ms" % ("decode", timeit(decode)))
    print("%-10s %8.2f ms" % ("resize", timeit(lambda: img.resize(size, Image.BILINEAR))))
    print("%-10s %8.2f ms" % ("normalize", timeit(lambda: tensor(small))))
    print("%-10s %8.2f ms" % ("pipeline", timeit(lambda: tensor(decode().resize(size, Image.BILINEAR)))))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""dir4j's `extract` beside the reference implementation itself, end to end: the same JPEG files and
the same checkpoint through naver's dirtorch (its own dataset reader, transforms, network class and
multi-scale pooling) and through `./dir4j extract`; prints how far apart the descriptors are and
how long each took, in one run.

    /usr/bin/python3 bench/dirtorch_side_by_side.py --dirtorch DIR [--arch resnet101] [--images 8,24]
        [--scales 1,0.7071,0.5] [--threads 2] [--work DIR]

DIR is a checkout of https://github.com/naver/deep-image-retrieval (the package `dirtorch` inside
it; nothing of it is copied here). It needs PyTorch, torchvision, PIL, NumPy and tqdm
(`apt-get install python3-torch python3-torchvision python3-tqdm`). The script:

1. writes M JPEG files (`--images N,M`; quality 90) whose longer side is 1024, as the revisited
   Oxford/Paris images are, landscape and portrait, from a fixed seed;
2. builds the network with dirtorch's own `create_model` (`<arch>_rmac`, GeM, 2048-d FC), gives
   its batch norms running statistics measured on those images (so that a deep random network's
   activations stay in range, as a trained one's do) and its GeM a p of 2.7, and saves it the way the
   released models were saved: the pre-1.6 torch.save format, a `module.` prefix on every key,
   `model_options` and `preprocess`;
3. times dirtorch's `load_model`, then what its `extract_features` runs (batch 1, as it runs images of
   different sizes) on the first N images and on all M, with one transform chain per scale: `''`
   for scale 1 and `Scale(int(0.5 + 1024 s), largest=True)` for the others, pooled by its signed
   generalized mean (gemp 3) and renormalised;
4. times `./dir4j extract --scales ...` on the same two lists and checkpoint (the whole command, JVM
   start and checkpoint reading included, beside dirtorch's model loading + extraction);
5. converts the checkpoint with `dir4j convert` to safetensors and back to a .pt, and reads that
   with torch.load and dirtorch's `load_model` (its `create_model(**model_options)` and a strict
   `load_state_dict`): every tensor must come back bit for bit, with the same dtype;
6. compares the two M x 2048 descriptor matrices elementwise (tolerance 1e-4; see `undetermined`
   for the elements whose sign the reference's pooling leaves to float rounding), and prints the times for N and M images and the
   time each further image took ((T(M) - T(N)) / (M - N): the rate without the start, which is what
   a whole dataset's extraction runs at).

Both run on this machine's CPU cores: PyTorch with `--threads` intra-op threads (default 2) and as
many loader workers, dir4j with its defaults (every core). The jars are built, if missing or stale,
before the first timed dir4j run.
"""
import argparse
import os
import subprocess
import sys
import time

from python_requires import require  # the script's folder is on sys.path

require("numpy", "torch", "torchvision", "PIL")

import numpy as np  # noqa: E402


def make_images(folder, n, seed):
    from PIL import Image, ImageDraw, ImageFilter
    rng = np.random.default_rng(seed)
    sizes = [(1024, 768), (768, 1024), (1024, 683), (1024, 1024), (683, 1024), (1024, 576)]
    paths = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        # smooth colour field plus shapes and noise: textures at several scales
        low = rng.uniform(0, 255, size=(h // 64 + 2, w // 64 + 2, 3)).astype(np.uint8)
        img = Image.fromarray(low).resize((w, h), Image.BICUBIC)
        d = ImageDraw.Draw(img)
        for _ in range(40):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x1, y1 = x0 + int(rng.integers(10, w // 3)), y0 + int(rng.integers(10, h // 3))
            colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
            if rng.random() < 0.5:
                d.rectangle([x0, y0, x1, y1], fill=colour)
            else:
                d.ellipse([x0, y0, x1, y1], outline=colour, width=int(rng.integers(1, 12)))
        img = img.filter(ImageFilter.GaussianBlur(0.8))
        arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 13, size=(h, w, 3))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        p = os.path.join(folder, 'img%03d.jpg' % i)
        img.save(p, quality=90)
        paths.append(p)
    return paths


def make_checkpoint(path, arch, image_paths):
    from dirtorch_common import measured_network, save_released_layout
    net, options = measured_network(arch, image_paths, shrink=4)
    save_released_layout(path, net, options)


def run_dirtorch(ckpt, lists, scales, threads):
    """dirtorch's load_model, then on each list the body of its extract_features without the
    whitening: test_dir.extract_image_features per transform chain (batch 1: the images differ in
    size), common.pool('gem', gemp 3) over the chains, L2 normalisation. Returns the seconds
    (loading, then each list), the chains, the thread count, and for the last list the pooled
    descriptors and the per-chain ones."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    os.environ.setdefault('DB_ROOT', os.path.dirname(lists[0]))  # dirtorch's dataset modules read it on import
    import dirtorch.datasets as datasets
    import dirtorch.test_dir as test
    from dirtorch.extract_features import load_model
    from dirtorch.utils.common import pool
    trfs = ['' if s == 1 else 'Scale(%d, largest=True)' % int(0.5 + 1024 * s) for s in scales]
    t0 = time.perf_counter()
    net = load_model(ckpt, False)
    times = [time.perf_counter() - t0]
    for list_path in lists:
        t0 = time.perf_counter()
        dataset = datasets.create('ImageList("%s")' % list_path)
        per_chain = [test.extract_image_features(dataset, t, net, desc='DB', iscuda=False, threads=threads,
                                                 batch_size=16, same_size=False) for t in trfs]
        pooled = F.normalize(pool(per_chain, 'gem', 3), p=2, dim=1)
        times.append(time.perf_counter() - t0)
    return times, trfs, torch.get_num_threads(), pooled.numpy(), [d.numpy() for d in per_chain]


def undetermined(per_chain, delta):
    """Elements whose pooled value the reference's signed generalized mean leaves to rounding: the
    mean over the chains of sign(x)|x|^3 is nearer zero than a change of delta in every per-chain
    value could move it. Its final step clamps |mean| to 1e-6 before the cube root and multiplies by
    the mean's sign, so such an element is +-0.01 (before renormalisation) with a sign that float
    rounding picks."""
    x = np.stack(per_chain).astype(np.float64)
    m = np.mean(np.sign(x) * np.abs(x) ** 3, axis=0)
    bound = np.mean(3 * (np.abs(x) + delta) ** 2 * delta, axis=0)
    return np.abs(m) <= bound


def run_dir4j(root, ckpt, list_path, scales, out):
    """The whole `./dir4j extract` command (JVM start, checkpoint reading, extraction); seconds."""
    if os.path.exists(out):
        os.remove(out)
    cmd = [os.path.join(root, 'dir4j'), 'extract', '--checkpoint', ckpt, '--images', list_path,
           '--scales', scales, '--out', out, '--no-resume', '--quiet']
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=root, check=True)
    return time.perf_counter() - t0


def round_trip(root, ckpt, work):
    """dir4j convert .pt -> .safetensors -> .pt, then the result through torch.load and dirtorch's
    load_model: how many state-dict tensors differ from the original's (bit for bit)."""
    import torch
    from dirtorch.extract_features import load_model
    mid = os.path.join(work, 'round-trip.safetensors')
    back = os.path.join(work, 'round-trip.pt')
    for a, b in ((ckpt, mid), (mid, back)):
        subprocess.run([os.path.join(root, 'dir4j'), 'convert', '--quiet', a, b], cwd=root, check=True,
                       stdout=subprocess.DEVNULL)
    original = torch.load(ckpt)
    again = torch.load(back)
    sd0 = {k[len('module.'):]: v for k, v in original['state_dict'].items()}
    sd1 = again['state_dict']
    differ = [k for k in sd0 if k not in sd1 or sd0[k].dtype != sd1[k].dtype or not torch.equal(sd0[k], sd1[k])]
    net = load_model(back, False)  # create_model(**model_options) + load_state_dict (strict)
    return len(sd0), differ + [k for k in sd1 if k not in sd0], again['model_options'] == original['model_options'], net


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dirtorch', required=True, help='checkout of naver/deep-image-retrieval')
    ap.add_argument('--arch', default='resnet101', choices=['resnet18', 'resnet50', 'resnet101', 'resnet152'])
    ap.add_argument('--images', default='8,24',
                    help='two image counts: both tools run on the first N and on all M, M - N giving the rate of '
                         'further images without the start (default 8,24)')
    ap.add_argument('--scales', default='1,0.7071,0.5')
    ap.add_argument('--work', help='working folder (default: bench/target/dirtorch-side-by-side in the repository)')
    ap.add_argument('--seed', type=int, default=21)
    ap.add_argument('--threads', type=int, default=2,
                    help='PyTorch intra-op threads (its default on this kind of machine is 1) and dirtorch '
                         'loader workers; dir4j uses every core (2 here)')
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(args.dirtorch, 'dirtorch')):
        ap.error(f'--dirtorch {args.dirtorch}: no dirtorch/ there (give a checkout of naver/deep-image-retrieval)')
    sys.path.insert(0, os.path.abspath(args.dirtorch))
    scales = [float(s) for s in args.scales.split(',')]
    if scales[0] != 1:
        sys.exit('the first scale must be 1 (dirtorch\'s untransformed chain)')
    work = os.path.abspath(args.work) if args.work else os.path.join(root, 'bench', 'target', 'dirtorch-side-by-side')
    os.makedirs(work, exist_ok=True)
    imgs = os.path.join(work, 'images')
    os.makedirs(imgs, exist_ok=True)
    counts = [int(c) for c in args.images.split(',')]
    if len(counts) != 2 or not 0 < counts[0] < counts[1]:
        sys.exit('--images takes two counts, the smaller first (e.g. 8,24)')
    paths = make_images(imgs, counts[1], args.seed)
    lists = []
    for n in counts:
        lists.append(os.path.join(work, 'images%d.txt' % n))
        with open(lists[-1], 'w') as f:
            f.write(''.join(p + '\n' for p in paths[:n]))
    ckpt = os.path.join(work, '%s-gem-random.pt' % args.arch)
    make_checkpoint(ckpt, args.arch, paths[:counts[0]])

    dt_times, trfs, torch_threads, pooled, per_chain = run_dirtorch(ckpt, lists, scales, args.threads)
    np.save(os.path.join(work, 'dirtorch%d.npy' % counts[1]), pooled)

    # builds the jars if they are missing or stale, untimed
    subprocess.run([os.path.join(root, 'dir4j'), '--help'], cwd=root, check=True, stdout=subprocess.DEVNULL)
    d4_outs = [os.path.join(work, 'dir4j%d.npy' % n) for n in counts]
    d4_times = [run_dir4j(root, ckpt, l, args.scales, o) for l, o in zip(lists, d4_outs)]

    a = pooled.astype(np.float64)
    b = np.load(d4_outs[1]).astype(np.float64)
    if a.shape != b.shape:
        sys.exit('shapes differ: dirtorch %s, dir4j %s' % (a.shape, b.shape))
    tol = 1e-4
    loose = undetermined(per_chain, 1e-5) if len(per_chain) > 1 else np.zeros(a.shape, bool)
    diff = np.abs(a - b)
    flipped = (diff > tol) & loose
    wrong = (diff > tol) & ~loose
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    sa, sb = a @ a.T, b @ b.T
    n0, n1 = counts
    dt_whole = [dt_times[0] + t for t in dt_times[1:]]
    print()
    print('# %s-GeM-FC, longer side 1024, scales %s (dirtorch chains %s); PyTorch %s with %d threads'
          % (args.arch, args.scales, trfs, __import__('torch').__version__, torch_threads))
    print('descriptors of %d images: max |dirtorch - dir4j| %.3g (largest element %.3g), cosine min %.9f,'
          ' image-to-image similarities max |difference| %.3g'
          % (n1, diff.max(), np.abs(a).max(), cos.min(), np.abs(sa - sb).max()))
    print('elements the reference leaves to rounding (signed mean of cubes within rounding of 0): %d of %d;'
          ' of these %d differ in sign; elsewhere max |difference| %.3g'
          % (loose.sum(), a.size, flipped.sum(), np.where(loose, 0, diff).max()))
    print()
    print('| seconds | dirtorch | dir4j | dir4j / dirtorch |')
    print('| --- | ---: | ---: | ---: |')
    for n, t_dt, t_d4 in zip(counts, dt_whole, d4_times):
        print('| %d images, load + extract | %.2f | %.2f | %.2f |' % (n, t_dt, t_d4, t_d4 / t_dt))
    m_dt = (dt_whole[1] - dt_whole[0]) / (n1 - n0)
    m_d4 = (d4_times[1] - d4_times[0]) / (n1 - n0)
    print('| each further image (the %d beyond the first %d) | %.3f | %.3f | %.2f |'
          % (n1 - n0, n0, m_dt, m_d4, m_d4 / m_dt))
    n_tensors, differ, same_options, _ = round_trip(root, ckpt, work)
    print('dir4j convert .pt -> .safetensors -> .pt, read by torch.load and dirtorch\'s load_model: %d of %d state-dict'
          ' tensors differ from the original\'s; model_options %s' % (len(differ), n_tensors,
                                                                       'equal' if same_options else 'DIFFER'))
    ok = not wrong.any() and not differ and same_options
    print()
    print('parity: %s (tolerance %g elementwise, but for the elements left to rounding)' % ('OK' if ok else 'FAILED', tol))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()

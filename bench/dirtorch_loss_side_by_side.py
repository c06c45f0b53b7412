#!/usr/bin/env python3
"""`dir4j aploss` beside dirtorch's own loss classes (dirtorch/loss.py: APLoss, TAPLoss, APLoss_dist,
TAPLoss_dist): per-query AP, the loss and its gradient with respect to the descriptors, on the same
descriptors and labels.

    /usr/bin/python3 bench/dirtorch_loss_side_by_side.py --dirtorch DIR [--n 512] [--dim 128]

DIR is a checkout of https://github.com/naver/deep-image-retrieval. Each query is ranked against
every other image (dir4j's default --exclude-self; on dirtorch's side the N x N score matrix
D Dᵀ without its diagonal, N x (N - 1), with the matching labels), every class has 2 to 6 images
(a query without a positive is NaN in the reference), and about a tenth of the rows are repeated
with a new label's neighbours so that the scores hold exact ties. dirtorch's modules run in float64
(`.double()`: the same code, without float32 rounding in the reference) and its gradient comes from
autograd through D Dᵀ; dir4j runs its CLI (float32 descriptors). Exits 1 when the loss or an AP
differs by more than 2e-5, or a gradient element by more than 1e-4 of the largest (or, if more,
twice as much as dirtorch's own float32 run of the same module differs from its float64 one: the
full tie-aware form divides small count differences). Gradient differences are given as the largest
elementwise difference from dirtorch's float64 gradient over its largest element. The gradient
rows of images in a pair whose score lies on a bin centre (a repeated row scores 1 with its copy:
the top bin's centre) are left out of that check and reported apart: the triangular quantiser has
a kink there, and which one-sided derivative each side takes depends on whether rounding puts the
score just below or just above the centre.
"""
import argparse
import os
import subprocess
import sys
import tempfile

from python_requires import require  # the script's folder is on sys.path

require("numpy", "torch")

import numpy as np  # noqa: E402

CASES = [
    # (name, dirtorch class, kwargs, dir4j options)
    ('AP nq 25 [0, 1]', 'APLoss', dict(nq=25, min=0, max=1), []),
    ('AP nq 20 [-1, 1]', 'APLoss', dict(nq=20, min=-1, max=1), ['--nq', '20', '--min', '-1', '--max', '1']),
    ('tie-aware AP, full', 'TAPLoss', dict(nq=25, min=0, max=1), ['--tie-aware', 'full']),
    ('tie-aware AP, simplified', 'TAPLoss', dict(nq=25, min=0, max=1, simplified=True),
     ['--tie-aware', 'simplified']),
    ('AP, distance (nq 20 [-1, 1])', 'APLoss_dist', dict(nq=20, min=-1, max=1),
     ['--distance', '--nq', '20', '--min', '-1', '--max', '1']),
    ('tie-aware AP, distance', 'TAPLoss_dist', dict(nq=20, min=-1, max=1),
     ['--distance', '--tie-aware', 'full', '--nq', '20', '--min', '-1', '--max', '1']),
]


def data(n, dim, seed):
    rng = np.random.default_rng(seed)
    labels = []
    while len(labels) < n:
        labels += [len(set(labels))] * int(rng.integers(2, 7))
    labels = np.array(labels[:n], dtype=np.int64)
    if np.bincount(labels)[labels[-1]] < 2:
        labels[-1] = labels[-2]
    centres = rng.standard_normal((labels.max() + 1, dim))
    x = centres[labels] + 0.9 * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = x.astype(np.float32)
    # exact ties: some rows equal to a row of another class
    for i in rng.choice(n, n // 10, replace=False):
        j = int(rng.integers(0, n))
        if labels[j] != labels[i] and np.bincount(labels)[labels[i]] > 2:
            x[i] = x[j]
    return x, labels


def reference32(loss_module, x, labels):
    """dL/dD by the same dirtorch module in float32, as PyTorch trains with it."""
    import torch
    d = torch.from_numpy(x).requires_grad_(True)
    n = len(labels)
    keep = ~torch.eye(n, dtype=torch.bool)
    s = (d @ d.t())[keep].view(n, n - 1)
    lab = torch.from_numpy(labels)
    gt = (lab.view(n, 1) == lab.view(1, n))[keep].view(n, n - 1).float()
    loss_module(s, gt).backward()
    return d.grad.numpy()


def reference(loss_module, x, labels, distance):
    """Loss, per-query AP and dL/dD by dirtorch's module in float64; and the rows of D in a pair
    whose (transformed) score lies within 1e-6 of a bin centre, where the quantiser has a kink and
    the derivative depends on which side rounding puts the score."""
    import torch
    d = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    n = len(labels)
    keep = ~torch.eye(n, dtype=torch.bool)
    s = (d @ d.t())[keep].view(n, n - 1)
    lab = torch.from_numpy(labels)
    gt = (lab.view(n, 1) == lab.view(1, n))[keep].view(n, n - 1).double()
    loss_module = loss_module.double()
    ap = loss_module(s, gt, ret='AP').detach().numpy()
    loss = loss_module(s, gt)
    loss.backward()
    t = s.detach().numpy()
    if distance:
        t = 1 - np.sqrt(2.001 - 2 * t)
    centres = np.linspace(loss_module.min, loss_module.max, loss_module.nq)
    near = (np.abs(t[:, :, None] - centres[None, None, :]) < 1e-6).any(axis=2)
    full = np.zeros((n, n), dtype=bool)
    full[keep.numpy()] = near.ravel()
    kinked = full.any(axis=0) | full.any(axis=1)
    return float(loss), ap, d.grad.numpy(), kinked


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dirtorch', required=True, help='checkout of naver/deep-image-retrieval')
    ap.add_argument('--n', type=int, default=512)
    ap.add_argument('--dim', type=int, default=128)
    ap.add_argument('--seed', type=int, default=21)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(args.dirtorch, 'dirtorch')):
        ap.error(f'--dirtorch {args.dirtorch}: no dirtorch/ there (give a checkout of naver/deep-image-retrieval)')
    sys.path.insert(0, os.path.abspath(args.dirtorch))
    import dirtorch.loss as losses

    x, labels = data(args.n, args.dim, args.seed)
    ok = True
    with tempfile.TemporaryDirectory() as work:
        np.save(os.path.join(work, 'd.npy'), x)
        np.save(os.path.join(work, 'l.npy'), labels)
        print('# %d descriptors of %d dimensions, %d classes; dirtorch in float64, dir4j aploss on the CPU'
              % (args.n, args.dim, labels.max() + 1))
        print('| case | loss, dirtorch | loss, dir4j | max AP difference | dL/dD: dir4j | dL/dD: dirtorch in float32 |'
              ' rows at a kink: dir4j |')
        print('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
        for name, cls, kw, options in CASES:
            ref_loss, ref_ap, ref_grad, kinked = reference(getattr(losses, cls)(**kw), x, labels, '--distance' in options)
            ref32 = reference32(getattr(losses, cls)(**kw), x, labels)
            out = os.path.join(work, 'out')
            res = subprocess.run([os.path.join(root, 'dir4j'), 'aploss', '--descriptors', os.path.join(work, 'd.npy'),
                                  '--labels', os.path.join(work, 'l.npy'), '--out', out, '--show', '0', '--quiet']
                                 + options, cwd=root, check=True, capture_output=True, text=True)
            line = next(l for l in res.stdout.splitlines() if ' loss (' in l)
            our_loss = float(line.rsplit(':', 1)[1])
            our_ap = np.load(os.path.join(out, 'ap.npy'))
            our_grad = np.load(os.path.join(out, 'grad.npy'))
            d_ap = np.abs(our_ap - ref_ap).max()
            scale = np.abs(ref_grad).max()
            d_grad = np.abs(our_grad - ref_grad)[~kinked].max() / scale
            d_kinked = np.abs(our_grad - ref_grad)[kinked].max() / scale if kinked.any() else 0.0
            d_torch32 = np.abs(ref32 - ref_grad)[~kinked].max() / scale
            ok &= d_ap <= 2e-5 and d_grad <= max(1e-4, 2 * d_torch32) and abs(our_loss - ref_loss) <= 2e-5
            print('| %s | %.6f | %.6f | %.2g | %.2g | %.2g | %d: %.2g |'
                  % (name, ref_loss, our_loss, d_ap, d_grad, d_torch32, kinked.sum(), d_kinked))
    print('parity: %s' % ('OK' if ok else 'FAILED'))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""`dir4j eval` beside the reference implementation itself: the revisited-protocol mAP (Easy,
Medium, Hard) of one checkpoint on one benchmark, computed by naver's dirtorch (its own dataset
class for Oxford-style ground truth, query cropping, network, whitening of a pickled scikit-learn
PCA, alpha-DBA/alpha-QE and per-query AP) and by `./dir4j eval`, in one run.

    /usr/bin/python3 bench/dirtorch_eval_side_by_side.py --dirtorch DIR [--arch resnet50]
        [--image-size 256] [--threads 2] [--work DIR]

DIR is a checkout of https://github.com/naver/deep-image-retrieval (nothing of it is copied here).
It needs PyTorch, torchvision, PIL, NumPy, tqdm and scikit-learn (`apt-get install python3-torch
python3-torchvision python3-tqdm python3-sklearn`). The script:

1. writes dir4j's synthetic benchmark (`./dir4j synth --image-size S`) and gives each of its
   queries a bounding box with fractional corners inside the image (the generated ones cover the
   whole image), so that both sides crop the queries;
2. builds the network with dirtorch's `create_model` (`<arch>_rmac`, GeM, 2048-d FC) with batch-norm
   statistics measured on 64 training images and a GeM p of 2.7, extracts the 480 training images
   with dirtorch and fits scikit-learn's `PCA(n_components=256, whiten=True)` on them, and saves it
   all as the released models were saved: pre-1.6 `torch.save`, `module.` prefixes,
   `model_options`, and the PCA object pickled under `pca['synth-train']` (as the released models'
   `pca['Landmarks_clean']`);
3. evaluates with dirtorch what its `test_dir.eval_model` runs (database and cropped queries through
   `extract_image_features`, L2 normalisation, `common.whiten_features`, `expand_descriptors` for
   alpha-DBA then alpha-QE, `matmul`, the dataset's `eval_query_AP`; the tail of `eval_model` is run
   here with its arguments because `eval_model` reads the DBA/QE settings from a global), in three
   settings: plain; whitened by the checkpoint's PCA (whitenp 0.25, as the reference's README);
   whitened with alpha-DBA and alpha-QE (k = 2, alpha = 3);
4. runs `./dir4j eval --dataset synth --json ...` with the matching options;
5. runs the same post-processing and AP of dirtorch on dir4j's descriptors (as its eval_model's
   --load-feats would), and prints the three tables and the descriptors' largest difference.
   Parity: the descriptors within 1e-4, and dir4j's mAP within 1e-4 points of dirtorch's on the
   same descriptors. End to end (each on its own descriptors) the two can differ where a positive
   and a negative score within rounding of each other: whitening divides each component by its
   variance to the power p, which enlarges the float32 rounding of the smallest components.
"""
import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys

from python_requires import require  # the script's folder is on sys.path

require("numpy", "torch", "torchvision", "PIL", "sklearn")

import numpy as np  # noqa: E402

SETTINGS = [
    ('plain', None, [], []),
    ('whitened (p 0.25)', 0.25, ['--whiten', 'from-checkpoint', 'synth-train', '--whitenp', '0.25'], []),
    ('whitened + aDBA + aQE (k 2, alpha 3)', 0.25,
     ['--whiten', 'from-checkpoint', 'synth-train', '--whitenp', '0.25', '--adba', '2', '3', '--aqe', '2', '3'],
     [2, 3]),
]


def boxed_ground_truth(synth, seed):
    """gnd_synth.pkl with a fractional bounding box inside each query image (from the file as
    dir4j synth wrote it, kept beside as gnd_synth.generated.pkl)."""
    from PIL import Image
    path = os.path.join(synth, 'gnd_synth.pkl')
    generated = os.path.join(synth, 'gnd_synth.generated.pkl')
    if not os.path.exists(generated):
        shutil.copyfile(path, generated)
    with open(generated, 'rb') as f:
        gnd = pickle.load(f)
    rng = np.random.default_rng(seed)
    for name, g in zip(gnd['qimlist'], gnd['gnd']):
        with Image.open(os.path.join(synth, 'jpg', name + '.jpg')) as im:
            w, h = im.size
        x0, y0 = rng.uniform(0, 0.25 * w), rng.uniform(0, 0.25 * h)
        x1, y1 = rng.uniform(0.65 * w, w), rng.uniform(0.65 * h, h)
        g['bbx'] = [round(float(v), 2) for v in (x0, y0, x1, y1)]
    with open(path, 'wb') as f:
        pickle.dump(gnd, f, protocol=2)
    return gnd


def make_checkpoint(path, arch, synth, threads):
    from sklearn.decomposition import PCA
    import dirtorch.datasets.generic as generic
    import dirtorch.test_dir as test
    from dirtorch_common import measured_network, save_released_layout
    with open(os.path.join(synth, 'train.txt')) as f:
        train = [os.path.join(synth, line.split()[0]) for line in f if line.strip()]
    net, options = measured_network(arch, train[::len(train) // 64][:64])
    descs = test.extract_image_features(generic.ImageList(None, imgs=train), '', net, desc='train',
                                        iscuda=False, threads=threads).numpy()
    pca = PCA(n_components=256, whiten=True, random_state=0).fit(descs)
    save_released_layout(path, net, options, {'synth-train': pca})


def dirtorch_descriptors(ckpt, synth, threads):
    """Database and query descriptors as dirtorch's eval_model extracts them (queries cropped to
    their boxes), and the loaded network (for its PCA)."""
    import torch
    import torch.nn.functional as F
    import dirtorch.test_dir as test
    from dirtorch.datasets.generic import ImageListRelevants
    from dirtorch.utils.common import pool
    torch.set_num_threads(threads)
    net = test.load_model(ckpt, False)
    db = ImageListRelevants(os.path.join(synth, 'gnd_synth.pkl'), root=synth)
    kw = dict(iscuda=False, threads=threads, batch_size=16, same_size=False)
    bdescs = F.normalize(pool([test.extract_image_features(db, '', net, desc='DB', **kw)], 'gem', 3), p=2, dim=1)
    qdescs = F.normalize(pool([test.extract_image_features(db.get_query_db(), '', net, desc='query', **kw)],
                              'gem', 3), p=2, dim=1)
    return db, net, bdescs, qdescs


def dirtorch_tables(db, pca, bdescs, qdescs):
    """mAP (points) per setting, by the tail of dirtorch's eval_model on these descriptors."""
    import dirtorch.test_dir as test
    from dirtorch.utils import common
    from dirtorch.utils.common import tonumpy, matmul
    tables = []
    for name, whitenp, _, dba_qe in SETTINGS:
        b, q = bdescs, qdescs
        if whitenp is not None:
            w = dict(whitenp=whitenp, whitenv=None, whitenm=1.0)
            b = common.whiten_features(tonumpy(b), pca, **w)
            q = common.whiten_features(tonumpy(q), pca, **w)
        if dba_qe:
            k, alpha = dba_qe
            b = test.expand_descriptors(b, k=k, alpha=alpha)
            q = test.expand_descriptors(q, db=b, k=k, alpha=alpha)
        scores = matmul(q, b)
        aps = [db.eval_query_AP(i, s) for i, s in enumerate(tonumpy(scores))]
        tables.append({mode: 100 * float(np.mean([a[mode] for a in aps if a[mode] >= 0]))
                       for mode in ('easy', 'medium', 'hard')})
    return tables


def dir4j_tables(root, ckpt, work):
    tables = []
    descs = os.path.join(work, 'dir4j-descriptors')
    shutil.rmtree(descs, ignore_errors=True)
    for i, (_, _, options, _) in enumerate(SETTINGS):
        out = os.path.join(work, 'dir4j-eval-%d.json' % i)
        cmd = [os.path.join(root, 'dir4j'), 'eval', '--dataset', 'synth', '--data-root', work,
               '--checkpoint', ckpt, '--descriptors-dir', descs, '--json', out, '--quiet'] + options
        subprocess.run(cmd, cwd=root, check=True)
        with open(out) as f:
            tables.append(json.load(f)['synth'])
    return tables


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dirtorch', required=True, help='checkout of naver/deep-image-retrieval')
    ap.add_argument('--arch', default='resnet50', choices=['resnet18', 'resnet50', 'resnet101', 'resnet152'])
    ap.add_argument('--image-size', type=int, default=256, help='side of the synthetic images')
    ap.add_argument('--threads', type=int, default=2, help='PyTorch threads and dirtorch loader workers')
    ap.add_argument('--work', help='working folder (default: bench/target/dirtorch-eval in the repository)')
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(args.dirtorch, 'dirtorch')):
        ap.error(f'--dirtorch {args.dirtorch}: no dirtorch/ there (give a checkout of naver/deep-image-retrieval)')
    sys.path.insert(0, os.path.abspath(args.dirtorch))
    work = os.path.abspath(args.work) if args.work else os.path.join(root, 'bench', 'target', 'dirtorch-eval')
    os.makedirs(work, exist_ok=True)
    os.environ.setdefault('DB_ROOT', work)  # dirtorch's dataset modules read it on import
    subprocess.run([os.path.join(root, 'dir4j'), 'synth', '--data-root', work, '--image-size',
                    str(args.image_size), '--quiet'], cwd=root, check=True)
    synth = os.path.join(work, 'synth')
    boxed_ground_truth(synth, 21)
    ckpt = os.path.join(work, '%s-gem-pca-random.pt' % args.arch)
    make_checkpoint(ckpt, args.arch, synth, args.threads)

    db, net, bdescs, qdescs = dirtorch_descriptors(ckpt, synth, args.threads)
    ref = dirtorch_tables(db, net.pca['synth-train'], bdescs, qdescs)
    ours = dir4j_tables(root, ckpt, work)
    # the reference's post-processing and AP on dir4j's own descriptors (its eval_model's
    # --load-feats path): isolates the whitening, DBA/QE and ranking from the extraction's rounding
    d4b = np.load(os.path.join(work, 'dir4j-descriptors', 'synth.dbdescs.npy'))
    d4q = np.load(os.path.join(work, 'dir4j-descriptors', 'synth.qdescs.npy'))
    crossed = dirtorch_tables(db, net.pca['synth-train'], d4b, d4q)
    extraction = max(np.abs(d4b - bdescs.numpy()).max(), np.abs(d4q - qdescs.numpy()).max())

    def points(o):
        return [o['mAP-easy'] * 100, o['mAP-medium'] * 100, o['mAP-hard'] * 100]

    def row(t):
        return ' / '.join('%.4f' % v for v in t)

    print()
    print('# %s-GeM-FC, dir4j synth --image-size %d (20 cropped queries, 180 database images), one scale;'
          ' mAP in points' % (args.arch, args.image_size))
    print('descriptors (database and cropped queries): max |dirtorch - dir4j| %.3g' % extraction)
    print()
    print('| setting | dirtorch on its descriptors | dirtorch on dir4j\'s descriptors | dir4j eval |')
    print('| --- | --- | --- | --- |')
    worst = end_to_end = 0.0
    for (name, _, _, _), r, c, o in zip(SETTINGS, ref, crossed, ours):
        theirs = [r['easy'], r['medium'], r['hard']]
        same = [c['easy'], c['medium'], c['hard']]
        worst = max(worst, max(abs(a - b) for a, b in zip(points(o), same)))
        end_to_end = max(end_to_end, max(abs(a - b) for a, b in zip(points(o), theirs)))
        print('| %s | %s | %s | %s |' % (name, row(theirs), row(same), row(points(o))))
    print()
    print('largest difference, dir4j eval against dirtorch on the same descriptors: %.2g points;'
          ' against dirtorch end to end: %.2g points' % (worst, end_to_end))
    ok = worst <= 1e-4 and extraction <= 1e-4
    print('parity: %s (descriptors within 1e-4; mAP on the same descriptors within 1e-4 points)'
          % ('OK' if ok else 'FAILED'))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()

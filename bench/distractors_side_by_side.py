#!/usr/bin/python3
"""dir4j eval --distractors beside numpy's evaluation of the same benchmark extended by a million
distractors (the revisited protocol's +R1M), in one run: the same mAP and mP@k, the time and the
peak memory of each.

The revisited benchmarks with their one million distractor images cannot be downloaded here, so
the script makes a benchmark of the same sizes from random descriptors (default: ROxford5k's 70
queries and 4,993 images, R1M's 1,001,001 distractors, 2048-d), with structure, so that mAP means
something: each query has its own landmark, whose easy, hard and junk images lie at increasing
distances from it; one distractor in twenty lies near some landmark. It writes

    WORK/roxford5k/gnd_roxford5k.pkl     the ground truth (revisited layout; no images)
    WORK/descs/roxford5k.{q,db}descs.npy the query and database descriptors (float32 unit rows)
    WORK/r1m.npy                         the distractors (8.2 GB at the default size)

and then, for each setting (none; alpha-QE k=2 alpha=3 whose neighbours may be distractors; and
a PCA whitening learned on the database, which every distractor then goes through):

  dir4j:  ./dir4j eval --dataset roxford5k --data-root WORK --descriptors-dir WORK/descs
              --distractors WORK/r1m.npy [--aqe 2 3 | --whiten learn-on-db --whitenp 0.25]
              --json ...   (wall time; peak RSS from /usr/bin/time when it is there, else from
              the child's rusage)
  numpy:  what the revisited protocol's code does with the distractors appended to the database
          (revisitop's example: sim = X.T @ Q, ranks = argsort(-sim, axis=0), compute_map), with
          the distractors read and scored in blocks, dirtorch's expand_descriptors for
          alpha-QE over database + distractors, dirtorch's whiten_features with the PCA that
          sklearn's PCA(whiten=True).fit(database) holds (fitted in float64, applied in float32,
          numpy's fastest), and cirtorch's compute_map (tests/fixtures/make_retrieval_fixtures.py);
          sort kind 'stable', so a distractor that scores exactly as an image ranks after it, as
          in dir4j.

Parity: dir4j's mAP and mP@k must lie within the range that float32 rounding leaves open, which
numpy computes with the positives' scores moved down by 1e-5 (every near-tie lost) and up (every
one won): float32 dot products by two libraries (and alpha-QE's expanded queries) may order a
positive and a distractor of nearly the same score differently, and among a million distractors
such neighbours are common. The plain difference to numpy's numbers is printed too.

Usage: /usr/bin/python3 bench/distractors_side_by_side.py [--rows 1001001] [--work DIR] [--keep]
                                                         [--settings plain,aqe,whiten]
"""

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'fixtures'))
from make_retrieval_fixtures import compute_map, revisited_gnd, expand_descriptors, fit_pca  # noqa: E402

KAPPAS = [1, 5, 10]
BLOCK = 65536
WHITENP = 0.25  # the reference's default power, as dir4j's
SETTINGS = {'plain': {}, 'aqe': {'qe': (2, 3)}, 'whiten': {'whiten': True}}


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make(work, rows, dim, nq, ndb, seed):
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((nq, dim)))
    db = unit(rng.standard_normal((ndb, dim)))
    order = rng.permutation(ndb)
    gnd = []
    per = min(40, ndb // nq)
    s = 1 / np.sqrt(dim)  # noise per coordinate: distances independent of the dimension
    for i in range(nq):
        own = order[per * i:per * (i + 1)]
        ne, nh, nj = 4 + i % 12, 3 + i % 9, 2 + i % 5
        easy, hard, junk = own[:ne], own[ne:ne + nh], own[ne + nh:ne + nh + nj]
        for idx, noise in ((easy, 1.5), (hard, 2.0), (junk, 1.7)):
            db[idx] = unit(centres[i] + noise * s * rng.standard_normal((len(idx), dim)))
        gnd.append({'bbx': [0.0, 0.0, 100.0, 100.0], 'easy': sorted(int(v) for v in easy),
                    'hard': sorted(int(v) for v in hard), 'junk': sorted(int(v) for v in junk)})
    queries = unit(centres + 0.6 * s * rng.standard_normal((nq, dim)))
    os.makedirs(os.path.join(work, 'roxford5k'), exist_ok=True)
    with open(os.path.join(work, 'roxford5k', 'gnd_roxford5k.pkl'), 'wb') as f:
        pickle.dump({'imlist': ['db%05d' % i for i in range(ndb)], 'qimlist': ['q%03d' % i for i in range(nq)],
                     'gnd': gnd}, f, protocol=2)
    os.makedirs(os.path.join(work, 'descs'), exist_ok=True)
    np.save(os.path.join(work, 'descs', 'roxford5k.qdescs.npy'), queries)
    np.save(os.path.join(work, 'descs', 'roxford5k.dbdescs.npy'), db)
    out = np.lib.format.open_memmap(os.path.join(work, 'r1m.npy'), mode='w+', dtype=np.float32, shape=(rows, dim))
    for r0 in range(0, rows, BLOCK):
        n = min(BLOCK, rows - r0)
        x = rng.standard_normal((n, dim), dtype=np.float32)
        near = rng.random(n) < 0.05
        x[near] = centres[rng.integers(0, nq, near.sum())] + 2.2 * s * x[near]
        out[r0:r0 + n] = unit(x)
    out.flush()
    del out


def distractor_blocks(path):
    """(first row, rows) of the .npy file a block at a time, read (not mapped: the pages of a
    mapping would count in the process's resident memory)."""
    x = np.load(path, mmap_mode='r')
    rows, dim, offset = x.shape[0], x.shape[1], x.offset
    del x
    with open(path, 'rb') as f:
        f.seek(offset)
        for r0 in range(0, rows, BLOCK):
            n = min(BLOCK, rows - r0)
            yield r0, np.fromfile(f, dtype='<f4', count=n * dim).reshape(n, dim)


def read_row(path, j):
    x = np.load(path, mmap_mode='r')
    offset, dim = x.offset, x.shape[1]
    del x
    with open(path, 'rb') as f:
        f.seek(offset + j * dim * 4)
        return np.fromfile(f, dtype='<f4', count=dim)


EPS = 1e-5  # scores of unit descriptors within this of each other: their order is float32 rounding's


class Whitening:
    """dirtorch's whiten_features(X, pca, whitenp=WHITENP) with a PCA fitted on the database in
    float64 (what sklearn's PCA(whiten=True).fit holds) and applied in float32."""

    def __init__(self, db):
        pca = fit_pca(db)
        self.mean = pca.mean_.astype(np.float32)
        self.axes = (pca.components_ / np.power(pca.explained_variance_, WHITENP)[:, None]).T.astype(np.float32)

    def __call__(self, x):
        y = np.dot(x - self.mean, self.axes)
        return y / np.linalg.norm(y, axis=1, keepdims=True)


def numpy_eval(work, qe, bounds=False, whiten=False):
    """The reference evaluation, in this process (run alone, for its time and peak memory). With
    bounds: instead, the range of results that float32 rounding leaves open, the positives' scores
    moved down by EPS (every near-tie lost) and up (every one won)."""
    t0 = time.perf_counter()
    queries = np.load(os.path.join(work, 'descs', 'roxford5k.qdescs.npy'))
    db = np.load(os.path.join(work, 'descs', 'roxford5k.dbdescs.npy'))
    with open(os.path.join(work, 'roxford5k', 'gnd_roxford5k.pkl'), 'rb') as f:
        gnd = pickle.load(f)['gnd']
    path = os.path.join(work, 'r1m.npy')
    w = (lambda x: x)
    if whiten:
        w = Whitening(db)
        queries, db = w(queries), w(db)
    if qe:
        k, alpha = qe
        # expand_descriptors against database + distractors, without the 8 GB concatenation: each
        # block's k best are kept, and the expansion runs on the pool of candidates, which holds
        # every query's k best of the whole
        cand_s = [np.dot(queries, db.T)]
        cand_i = [np.broadcast_to(np.arange(len(db)), cand_s[0].shape)]
        for r0, x in distractor_blocks(path):
            sc = np.dot(queries, w(x).T)
            top = np.argpartition(sc, -k, axis=1)[:, -k:]
            cand_s.append(np.take_along_axis(sc, top, axis=1))
            cand_i.append(top + len(db) + r0)
        cs, ci = np.concatenate(cand_s, axis=1), np.concatenate(cand_i, axis=1)
        best = np.argsort(-cs, axis=1, kind='stable')[:, :k]
        ids = sorted(int(j) for j in np.unique(np.take_along_axis(ci, best, axis=1)))
        pool = np.stack([db[j] if j < len(db) else w(read_row(path, j - len(db))[None])[0] for j in ids])
        queries = expand_descriptors(queries, db=pool, alpha=alpha, k=k)
    scores = [np.dot(db, queries.T)]
    for _, x in distractor_blocks(path):
        scores.append(np.dot(w(x), queries.T))
    sim = np.concatenate(scores, axis=0)
    del scores
    g = [{k: np.array(v, dtype=np.int64) for k, v in q.items() if k != 'bbx'} for q in gnd]
    if bounds:
        res = {}
        for mode in 'EMH':
            setup = revisited_gnd(g, mode)
            res[mode] = []
            for shift in (-EPS, EPS):
                moved = sim.copy()
                for i, q in enumerate(setup):
                    moved[q['ok'], i] += shift
                m, _, pr, _ = compute_map(np.argsort(-moved, axis=0, kind='stable'), setup, KAPPAS)
                res[mode].append((float(m), [float(v) for v in pr]))
        return res, time.perf_counter() - t0
    ranks = np.argsort(-sim, axis=0, kind='stable')
    del sim
    res = {}
    for mode in 'EMH':
        m, _, pr, _ = compute_map(ranks, revisited_gnd(g, mode), KAPPAS)
        res[mode] = (float(m), [float(v) for v in pr])
    return res, time.perf_counter() - t0


def timed(cmd):
    """Runs cmd; returns (completed process, wall seconds, peak RSS in MiB)."""
    have_time = os.path.exists('/usr/bin/time')
    t0 = time.perf_counter()
    p = subprocess.run((['/usr/bin/time', '-f', 'MAXRSS %M'] if have_time else []) + cmd, capture_output=True,
                       text=True)
    seconds = time.perf_counter() - t0
    if have_time:
        rss = [int(l.split()[1]) / 1024 for l in p.stderr.splitlines() if l.startswith('MAXRSS')]
        rss = rss[-1] if rss else float('nan')
    else:
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    return p, seconds, rss


def dir4j_eval(work, setting, block):
    qe = SETTINGS[setting].get('qe')
    out = os.path.join(work, 'dir4j-%s.json' % setting)
    if os.path.exists(out):
        os.remove(out)
    cmd = [os.path.join(ROOT, 'dir4j'), 'eval', '--dataset', 'roxford5k', '--data-root', work,
           '--descriptors-dir', os.path.join(work, 'descs'), '--distractors', os.path.join(work, 'r1m.npy'),
           '--json', out, '--quiet']
    if block:
        cmd += ['--distractor-block', str(block)]
    if qe:
        cmd += ['--aqe', str(qe[0]), str(qe[1])]
    if SETTINGS[setting].get('whiten'):
        cmd += ['--whiten', 'learn-on-db', '--whitenp', str(WHITENP)]
    p, seconds, rss = timed(cmd)
    if p.returncode != 0:
        sys.exit('dir4j eval failed:\n' + p.stdout + p.stderr)
    with open(out) as f:
        r = json.load(f)['roxford5k+distractors']
    res = {m: (r['mAP-' + name], np.array(r['mP@k'][name])) for m, name in
           (('E', 'easy'), ('M', 'medium'), ('H', 'hard'))}
    return res, seconds, rss, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rows', type=int, default=1001001, help='distractors (R1M: 1,001,001)')
    ap.add_argument('--dim', type=int, default=2048)
    ap.add_argument('--queries', type=int, default=70)
    ap.add_argument('--database', type=int, default=4993)
    ap.add_argument('--block', type=int, default=0, help='dir4j --distractor-block (0: its default)')
    ap.add_argument('--work', default='/tmp/dir4j-distractors')
    ap.add_argument('--keep', action='store_true', help='keep WORK (the distractor file is large)')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--settings', default=','.join(SETTINGS),
                    help='which of %s to run (default: all)' % ', '.join(SETTINGS))
    ap.add_argument('--numpy-only', nargs=3, metavar=('WORK', 'SETTING', 'WHAT'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.numpy_only:  # the reference, run alone in a fresh process by the main run
        s = SETTINGS[a.numpy_only[1]]
        res, seconds = numpy_eval(a.numpy_only[0], s.get('qe'), bounds=a.numpy_only[2] == 'bounds',
                                  whiten=s.get('whiten', False))
        print(json.dumps({'res': res, 'seconds': seconds}))
        return
    settings = a.settings.split(',')
    for name in settings:
        if name not in SETTINGS:
            ap.error('unknown setting %r (known: %s)' % (name, ', '.join(SETTINGS)))
    if os.path.isdir(a.work):
        shutil.rmtree(a.work)
    os.makedirs(a.work)
    t0 = time.perf_counter()
    make(a.work, a.rows, a.dim, a.queries, a.database, a.seed)
    os.sync()  # the file's dirty pages written back now, not during the timed runs
    print('benchmark: %d queries, %d images, %d distractors of %d-d (%.1f GB) written in %.0f s'
          % (a.queries, a.database, a.rows, a.dim, a.rows * a.dim * 4 / 1e9, time.perf_counter() - t0))
    subprocess.run([os.path.join(ROOT, 'dir4j'), 'info'], capture_output=True)  # build outside the timing
    worst = 0.0
    ok = True
    for setting in settings:
        d, dsec, drss, printed = dir4j_eval(a.work, setting, a.block)
        runs = {}
        for what in ('eval', 'bounds'):
            p, _, rss = timed([sys.executable, os.path.abspath(__file__), '--numpy-only', a.work, setting, what])
            if p.returncode != 0:
                sys.exit('the numpy evaluation failed:\n' + p.stdout + p.stderr)
            runs[what] = (json.loads(p.stdout.strip().splitlines()[-1]), rss)
        n, nsec, nrss = runs['eval'][0]['res'], runs['eval'][0]['seconds'], runs['eval'][1]
        bounds = runs['bounds'][0]['res']
        name = {'plain': 'no expansion', 'aqe': 'alpha-QE k=2 alpha=3',
                'whiten': 'PCA whitening learned on the database (p = %g)' % WHITENP}[setting]
        print('\n%s' % name)
        print(printed.rstrip())
        print('  %-22s %8s %8s %8s   %s' % ('', 'mAP E', 'M', 'H', 'mP@1,5,10 (M)'))
        rows = [('dir4j', d), ('numpy', n), ('numpy, near-ties lost', {m: bounds[m][0] for m in 'EMH'}),
                ('numpy, near-ties won', {m: bounds[m][1] for m in 'EMH'})]
        for who, r in rows:
            print('  %-22s %8.4f %8.4f %8.4f   %s' % (who, 100 * r['E'][0], 100 * r['M'][0], 100 * r['H'][0],
                                                     np.round(100 * np.asarray(r['M'][1]), 3).tolist()))
        diff = max(max(abs(d[m][0] - n[m][0]), np.max(np.abs(np.asarray(d[m][1]) - np.asarray(n[m][1]))))
                   for m in 'EMH') * 100
        worst = max(worst, diff)
        inside = all(bounds[m][0][0] - 1e-12 <= d[m][0] <= bounds[m][1][0] + 1e-12
                     and np.all(np.asarray(bounds[m][0][1]) - 1e-12 <= np.asarray(d[m][1]))
                     and np.all(np.asarray(d[m][1]) <= np.asarray(bounds[m][1][1]) + 1e-12) for m in 'EMH')
        ok &= inside
        print('  difference to numpy: %.2e points; dir4j %s the range float32 rounding leaves open (scores within '
              '%g)' % (diff, 'within' if inside else 'OUTSIDE', EPS))
        print('  time: dir4j %.1f s (its JVM start included), numpy %.1f s (after its imports); '
              'peak RSS: dir4j %.0f MiB, numpy %.0f MiB' % (dsec, nsec, drss, nrss))
    print('\nparity: %s (largest difference to numpy %.2e points)' % ('OK' if ok else 'FAILED', worst))
    if not a.keep:
        shutil.rmtree(a.work)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()

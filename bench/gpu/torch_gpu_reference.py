#!/usr/bin/env python3
"""PyTorch on the GPU side-by-side workloads (issues #3, #4, #5, #7): the reference figures the CUDA
backend of dir4j is compared with.

On the GPU machine (PyTorch 2.11, CUDA 13, H200), through bench/gpu/steps/20-torch-reference.sh:
    env -u LD_LIBRARY_PATH python3 bench/gpu/torch_gpu_reference.py --budget-s 140
Here, to check the script end to end on the CPU (Debian's PyTorch 1.13):
    /usr/bin/python3 bench/gpu/torch_gpu_reference.py --tiny

Prints one line per figure, exactly `REF <workload>: <value> <unit>`, and writes all figures (with
the sizes and settings behind them) to $OUT_DIR/torch_gpu_reference.json (default /tmp), rewritten
after every workload so that a killed run keeps what it measured. Workload names carry the sizes
actually run, so --tiny figures never pass for full-size ones.

Timing: CUDA events around each call after warm-up calls (perf_counter plus synchronize for the
tiny-op loop), the median of several repeats. Workloads (--only, comma-separated):
  copy        clone of a 1 GiB fp32 tensor, add 2x1 GiB -> out, per-channel bias add
              x[64,2048,32,32] + b[1,2048,1,1] -> out; GB/s = bytes read + written / time
  launch      a 4-float add queued back to back (out=), microseconds per op, eager
  sgemm       4096^3 strict fp32 and TF32, TFLOP/s (2 m n k flops)
  conv        ResNet-101 layer3 3x3 conv 256->256, 32x32, batch 64, TF32, cudnn.benchmark:
              forward and forward+backward (data and weight grads) NCHW, forward channels_last
  gem         GeM 64x2048x32x32 (x.clamp(min=1e-6).pow(p).mean((-2,-1)).pow(1/p), p a learnable
              tensor 3.0): forward (no_grad) and forward+backward (grads of x and p), eager
  gem_compile the same under torch.compile, in a child process bounded by --compile-timeout-s
              (on by default on CUDA, off with --no-compile; absent in torch 1.13: skipped)
  aploss      naver/dirtorch's APLoss (Conv1d quantiser with fixed weights, nq=20 bins on [0,1]) on
              S = D D^T, D = L2-normalised random Nx2048, 4 images per class; forward+backward
              including the GEMMs, strict fp32 GEMMs, N=4096 and 8192: ms, and peak memory beyond
              the inputs (max_memory_allocated, GiB)
  aploss_compile  the same under torch.compile (not in the default set: DESIGN.md has these)
  resnet      ResNet-101-GeM-FC (torchvision trunk, GeM p=3, Linear 2048->2048, L2 normalise),
              TF32, cudnn.benchmark: training step (SGD, momentum 0.9) batch 16 at 512x512 and
              inference batch 32 at 224x224, channels_last and NCHW; img/s
  multistage  the paper's multistage back-propagation: stage 1 descriptors of all N images under
              no_grad in sub-batches, stage 2 AP loss (nq=20) and dL/dD, stage 3 each sub-batch
              recomputed with grad and backward of its slice of dL/dD, one optimiser step; N=4096,
              512x512, sub-batch 64, TF32, channels_last; img/s = N / step time
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

GiB = float(1 << 30)
ALL = ["copy", "launch", "sgemm", "conv", "gem", "aploss", "resnet", "multistage", "gem_compile"]
OPTIONAL = ["aploss_compile"]


class Run:
    """Device, sizes, the figures measured so far, and the wall-clock budget."""

    def __init__(self, args):
        self.args = args
        self.dev = torch.device(args.device)
        self.cuda = self.dev.type == "cuda"
        self.start = time.time()
        self.results = {}
        self.meta = {}

    def remaining(self):
        return self.args.budget_s - (time.time() - self.start)

    def report(self, name, value, unit, **info):
        print("REF %s: %.4g %s" % (name, value, unit), flush=True)
        self.results[name] = dict(value=float(value), unit=unit, **info)
        self.save()

    def save(self):
        path = os.path.join(self.args.out_dir, self.args.json_name)
        doc = dict(meta=self.meta, results=self.results)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
        os.replace(tmp, path)

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def time_ms(self, fn, warmup=None, reps=None):
        """Median milliseconds of fn() over reps calls, after warmup calls."""
        warmup = self.args.warmup if warmup is None else warmup
        reps = self.args.reps if reps is None else reps
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(reps):
            if self.cuda:
                a = torch.cuda.Event(enable_timing=True)
                b = torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                times.append(a.elapsed_time(b))
            else:
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e3)
        return float(np.median(times))

    def free(self):
        self.sync()
        if self.cuda:
            torch.cuda.empty_cache()


def set_tf32(matmul, conv):
    """Turns TF32 on or off for cuBLAS matmuls and cuDNN convolutions (the 2.9+ API where it
    exists, never both APIs: PyTorch refuses a mix)."""
    m = torch.backends.cuda.matmul
    try:  # torch 1.13's matmul object raises AssertionError, not AttributeError, for a new name
        new_api = isinstance(m.fp32_precision, str)
    except Exception:
        new_api = False
    if new_api:
        m.fp32_precision = "tf32" if matmul else "ieee"
        torch.backends.cudnn.conv.fp32_precision = "tf32" if conv else "ieee"
    else:
        m.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = conv


# ---------------------------------------------------------------------------------------- copy
def bench_copy(run):
    t = run.args.tiny
    n = (1 << 20) if t else (1 << 28)  # floats: 4 MiB / 1 GiB
    a = torch.rand(n, device=run.dev)
    b = torch.rand(n, device=run.dev)
    ms = run.time_ms(lambda: a.clone())
    run.report("copy_clone_%dMiB" % (n * 4 >> 20), 2 * n * 4 / ms / 1e6, "GB/s", ms=ms,
               bytes=2 * n * 4)
    out = torch.empty_like(a)
    ms = run.time_ms(lambda: torch.add(a, b, out=out))
    run.report("add_2x%dMiB" % (n * 4 >> 20), 3 * n * 4 / ms / 1e6, "GB/s", ms=ms, bytes=3 * n * 4)
    del a, b, out
    shape = (2, 64, 16, 16) if t else (64, 2048, 32, 32)
    x = torch.rand(*shape, device=run.dev)
    bias = torch.rand(1, shape[1], 1, 1, device=run.dev)
    o = torch.empty_like(x)
    ms = run.time_ms(lambda: torch.add(x, bias, out=o))
    nbytes = 2 * x.numel() * 4 + bias.numel() * 4
    run.report("bias_add_%s" % "x".join(map(str, shape)), nbytes / ms / 1e6, "GB/s", ms=ms,
               bytes=nbytes)
    del x, bias, o
    run.free()


# -------------------------------------------------------------------------------------- launch
def bench_launch(run):
    a = torch.rand(4, device=run.dev)
    b = torch.rand(4, device=run.dev)
    c = torch.empty_like(a)
    n = 2000 if run.args.tiny else 20000
    for _ in range(200):
        torch.add(a, b, out=c)
    per_op = []
    for _ in range(5):
        run.sync()
        t = time.perf_counter()
        for _ in range(n):
            torch.add(a, b, out=c)
        run.sync()
        per_op.append((time.perf_counter() - t) / n * 1e6)
    run.report("launch_tiny_add", float(np.median(per_op)), "us/op", ops=n)


# --------------------------------------------------------------------------------------- sgemm
def bench_sgemm(run):
    n = 256 if run.args.tiny else 4096
    a = torch.randn(n, n, device=run.dev)
    b = torch.randn(n, n, device=run.dev)
    c = torch.empty(n, n, device=run.dev)
    flops = 2.0 * n ** 3
    for tf32 in (False, True):
        set_tf32(tf32, True)
        ms = run.time_ms(lambda: torch.mm(a, b, out=c))
        run.report("sgemm%d_%s" % (n, "tf32" if tf32 else "fp32"), flops / ms / 1e9, "TFLOP/s", ms=ms)
    set_tf32(False, True)
    del a, b, c
    run.free()


# ---------------------------------------------------------------------------------------- conv
def bench_conv(run):
    t = run.args.tiny
    bsz, ch, hw = (2, 32, 16) if t else (64, 256, 32)
    set_tf32(False, True)
    torch.backends.cudnn.benchmark = True
    conv = nn.Conv2d(ch, ch, 3, padding=1, bias=False).to(run.dev)
    x = torch.randn(bsz, ch, hw, hw, device=run.dev)
    flops = 2.0 * bsz * ch * hw * hw * ch * 9
    tag = "conv3x3_%dto%d_b%d_%dx%d" % (ch, ch, bsz, hw, hw)
    with torch.no_grad():
        ms = run.time_ms(lambda: conv(x))
    run.report(tag + "_fwd", flops / ms / 1e9, "TFLOP/s", ms=ms, tf32=True, layout="NCHW")
    xg = x.clone().requires_grad_(True)
    g = torch.randn(bsz, ch, hw, hw, device=run.dev)

    def fwd_bwd():
        conv.weight.grad = None
        xg.grad = None
        conv(xg).backward(g)
    ms = run.time_ms(fwd_bwd)
    run.report(tag + "_fwdbwd", 3 * flops / ms / 1e9, "TFLOP/s", ms=ms, tf32=True, layout="NCHW",
               note="forward + grad of input + grad of weight: 3x the forward flops")
    conv_cl = conv.to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ms = run.time_ms(lambda: conv_cl(x_cl))
    run.report(tag + "_fwd_cl", flops / ms / 1e9, "TFLOP/s", ms=ms, tf32=True, layout="channels_last")
    del conv, conv_cl, x, xg, g, x_cl
    run.free()


# ----------------------------------------------------------------------------------------- GeM
def gem(x, p, eps=1e-6):
    return x.clamp(min=eps).pow(p).mean((-2, -1)).pow(1.0 / p)


def gem_shape(run):
    return (2, 64, 8, 8) if run.args.tiny else (64, 2048, 32, 32)


def bench_gem(run, compiled=False):
    shape = gem_shape(run)
    x = torch.rand(*shape, device=run.dev).requires_grad_(True)
    p = torch.full((1,), 3.0, device=run.dev, requires_grad=True)
    g = torch.rand(shape[0], shape[1], device=run.dev)
    fn = gem
    suffix = ""
    if compiled:
        fn = torch.compile(gem)
        suffix = "_compile"
        t0 = time.time()
        with torch.no_grad():
            fn(x, p)
        fn(x, p).backward(g)
        run.sync()
        run.meta["gem_compile_s"] = time.time() - t0
        print("# GeM compiled in %.1f s" % (time.time() - t0), flush=True)
    tag = "gem_%s" % "x".join(map(str, shape))
    with torch.no_grad():
        ms = run.time_ms(lambda: fn(x, p))
    run.report(tag + "_fwd" + suffix, ms, "ms", eager=not compiled)

    def fwd_bwd():
        x.grad = None
        p.grad = None
        fn(x, p).backward(g)
    ms = run.time_ms(fwd_bwd)
    run.report(tag + "_fwdbwd" + suffix, ms, "ms", eager=not compiled, grads="x and p")
    del x, p, g
    run.free()


# ------------------------------------------------------------------------------------- AP loss
class APLoss(nn.Module):
    """naver/dirtorch's APLoss (dirtorch/loss.py), the reference formulation: a Conv1d(1, 2nq, 1)
    with fixed weights quantises every score into nq triangular bins on [min, max] (the N x 2nq x M
    tensor is what costs memory); precision and recall per bin from the cumulated histograms;
    returns 1 - mAP."""

    def __init__(self, nq=20, vmin=0.0, vmax=1.0):
        super().__init__()
        self.nq = nq
        a = (nq - 1) / (vmax - vmin)
        q = nn.Conv1d(1, 2 * nq, kernel_size=1, bias=True)
        with torch.no_grad():
            # first half: lines through (vmin+x, 1) and (vmin+x+1/a, 0), x = {nq-1..0}*gap/(nq-1)
            q.weight[:nq] = -a
            q.bias[:nq] = torch.from_numpy(a * vmin + np.arange(nq, 0, -1)).float()
            # second half: lines through (vmin+x, 1) and (vmin+x-1/a, 0)
            q.weight[nq:] = a
            q.bias[nq:] = torch.from_numpy(np.arange(2 - nq, 2, 1) - a * vmin).float()
            # first and last bins: horizontal lines at 1
            q.weight[0] = q.weight[-1] = 0
            q.bias[0] = q.bias[-1] = 1
        q.requires_grad_(False)
        self.quantizer = q

    def forward(self, x, label):
        n, m = x.shape
        q = self.quantizer(x.unsqueeze(1))
        q = torch.min(q[:, :self.nq], q[:, self.nq:]).clamp(min=0)  # N x Q x M
        nbs = q.sum(dim=-1)
        rec = (q * label.view(n, 1, m).float()).sum(dim=-1)
        prec = rec.cumsum(dim=-1) / (1e-16 + nbs.cumsum(dim=-1))
        rec = rec / rec.sum(dim=-1).unsqueeze(1)
        ap = (prec * rec).sum(dim=-1)
        return 1 - ap.mean()


def ap_inputs(run, n, dim, per_class=4):
    gen = torch.Generator().manual_seed(n)
    d = F.normalize(torch.randn(n, dim, generator=gen), dim=1).to(run.dev)
    cls = torch.randperm(n, generator=gen) // per_class
    label = (cls.unsqueeze(0) == cls.unsqueeze(1)).to(run.dev)
    return d, label


def bench_aploss(run, compiled=False):
    t = run.args.tiny
    dim = 64 if t else 2048
    nq = 20
    crit = APLoss(nq, 0.0, 1.0).to(run.dev)
    set_tf32(False, True)  # strict fp32 GEMMs, as DESIGN.md's anchors
    loss_fn = crit
    suffix = ""
    if compiled:
        loss_fn = torch.compile(crit)
        suffix = "_compile"
    for n in ([64, 128] if t else [4096, 8192]):
        d, label = ap_inputs(run, n, dim)
        d.requires_grad_(True)

        def step():
            d.grad = None
            s = d @ d.t()
            loss_fn(s, label).backward()
        if compiled:
            t0 = time.time()
            step()
            run.sync()
            print("# AP loss N=%d compiled in %.1f s" % (n, time.time() - t0), flush=True)
        if run.cuda:
            run.sync()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        step()
        peak = (torch.cuda.max_memory_allocated() - base) / GiB if run.cuda else float("nan")
        ms = run.time_ms(step, warmup=1, reps=max(3, run.args.reps // 2))
        tag = "aploss_fwdbwd_n%d_d%d_nq%d" % (n, dim, nq)
        run.report(tag + suffix, ms, "ms", gemm="fp32 strict", eager=not compiled,
                   loss="dirtorch APLoss, conv1d quantiser, bins on [0,1]")
        if run.cuda:
            run.report(tag + suffix + "_peak", peak, "GiB",
                       note="max_memory_allocated beyond the inputs (D, labels), D.grad included")
        del d, label
        run.free()


# ------------------------------------------------------------------------------ ResNet-GeM-FC
class GeM(nn.Module):
    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.full((1,), p))
        self.eps = eps

    def forward(self, x):
        return gem(x, self.p, self.eps)


class ResNetGemFc(nn.Module):
    """torchvision ResNet-101 trunk (no avgpool, no fc), GeM p=3, Linear 2048->2048 with bias,
    L2 normalisation: the paper's ResNet-101-GeM-FC, random weights."""

    def __init__(self, depth="resnet101"):
        super().__init__()
        import torchvision
        ctor = getattr(torchvision.models, depth)
        try:
            net = ctor(weights=None)
        except TypeError:
            net = ctor(pretrained=False)
        self.trunk = nn.Sequential(*list(net.children())[:-2])
        self.pool = GeM(3.0)
        self.fc = nn.Linear(2048, 2048, bias=True)

    def forward(self, x):
        return F.normalize(self.fc(self.pool(self.trunk(x))), dim=-1)


def make_net(run, channels_last):
    net = ResNetGemFc().to(run.dev)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def images(run, n, size, channels_last, seed=0):
    gen = torch.Generator(device=run.dev).manual_seed(seed) if run.cuda else torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, device=run.dev, generator=gen)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def descriptor_loss(desc, target):
    """a loss on the descriptors: 1 - mean cosine to fixed random unit targets."""
    return 1 - (desc * target).sum(dim=1).mean()


def bench_resnet(run):
    t = run.args.tiny
    set_tf32(True, True)
    torch.backends.cudnn.benchmark = True
    tb, ts = (2, 32) if t else (16, 512)
    ib, isz = (2, 32) if t else (32, 224)
    for cl in (True, False):
        layout = "cl" if cl else "nchw"
        net = make_net(run, cl)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        x = images(run, tb, ts, cl)
        target = F.normalize(torch.randn(tb, 2048, device=run.dev), dim=1)
        net.train()

        def train_step():
            opt.zero_grad(set_to_none=True)
            descriptor_loss(net(x), target).backward()
            opt.step()
        ms = run.time_ms(train_step, warmup=1 if t else 5, reps=2 if t else 10)
        run.report("resnet101gemfc_train_b%d_%d_%s" % (tb, ts, layout), tb / ms * 1e3, "img/s",
                   ms=ms, tf32=True, optimiser="SGD momentum 0.9", bn="train mode")
        del x, target, opt
        net.eval()
        x = images(run, ib, isz, cl)
        with torch.no_grad():
            ms = run.time_ms(lambda: net(x), warmup=1 if t else 5, reps=2 if t else 20)
        run.report("resnet101gemfc_infer_b%d_%d_%s" % (ib, isz, layout), ib / ms * 1e3, "img/s",
                   ms=ms, tf32=True)
        del net, x
        run.free()


# ------------------------------------------------------------------------------- multistage
def multistage_step(run, net, opt, crit, imgs, label, sub):
    """One optimiser step of multistage back-propagation over all len(imgs) images."""
    n = imgs.shape[0]
    with torch.no_grad():  # stage 1: every descriptor, no graph kept
        desc = torch.cat([net(imgs[i:i + sub]) for i in range(0, n, sub)])
    desc.requires_grad_(True)  # stage 2: AP loss over the whole batch and dL/dD
    loss = crit(desc @ desc.t(), label)
    loss.backward()
    grad = desc.grad
    opt.zero_grad(set_to_none=True)
    for i in range(0, n, sub):  # stage 3: recompute each sub-batch with grad, back-propagate its slice
        net(imgs[i:i + sub]).backward(grad[i:i + sub])
    opt.step()
    return float(loss.detach())


def bench_multistage(run):
    a = run.args
    n, size, sub = (8, 32, 4) if a.tiny else (a.ms_n, a.ms_size, a.ms_sub_batch)
    cl = not a.ms_nchw
    set_tf32(True, True)
    torch.backends.cudnn.benchmark = True
    net = make_net(run, cl)
    # BatchNorm in eval mode: stage 1 and stage 3 must compute the same descriptors (as in
    # retrieval fine-tuning, where BN statistics stay frozen); gradients flow to every weight.
    net.eval()
    opt = torch.optim.Adam(net.parameters(), lr=1e-6)
    crit = APLoss(20, 0.0, 1.0).to(run.dev)
    imgs = images(run, n, size, cl, seed=1)
    cls = torch.randperm(n) // 4
    label = (cls.unsqueeze(0) == cls.unsqueeze(1)).to(run.dev)
    # warm-up: the same sub-batch shapes (cuDNN autotuning, allocator) on 2 sub-batches, then
    # the full-size AP loss once
    nw = min(n, 2 * sub)
    cls_w = torch.arange(nw) // 4
    label_w = (cls_w.unsqueeze(0) == cls_w.unsqueeze(1)).to(run.dev)
    if run.cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    multistage_step(run, net, opt, crit, imgs[:nw], label_w, sub)
    d = F.normalize(torch.randn(n, 2048, device=run.dev), dim=1).requires_grad_(True)
    crit(d @ d.t(), label).backward()
    del d
    run.sync()
    print("# multistage warm-up (%d images) %.1f s" % (nw, time.time() - t0), flush=True)
    times = []
    for k in range(a.ms_steps):
        if k > 0 and run.remaining() < 1.3 * times[-1]:
            print("# multistage: budget left %.0f s, stopping after %d timed steps" % (run.remaining(), k),
                  flush=True)
            break
        run.sync()
        t0 = time.perf_counter()
        loss = multistage_step(run, net, opt, crit, imgs, label, sub)
        run.sync()
        times.append(time.perf_counter() - t0)
        print("# multistage step %d: %.2f s, loss %.4f" % (k, times[-1], loss), flush=True)
    s = float(np.median(times))
    peak = torch.cuda.max_memory_allocated() / GiB if run.cuda else float("nan")
    run.report("multistage_n%d_%d_sb%d_%s" % (n, size, sub, "cl" if cl else "nchw"), n / s, "img/s",
               step_s=s, steps=len(times), tf32=True, optimiser="Adam", bn="eval mode (frozen)",
               peak_gib=peak, nq=20)
    del net, opt, imgs, label
    run.free()


# ------------------------------------------------------------------------------ compile child
def compile_available():
    return hasattr(torch, "compile")


def run_child(run, name, timeout):
    """Runs one compiled workload in a child process (its own session, so a stuck compile and
    the compile workers it spawned are killed together) and takes over its REF lines."""
    args = [sys.executable, os.path.abspath(__file__), "--only", name, "--device", run.args.device,
            "--json-name", "child_%s.json" % name, "--out-dir", run.args.out_dir, "--budget-s", str(timeout),
            "--in-child"]
    if run.args.tiny:
        args.append("--tiny")
    child_json = os.path.join(run.args.out_dir, "child_%s.json" % name)
    if os.path.exists(child_json):
        os.remove(child_json)  # never take over an earlier run's figures
    with tempfile.TemporaryFile(mode="w+") as log:
        child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            rc = None
        log.seek(0)
        text = log.read()
    for line in text.splitlines():
        if not line.startswith("REF "):
            print("#   [%s] %s" % (name, line), flush=True)
    try:
        with open(child_json) as f:
            child_doc = json.load(f)
    except (OSError, ValueError):
        child_doc = {"results": {}, "meta": {}}
    for key, val in child_doc["results"].items():
        info = {k: v for k, v in val.items() if k not in ("value", "unit")}
        run.report(key, val["value"], val["unit"], **info)
    run.meta.update({name + "." + k: v for k, v in child_doc["meta"].items()})
    if rc is None:
        print("# %s: skipped, not done within %.0f s" % (name, timeout), flush=True)
        run.meta[name] = "timed out after %.0f s" % timeout
    elif rc != 0:
        print("# %s: failed (exit %d), skipped" % (name, rc), flush=True)
        run.meta[name] = "failed, exit %d" % rc
    run.save()


def bench_compiled(run, name):
    if not compile_available():
        print("# %s: torch %s has no torch.compile, skipped" % (name, torch.__version__), flush=True)
        run.meta[name] = "no torch.compile"
        return
    if run.args.in_child:
        (bench_gem if name == "gem_compile" else bench_aploss)(run, compiled=True)
        return
    if not run.args.compile:
        print("# %s: --no-compile, skipped" % name, flush=True)
        return
    timeout = min(run.args.compile_timeout_s, run.remaining() - 3)
    if timeout < 10:
        print("# %s: skipped, %.0f s of budget left" % (name, run.remaining()), flush=True)
        run.meta[name] = "skipped, out of budget"
        return
    run_child(run, name, timeout)


WORKLOADS = {
    "copy": bench_copy, "launch": bench_launch, "sgemm": bench_sgemm, "conv": bench_conv,
    "gem": bench_gem, "aploss": bench_aploss, "resnet": bench_resnet, "multistage": bench_multistage,
    "gem_compile": lambda run: bench_compiled(run, "gem_compile"),
    "aploss_compile": lambda run: bench_compiled(run, "aploss_compile"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(ALL),
                    help="comma-separated workloads, run in this order (all: %s; also %s)"
                    % (",".join(ALL), ",".join(OPTIONAL)))
    ap.add_argument("--tiny", action="store_true", help="small sizes on the CPU, to check the script")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda, or cpu with --tiny)")
    ap.add_argument("--out-dir", default=os.environ.get("OUT_DIR", "/tmp"))
    ap.add_argument("--json-name", default="torch_gpu_reference.json")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up calls (default 5, tiny 1)")
    ap.add_argument("--reps", type=int, default=None, help="timed calls (default 20, tiny 3)")
    ap.add_argument("--budget-s", type=float, default=140.0,
                    help="wall-clock budget: the compiled workloads and extra multistage steps are "
                         "dropped when it runs out")
    ap.add_argument("--compile", dest="compile", action="store_true", default=None,
                    help="run the torch.compile workloads (default: on with CUDA)")
    ap.add_argument("--no-compile", dest="compile", action="store_false")
    ap.add_argument("--compile-timeout-s", type=float, default=40.0)
    ap.add_argument("--ms-n", type=int, default=4096, help="multistage: images per optimiser step")
    ap.add_argument("--ms-size", type=int, default=512, help="multistage: image side")
    ap.add_argument("--ms-sub-batch", type=int, default=64, help="multistage: sub-batch")
    ap.add_argument("--ms-steps", type=int, default=2, help="multistage: timed steps (after warm-up)")
    ap.add_argument("--ms-nchw", action="store_true", help="multistage: NCHW instead of channels_last")
    ap.add_argument("--in-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.device is None:
        args.device = "cpu" if args.tiny else "cuda"
    if args.warmup is None:
        args.warmup = 1 if args.tiny else 5
    if args.reps is None:
        args.reps = 3 if args.tiny else 20
    if args.compile is None:
        args.compile = args.device.startswith("cuda")
    names = [s for s in args.only.split(",") if s]
    unknown = [s for s in names if s not in WORKLOADS]
    if unknown:
        ap.error("unknown workload(s) %s; known: %s" % (",".join(unknown), ",".join(WORKLOADS)))
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("torch %s sees no CUDA device; run with --tiny (or --device cpu) on a machine "
                 "without one" % torch.__version__)
    os.makedirs(args.out_dir, exist_ok=True)
    if args.tiny:
        torch.set_num_threads(2)
    torch.manual_seed(0)
    run = Run(args)
    run.meta.update(torch=torch.__version__, device=args.device, tiny=args.tiny, warmup=args.warmup,
                    reps=args.reps, cuda=getattr(torch.version, "cuda", None), started=time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if run.cuda:
        run.meta.update(gpu=torch.cuda.get_device_name(), cudnn=torch.backends.cudnn.version())
    print("# torch %s, device %s%s, cudnn %s" % (torch.__version__, args.device,
          " (%s)" % run.meta["gpu"] if run.cuda else "", run.meta.get("cudnn")), flush=True)
    failed = []
    for name in names:
        t0 = time.time()
        try:
            WORKLOADS[name](run)
        except Exception as e:  # one failing workload must not cost the others their figures
            failed.append(name)
            run.meta["error." + name] = "%s: %s" % (type(e).__name__, e)
            print("# %s FAILED: %s: %s" % (name, type(e).__name__, e), flush=True)
            import traceback
            traceback.print_exc()
            run.free()
        print("# %s: %.1f s (%.0f s of the budget left)" % (name, time.time() - t0, run.remaining()),
              flush=True)
    run.meta["wall_s"] = time.time() - run.start
    run.save()
    print("# figures in %s" % os.path.join(args.out_dir, args.json_name), flush=True)
    if failed:
        print("# failed: %s" % ",".join(failed), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

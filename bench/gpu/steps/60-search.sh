#!/usr/bin/env bash
# timeout: 90
# Exact top-k search, 100,000 x 2048 unit descriptors, 1,000 queries, k = 100: dir4j with the
# similarity products and the selection on the GPU (blocks of 512 x 8192 scores, then the default
# 512 x 131,072) and on the CPU, then PyTorch's
# torch.mm + torch.topk on the GPU (TF32 off) as the reference.
set -u
$DIR4J_JAVA dir4j.bench.gpu.ExactSearchGpuBench 100000 2048 1000 100
env -u LD_LIBRARY_PATH python3 - <<'PY'
import time, torch
torch.backends.cuda.matmul.allow_tf32 = False
g = torch.Generator(device="cuda").manual_seed(1)
db = torch.nn.functional.normalize(torch.randn(100000, 2048, device="cuda", generator=g), dim=1)
q = torch.nn.functional.normalize(torch.randn(1000, 2048, device="cuda", generator=g), dim=1)
def run():
    out = []
    for i in range(0, 1000, 512):
        s = q[i:i + 512] @ db.t()
        v, ix = torch.topk(s, 100, dim=1)
        out.append((v.cpu(), ix.cpu()))
    return out
run(); torch.cuda.synchronize()
best = 1e9
for _ in range(3):
    t = time.perf_counter(); run(); torch.cuda.synchronize(); best = min(best, time.perf_counter() - t)
print(f"REF exact search N=100000 D=2048 Q=1000 k=100 torch.mm+topk on cuda: {1000 / best:.1f} queries/s ({best:.3f} s)")
PY

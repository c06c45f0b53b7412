#!/usr/bin/env bash
# timeout: 150
# Describing images of many sizes one at a time (ResNet-101-GeM-FC, TF32, 24 distinct sizes with a
# longest side of 1024, then the same sizes again): dir4j with cuDNN's measured algorithm search per
# new shape (the default) and with its heuristics, then PyTorch eager with cudnn.benchmark on and off
# on the same sizes as the reference. New sizes show what a search costs per image; seen sizes the
# steady state.
set -u
$DIR4J_JAVA dir4j.bench.gpu.DescribeSizesGpuBench --count 24 --max-side 1024
$DIR4J_JAVA -Ddir4j.cuda.cudnn.search=heuristic dir4j.bench.gpu.DescribeSizesGpuBench --count 24 --max-side 1024
env -u LD_LIBRARY_PATH python3 - <<'PY'
import random, statistics, time, torch, torchvision
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
rng = random.Random(1)
sizes, seen = [], set()
while len(sizes) < 24:  # the same rule as the Java bench (not the same draws)
    other = 512 + rng.randrange(513)
    hw = (other, 1024) if rng.random() < 0.5 else (1024, other)
    if hw not in seen:
        seen.add(hw); sizes.append(hw)
trunk = torch.nn.Sequential(*list(torchvision.models.resnet101().children())[:-2]).cuda().eval()
fc = torch.nn.Linear(2048, 2048).cuda()
def describe(h, w):
    x = torch.randn(1, 3, h, w, device="cuda")
    t = time.perf_counter()
    with torch.no_grad():
        f = trunk(x).clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3)
        d = torch.nn.functional.normalize(fc(f), dim=1).cpu()
    return (time.perf_counter() - t) * 1e3
for bench in (True, False):
    torch.backends.cudnn.benchmark = bench
    describe(511, 511)
    new = [describe(h, w) for h, w in sizes]
    again = [describe(h, w) for h, w in sizes]
    tag = f"describe resnet101 24 sizes up to 1024 torch eager cudnn.benchmark={bench}"
    print(f"REF {tag}, new sizes: {statistics.median(new):.1f} ms per image (median; mean {statistics.mean(new):.1f})")
    print(f"REF {tag}, seen sizes: {statistics.median(again):.1f} ms per image (median; mean {statistics.mean(again):.1f})")
PY

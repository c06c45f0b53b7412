#!/usr/bin/env bash
# timeout: 260
# ResNet-101-GeM-FC on cuda:0, TF32 (dir4j.bench.gpu.ResNetGpuBench): inference b32 224×224 (the module,
# then the trunk compiled by RetrievalNet.inference(): cuDNN channels-last, epilogue fused; then that
# recorded as a CUDA graph and replayed) and a
# training step b16 512×512, NCHW and channels-last (RetrievalNet.channelsLast), images per second,
# and the caching allocator's peak. Targets (PyTorch 2.11 channels_last on the H200): inference
# ≥ 4,600 img/s (the compiled one), train ≥ 340 img/s (the channels-last one).
# Run by bench/gpu/run_gpu_checks.sh with DIR4J_JAVA (java, JVM flags, -cp) and OUT_DIR; RESNET_ARGS
# (e.g. "--skip-infer", "--warmup-seconds 3 --profile-steps 0") go to the bench.
set -uo pipefail
out=${OUT_DIR:-/tmp}
# shellcheck disable=SC2086 # DIR4J_JAVA is a command line
# .txt, not .log: run_gpu_checks.sh puts every steps/*.log into the report (this is 30-resnet.log again)
$DIR4J_JAVA dir4j.bench.gpu.ResNetGpuBench ${RESNET_ARGS:-} "$@" 2>&1 | tee "$out/resnet-gpu-bench.txt"
exit "${PIPESTATUS[0]}"

#!/usr/bin/env bash
# One picture through the extraction's input side, one thread: dir4j (JMH ImagePipelineBench:
# JPEG decode by libjpeg-turbo where installed, then again by TwelveMonkeys over the JDK's libjpeg;
# PIL-compatible bilinear resize, ImageNet normalisation) beside PIL +
# torchvision (bench/torch_cpu_image.py), on the same JPEG file. Build first:
#   mvn -q -B -o package -pl kernels,engine,nn,retrieval,bench -Dmaven.test.skip=true
# Usage: [IMAGE=photo.jpg] [SIZE=512] bench/image_side_by_side.sh
#   IMAGE  a JPEG to time (default: a 1024x768 synthetic one written by PIL at quality 90)
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
case "${1:-}" in
  "") ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/bench/common.sh"   # java: a JDK 25; jmh_failed
jar="$root/bench/target/benchmarks.jar"
[[ -f "$jar" ]] || { echo "no $jar: build the bench module first (see the header)" >&2; exit 1; }
size="${SIZE:-512}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
image="${IMAGE:-}"
echo "== $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "== PIL + torchvision (one thread; median ms per call)"
if [ -z "$image" ]; then
  image="$tmp/synthetic.jpg"
  /usr/bin/python3 "$root/bench/torch_cpu_image.py" --write "$image" --size "$size"
else
  /usr/bin/python3 "$root/bench/torch_cpu_image.py" --image "$image" --size "$size"
fi
# JMH holds /tmp/jmh.lock: if another benchmark is running, this fails rather than share the cores.
# Twice: JPEG decoding by libjpeg-turbo where libturbojpeg is installed (dir4j's default), then by the
# JDK's libjpeg through TwelveMonkeys (-Ddir4j.turbojpeg=false).
for decoder in default false; do
  if [ "$decoder" = default ]; then
    echo "== dir4j JMH, JPEG decoder: $("$java" --enable-native-access=ALL-UNNAMED -cp "$jar" \
      dir4j.bench.JpegDecoderName 2>/dev/null || echo '?') (ms per call)"
    extra=()
  else
    echo "== dir4j JMH, JPEG decoder: the JDK's (-Ddir4j.turbojpeg=false) (ms per call)"
    extra=(-jvmArgsAppend -Ddir4j.turbojpeg=false)
  fi
  "$java" -jar "$jar" ImagePipelineBench -p image="$image" -p size="$size" -wi 3 -w 1 -i 5 -r 1 -f 1 \
    "${extra[@]}" >"$tmp/jmh.txt" 2>&1 || true
  grep -q '^ImagePipelineBench' "$tmp/jmh.txt" || { jmh_failed "$tmp/jmh.txt"; exit 1; }
  grep -E '^(Benchmark|ImagePipelineBench)' "$tmp/jmh.txt"
done
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"

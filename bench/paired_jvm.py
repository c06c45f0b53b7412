"""The JVM half of the paired benchmarks (resnet_paired.py, train_paired.py): one warm JVM running a
dir4j.bench main class from bench/target/benchmarks.jar, which reads one request per line on stdin
and answers each with one line (a median in milliseconds, or "none")."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PairedJvm:
    def __init__(self, main_class, *args, jvm_options=(), jar=None):
        """jar: another benchmarks.jar (say, another commit's build) instead of this checkout's."""
        java = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"), "bin", "java")
        self.proc = subprocess.Popen(
            [java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
             "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Xmx8g", *jvm_options, "-cp",
             jar or os.path.join(ROOT, "bench", "target", "benchmarks.jar"), "dir4j.bench." + main_class,
             *[str(a) for a in args]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)

    def ask(self, line):
        """Sends one request; the answer as a float, or None for "none"."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.readline().strip()
        if out == "":
            raise RuntimeError("the benchmark JVM exited (rerun with its stderr to see why)")
        return None if out == "none" else float(out)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()

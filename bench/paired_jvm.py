"""The JVM half of the paired benchmarks (resnet_paired.py, train_paired.py): one warm JVM running a
dir4j.bench main class from bench/target/benchmarks.jar, which reads one request per line on stdin
and answers each with one line (a median in milliseconds, or "none")."""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PairedJvm:
    def __init__(self, main_class, *args, jvm_options=(), jar=None):
        """jar: another benchmarks.jar (say, another commit's build) instead of this checkout's."""
        java = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"), "bin", "java")
        jar = jar or os.path.join(ROOT, "bench", "target", "benchmarks.jar")
        if not os.path.isfile(jar):
            sys.exit(f"no {jar}: build the bench module first (mvn -B -q -DskipTests -pl bench -am package)")
        # the JVM's stderr (why it exited; ResNetPaired's note on a missing ONNX model) is kept for messages
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
             "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Xmx8g", *jvm_options, "-cp",
             jar, "dir4j.bench." + main_class, *[str(a) for a in args]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=ROOT)

    def stderr_tail(self, lines=10):
        """The last lines the JVM wrote to stderr, without the JVM's own warnings."""
        self.stderr.flush()
        self.stderr.seek(0)
        text = [l.rstrip() for l in self.stderr if not l.startswith("WARNING:")]
        return "\n".join(text[-lines:])

    def ask(self, line):
        """Sends one request; the answer as a float, or None for "none"."""
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            out = self.proc.stdout.readline().strip()
        except BrokenPipeError:
            out = ""
        if out == "":
            self.proc.wait()
            sys.exit(f"the benchmark JVM exited (status {self.proc.returncode}); its stderr ends:\n"
                     + self.stderr_tail())
        return None if out == "none" else float(out)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()
        self.stderr.close()

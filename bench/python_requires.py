"""The Python modules a bench script needs, checked before it does anything.

The side-by-side scripts run under Debian's /usr/bin/python3, which has PyTorch 1.13, torchvision,
numpy, PIL and scikit-learn; another python3 on the PATH (a pyenv or virtualenv one) often lacks
some of them. Call require() at the top of a script, before those imports:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from python_requires import require  # noqa: E402
    require("torch", "torchvision")

A missing or broken module then stops the script at once with one line that names the interpreter
and the one to use (exit status 2), instead of a traceback, or of a traceback minutes later.
"""
import importlib
import os
import sys

# The import name, and the Debian package that provides it for /usr/bin/python3.
PACKAGES = {
    "numpy": "python3-numpy",
    "torch": "python3-torch",
    "torchvision": "python3-torchvision",
    "PIL": "python3-pil",
    "sklearn": "python3-sklearn",
    "onnx": "python3-onnx",
}


def require(*modules):
    """Imports each module; if any fails, exits with status 2 and a message naming what is missing."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as e:  # ImportError, or a broken install failing inside its own import
            missing.append(f"{name} ({type(e).__name__}: {e})")
    if not missing:
        return
    script = os.path.relpath(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else "this script"
    apt = "apt install " + " ".join(PACKAGES.get(m.split(" ")[0], m.split(" ")[0]) for m in missing)
    if os.path.realpath(sys.executable) == os.path.realpath("/usr/bin/python3"):
        hint = f"Install them for it: {apt}"
    else:
        hint = (f"Run it with /usr/bin/python3 (Debian's PyTorch 1.13 stack), e.g. /usr/bin/python3 {script} ...; "
                f"if that lacks them too: {apt}")
    sys.stderr.write(f"{script}: this Python ({sys.executable}, {sys.version.split()[0]}) cannot import "
                     f"{'; '.join(missing)}.\n{hint}\n")
    sys.exit(2)

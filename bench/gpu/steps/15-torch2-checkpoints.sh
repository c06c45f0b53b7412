#!/usr/bin/env bash
# timeout: 40
# Checkpoints between dir4j and this machine's PyTorch 2.x (the build machine has 1.13 only), on the
# CPU: (1) torch.load, with weights_only=True (2.6's default), of the file dir4j's TorchSave writes
# for TorchSaveTest (nn/src/test/resources/fixtures/checkpoints/dir4j_written.pt); (2) torch.save
# of 2.x (with whatever its zip layout adds) of a state dict with model_options, read by
# `dir4j convert` and written back as a .pt, then torch.load with weights_only=True: every tensor
# equal, dtype included, and the options equal.
set -u
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
env -u LD_LIBRARY_PATH python3 - "$W" <<'PY'
import collections, sys, torch
w = sys.argv[1]
print("torch", torch.__version__)
try:
    c = torch.load("nn/src/test/resources/fixtures/checkpoints/dir4j_written.pt", weights_only=True)
    ok = list(c["state_dict"]) == ["conv.weight", "bn.running_var", "bn.num_batches_tracked", "view"] \
        and c["model_options"]["gemp"] == 3.0 and int(c["state_dict"]["bn.num_batches_tracked"]) == 7
    print("RESULT torch2 loads dir4j's TorchSave file with weights_only=True:", "OK" if ok else "WRONG VALUES")
except Exception as e:
    print("RESULT torch2 loads dir4j's TorchSave file with weights_only=True: FAILED:", repr(e)[:300])
g = torch.Generator().manual_seed(3)
sd = collections.OrderedDict()
sd["conv1.weight"] = torch.randn(4, 3, 3, 3, generator=g)
sd["bn1.running_var"] = torch.rand(4, generator=g, dtype=torch.float64)
sd["bn1.num_batches_tracked"] = torch.tensor(12)
sd["fc.weight"] = torch.randn(6, 8, generator=g).t()  # a view
torch.save({"state_dict": sd, "model_options": {"arch": "resnet18_rmac", "out_dim": 8, "gemp": 3}}, w + "/torch2.pt")
torch.save(sd, w + "/expected.pt")
PY
$DIR4J_JAVA dir4j.retrieval.cli.Main convert --quiet "$W/torch2.pt" "$W/back.pt" || echo "RESULT torch2 checkpoint through dir4j convert: convert FAILED"
env -u LD_LIBRARY_PATH python3 - "$W" <<'PY'
import sys, torch
w = sys.argv[1]
want = torch.load(w + "/expected.pt", weights_only=True)
try:
    back = torch.load(w + "/back.pt", weights_only=True)
    got = back["state_dict"]
    same = list(got) == list(want) and all(got[k].dtype == want[k].dtype and torch.equal(got[k], want[k]) for k in want)
    print("RESULT torch2 checkpoint through dir4j convert and back, weights_only=True:",
          "OK" if same and back["model_options"] == {"arch": "resnet18_rmac", "out_dim": 8, "gemp": 3} else "DIFFERS")
except Exception as e:
    print("RESULT torch2 checkpoint through dir4j convert and back, weights_only=True: FAILED:", repr(e)[:300])
PY

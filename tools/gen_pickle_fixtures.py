#!/usr/bin/env python3
"""Writes tests/fixtures/pickle/: tiny PyTorch checkpoints saved by torch.save, with the values
petrel's restricted unpickler must read from them (expected.json), plus hostile checkpoints it
must refuse. Run where torch is installed (the device machine):

  python3 tools/gen_pickle_fixtures.py OUT_DIR

Checkpoints (torch.save's zip format, default pickle protocol 2 unless noted):
  f32.bin        matrix, vector, 0-dim scalar, empty tensor
  f16.bin        f16 matrix, int64 and bool tensors
  bf16.bin       bf16 matrix
  views.bin      one shared storage seen through views: the base, its transpose, a row (offset),
                 a column slice, a 2-step slice, an expand (stride 0), the base again (memo)
  module.bin     nn.Module.state_dict() (an OrderedDict with _metadata: BUILD opcode)
  proto4.bin     pickle protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE)
  pytorch_model-0000{1,2}-of-00002.bin + pytorch_model.bin.index.json: a sharded pair
Hostile (made by pickling objects whose __reduce__ names the target; nothing is executed here):
  evil_os_system.bin   os.system("echo pwned") via GLOBAL + REDUCE
  evil_exec.bin        builtins.exec(...) nested inside a list
  evil_offset.bin      _rebuild_tensor_v2 with a storage offset past the storage's end
  evil_stride.bin      _rebuild_tensor_v2 whose size/stride reach past the storage's end
"""

import builtins
import collections
import json
import os
import sys

import torch


class Reduce:
    """Pickles as fn(*args) without ever calling it."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def describe(sd):
    return {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                "values": v.detach().float().flatten().tolist()} for k, v in sd.items()}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    expected = {}

    def save(name, sd, **kw):
        torch.save(sd, os.path.join(out, name), **kw)
        expected[name] = describe(sd)

    save("f32.bin", {"w": torch.randn(3, 5), "b": torch.randn(5), "scalar": torch.tensor(2.5),
                     "empty": torch.zeros(0, 4)})
    save("f16.bin", {"w": torch.randn(4, 3).half(), "idx": torch.arange(6),
                     "mask": torch.tensor([True, False, True])})
    save("bf16.bin", {"w": torch.randn(2, 8).bfloat16()})
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    save("views.bin", {"base": base, "t": base.t(), "row": base[2], "cols": base[:, 1:4],
                       "every_other": base[::2, ::3], "expand": base[1, :3].unsqueeze(0).expand(2, 3),
                       "tied": base})
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    save("module.bin", m.state_dict())
    save("proto4.bin", {"w": torch.randn(2, 3), "v": torch.randn(3).half()}, pickle_protocol=4)

    shards = [{"layer.0.w": torch.randn(3, 2), "layer.0.b": torch.randn(3)},
              {"layer.1.w": torch.randn(2, 3).bfloat16()}]
    weight_map, total = {}, 0
    for i, sd in enumerate(shards):
        fname = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        save(fname, sd)
        for k, v in sd.items():
            weight_map[k] = fname
            total += v.numel() * v.element_size()
    with open(os.path.join(out, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    torch.save({"w": Reduce(os.system, ("echo pwned",))}, os.path.join(out, "evil_os_system.bin"))
    torch.save({"w": [Reduce(builtins.exec, ("import os\nos.system('echo pwned')",))]},
               os.path.join(out, "evil_exec.bin"))
    storage = torch.zeros(8).storage()  # a TypedStorage: pickled as a persistent id
    rebuild = torch._utils._rebuild_tensor_v2
    torch.save({"w": Reduce(rebuild, (storage, 100, (4,), (1,), False, collections.OrderedDict()))},
               os.path.join(out, "evil_offset.bin"))
    torch.save({"w": Reduce(rebuild, (storage, 0, (4, 4), (4, 1), False, collections.OrderedDict()))},
               os.path.join(out, "evil_stride.bin"))

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    with open(os.path.join(out, "PROVENANCE.md"), "w") as f:
        f.write("# tests/fixtures/pickle\n\n"
                f"Written by `tools/gen_pickle_fixtures.py` with torch {torch.__version__} "
                f"(Python {sys.version.split()[0]}) on the device machine; see the script's "
                "docstring for what each file holds. `expected.json`: dtype, shape and values "
                "(as float) of every tensor of every non-hostile checkpoint, from the tensors "
                "that were saved.\n")


if __name__ == "__main__":
    main()

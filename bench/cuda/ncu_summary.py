#!/usr/bin/env python3
"""Per-kernel table of one decode step from an `ncu --csv` log (see device_run.sh).

The step is the last forward in the log: from the last token-embedding kernel to the end. Prints, per
kernel name, the launches, total and mean duration (us), DRAM bytes read and achieved bandwidth,
then the step's kernel-time total (graph launch gaps are not included: compare with the step time
decode_batch_bench measured).
"""
import csv
import re
import sys
from collections import OrderedDict


# The model's token embedding (bf16 table) starts each forward; GatherRows also uses the
# embedding kernel, with an f32 table.
MARKER = "EmbeddingKernel<__nv_bfloat16>"


def short(name):
    name = re.sub(r"\(.*$", "", name)            # drop the parameter list
    name = re.sub(r"^void ", "", name)
    name = re.sub(r"petrel::kernels::cuda::(\(anonymous namespace\)::)?", "", name)
    return name[:70]


def main(path):
    rows = []
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        rows.append(r)
    # One row per (kernel launch, metric).
    launches = OrderedDict()
    for r in rows:
        key = int(r["ID"])
        d = launches.setdefault(key, {"name": r["Kernel Name"]})
        val = r["Metric Value"].replace(",", "")
        try:
            v = float(val)
        except ValueError:
            continue
        unit = r.get("Metric Unit", "")
        m = r["Metric Name"]
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3, "second": 1e6,
                 "byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9,
                 "cycle/second": 1.0, "cycle/nsecond": 1e9, "cycle/usecond": 1e6, "Mcycle/second": 1e6,
                 "Gcycle/second": 1e9, "cycle/ns": 1e9, "cycle/us": 1e6}.get(unit, 1.0)
        d[m] = v * scale
    seq = list(launches.values())
    starts = [i for i, d in enumerate(seq) if MARKER in d["name"]]
    step = seq[starts[-1]:] if starts else seq
    agg = OrderedDict()
    for d in step:
        n = short(d["name"])
        a = agg.setdefault(n, [0, 0.0, 0.0])
        a[0] += 1
        a[1] += d.get("gpu__time_duration.sum", 0.0)
        a[2] += d.get("dram__bytes_read.sum", 0.0)
    total = sum(a[1] for a in agg.values())
    print(f"{'kernel':70s} {'n':>4s} {'total us':>9s} {'mean us':>8s} {'MB read':>8s} {'GB/s':>7s}")
    for n, (c, t, b) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        bw = b / (t * 1e-6) / 1e9 if t > 0 else 0
        print(f"{n:70s} {c:4d} {t:9.1f} {t / c:8.2f} {b / 1e6:8.2f} {bw:7.0f}")
    print(f"kernels in the step: {len(step)}, kernel time {total:.1f} us")
    # The per-launch sequence of the first layer (to see the order and each launch).
    print("first 20 launches of the step:")
    for d in step[:20]:
        t = d.get("gpu__time_duration.sum", 0.0)
        b = d.get("dram__bytes_read.sum", 0.0)
        clk = d.get("sm__cycles_elapsed.avg.per_second", 0.0) / 1e6
        print(f"  {short(d['name']):60s} {t:7.2f} us {b / 1e6:7.2f} MB grid {d.get('launch__grid_size', 0):.0f} sm {clk:.0f} MHz")


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Summarise an `nsys stats --report cuda_gpu_trace --format csv` export of a decode run: the GPU
time line of the last N decode steps (a step starts at each Embedding kernel), per step the wall
period, the time kernels were running (union of intervals, so PDL overlap counts once) and the
idle gap before the step's first kernel; per kernel name the mean duration and the mean gap from
the previous kernel's end to its start (negative: it overlapped, PDL).

  python3 bench/cuda/nsys_steps.py trace.csv [steps]
"""
import csv
import sys
from collections import defaultdict


def main():
    path = sys.argv[1]
    want = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    rows = []
    with open(path, newline="") as f:
        lines = [l for l in f if l.strip()]
    # nsys prints a preamble before the CSV header on some versions.
    start = next(i for i, l in enumerate(lines) if l.startswith('"Start') or l.startswith("Start"))
    for r in csv.DictReader(lines[start:]):
        name = r.get("Name", "")
        if not name or "[CUDA mem" in name:
            continue
        s = float(r["Start (ns)"])
        d = float(r["Duration (ns)"])
        rows.append((s, s + d, name))
    rows.sort()
    starts = [i for i, r in enumerate(rows) if "Embedding" in r[2]]
    if len(starts) < 3:
        print("fewer than 3 steps found")
        return
    steps = list(zip(starts[:-1], starts[1:]))[-want:]
    per_name = defaultdict(lambda: [0, 0.0, 0.0])
    tot_period = tot_busy = tot_gap = 0.0
    for a, b in steps:
        ks = rows[a:b]
        period = rows[b][0] - ks[0][0]
        busy, cur_s, cur_e = 0.0, ks[0][0], ks[0][1]
        for s, e, _ in ks[1:]:
            if s > cur_e:
                busy += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        busy += cur_e - cur_s
        last_end = max(e for _, e, _ in ks)
        tot_period += period
        tot_busy += busy
        tot_gap += rows[b][0] - last_end
        prev_end = None
        for s, e, n in ks:
            short = n.split("(")[0].split("<")[0].replace("void ", "").split("::")[-1][:40]
            st = per_name[short]
            st[0] += 1
            st[1] += e - s
            if prev_end is not None:
                st[2] += s - prev_end
            prev_end = e
    n = len(steps)
    print(f"steps {n}: period {tot_period / n / 1e3:.1f} us, kernels running {tot_busy / n / 1e3:.1f} us, "
          f"idle after the last kernel {tot_gap / n / 1e3:.1f} us")
    print(f"{'kernel':42s} {'per step':>8s} {'mean us':>8s} {'gap us':>8s} {'us/step':>8s}")
    for k, (c, d, g) in sorted(per_name.items(), key=lambda kv: -kv[1][1]):
        print(f"{k:42s} {c / n:8.1f} {d / c / 1e3:8.2f} {g / c / 1e3:8.2f} {d / n / 1e3:8.1f}")


if __name__ == "__main__":
    main()

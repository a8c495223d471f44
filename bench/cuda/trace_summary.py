#!/usr/bin/env python3
"""Summarises a kernel timeline trace (PETREL_CUDA_TRACE_STEP, src/kernels/cuda/trace.cuh).

Usage: trace_summary.py petrel_trace.csv

Records (one per block of the instrumented kernels: the GEMVs and the decode attention) are
grouped into launches (runs of one tag in entry order). Per launch: when its first block
entered, when the first and the last block got past PdlWait, when the last block exited, and
the gap between the previous launch's last exit and this launch's first passing of the wait.
Prints one layer's sequence, the per-role means over all launches of that role, and the
phases inside the blocks (SM clock cycles between the kernels' PETREL_TRACE_MARK points, medians
over the blocks; for the decode attention separately for the blocks that only write a partial
and for the one that merges a row's splits).
"""
import csv
import statistics
import sys
from collections import defaultdict

# The PETREL_TRACE_MARK points of each instrumented kernel (see the .cu files).
ATTENTION_MARKS = ["head ops", "K/V copy wait", "scores", "softmax", "P.V",
                   "partial out + fence + counter", "merge fence", "merge loops"]
GEMV_MARKS = ["norm prologue", "FMA passes", "warp/block reduce", "epilogue"]


def role(tag):
    if tag & 0x80000000:
        return "attention"
    k = ((tag >> 20) & 0x7FF) * 8
    pairs = tag & 0xFFFFF
    return f"gemv K={k} pairs={pairs}"


def main():
    rows = []
    freqs = []
    raw = []
    with open(sys.argv[1]) as f:
        for r in csv.DictReader(f):
            raw.append(r)
            tag = int(r["tag"])
            t0, t2, c0, c2 = int(r["t0"]), int(r["t2"]), int(r["c0"]), int(r["c2"])
            ghz = (c2 - c0) / max(t2 - t0, 1)  # SM cycles per ns over the block's life
            freqs.append(ghz)
            t1 = t0 + (int(r["t1"]) - c0) / ghz  # the wait's end, from the SM clock
            rows.append((t0, t1, t2, tag, tag & 0x9FFFFFFF if tag & 0x80000000 else tag))
    freqs.sort()
    print(f"SM clock over the blocks: median {freqs[len(freqs) // 2]:.2f} GHz")
    rows.sort()
    t_base = rows[0][0]
    launches = []
    for t0, t1, t2, tag, key in rows:
        if not launches or launches[-1]["key"] != key:
            launches.append({"key": key, "recs": []})
        launches[-1]["recs"].append((t0, t1, t2, tag))
    prev_end = None
    per_role = defaultdict(list)
    print(f"{len(rows)} records, {len(launches)} launches; times in us from the first entry")
    print(f"{'launch':>28} {'blocks':>6} {'entry':>8} {'wait0':>8} {'wait1':>8} {'exit1':>8}"
          f" {'gap':>6} {'body':>6} {'merge':>6}")
    for i, L in enumerate(launches):
        recs = L["recs"]
        e0 = min(r[0] for r in recs)
        w0 = min(r[1] for r in recs)
        w1 = max(r[1] for r in recs)
        x1 = max(r[2] for r in recs)
        gap = (w0 - prev_end) / 1e3 if prev_end is not None else 0.0
        body = (x1 - w0) / 1e3
        merge = 0.0
        if L["key"] & 0x80000000:
            plain = [r[2] for r in recs if not r[3] & 0x40000000]
            merged = [r[2] for r in recs if r[3] & 0x40000000]
            if plain and merged:
                merge = (max(merged) - max(plain)) / 1e3
        name = role(L["key"])
        per_role[name].append((gap, body, merge, len(recs), (w1 - w0) / 1e3))
        if i < 12 or i >= len(launches) - 2:
            print(f"{name:>28} {len(recs):6d} {(e0 - t_base) / 1e3:8.2f} {(w0 - t_base) / 1e3:8.2f}"
                  f" {(w1 - t_base) / 1e3:8.2f} {(x1 - t_base) / 1e3:8.2f} {gap:6.2f} {body:6.2f}"
                  f" {merge:6.2f}")
        prev_end = x1
    total = (max(r[2] for r in rows) - t_base) / 1e3
    print(f"\ntraced span {total:.1f} us")
    print(f"{'role':>28} {'n':>4} {'gap':>7} {'body':>7} {'wait spread':>11} {'merge':>7}"
          f" {'per step':>9}")
    for name, v in sorted(per_role.items()):
        n = len(v)
        g = sum(x[0] for x in v) / n
        b = sum(x[1] for x in v) / n
        m = sum(x[2] for x in v) / n
        s = sum(x[4] for x in v) / n
        print(f"{name:>28} {n:4d} {g:7.2f} {b:7.2f} {s:11.2f} {m:7.2f} {n * (g + b):9.1f}")
    phases(raw, freqs[len(freqs) // 2])


def phases(raw, ghz):
    """Median cycles (and us) of each phase: wait -> mark 0 -> mark 1 ... -> exit."""
    groups = defaultdict(list)
    for r in raw:
        tag = int(r["tag"])
        if tag & 0x80000000:
            if tag & 0x20000000:
                continue  # a single-split row: no partial, no merge
            key = "attention, merging block" if tag & 0x40000000 else "attention, partial block"
        else:
            key = role(tag)
        groups[key].append(r)
    print(f"\nphases inside the blocks (median SM cycles; us at {ghz:.2f} GHz)")
    for key, recs in sorted(groups.items()):
        labels = ATTENTION_MARKS if key.startswith("attention") else GEMV_MARKS
        marks = [k for k in range(len(labels)) if f"m{k}" in recs[0] and int(recs[0][f"m{k}"])]
        print(f"  {key} ({len(recs)} blocks): entry -> wait "
              f"{statistics.median(int(r['t1']) - int(r['c0']) for r in recs):.0f}")
        prev = "t1"
        for k in marks:
            d = statistics.median(int(r[f"m{k}"]) - int(r[prev]) for r in recs)
            print(f"    {labels[k]:<32} {d:8.0f} {d / ghz / 1e3:6.2f}")
            prev = f"m{k}"
        d = statistics.median(int(r["c2"]) - int(r[prev]) for r in recs)
        print(f"    {'-> exit':<32} {d:8.0f} {d / ghz / 1e3:6.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Prints criterion results as GiB/s and as ratios to ceilings measured in the same run.

Usage: python3 scripts/bench_report.py [target/criterion]
- `throughput` bench: 0478 encrypt-side results over raw/seal/<frame>-t<threads>, decrypt-side
  over raw/open/<frame>-t<threads>; 0578 over raw/sha384 (the signature's hash).
- `providers` bench: per provider, encrypt_into over its own seal/64KiB, decrypt_into over
  its own open/64KiB; and the FIPS provider's end-to-end figures over the non-FIPS ones.
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
rates = {}
for bench in sorted(root.glob("**/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    est = json.loads((bench.parent / "estimates.json").read_text())
    ns = est["median"]["point_estimate"]
    rates[meta["full_id"]] = meta["throughput"]["Bytes"] / ns * 1e9 / 2**30


def ceiling(name):
    group, _, rest = name.partition("/")
    decrypt = any(k in rest for k in ("decrypt", "reader", "open"))
    if group == "envcrypt-0578":
        return "raw/sha384"
    if group == "envcrypt-0478":
        _, _, shape = rest.partition("/")
        return f"raw/{'open' if decrypt else 'seal'}/{shape}"
    if group.startswith("provider-") and rest.startswith(("encrypt", "decrypt")):
        return f"{group}/{'open' if decrypt else 'seal'}/64KiB"
    return None


print("| benchmark | GiB/s (median) | ceiling (same run) | ratio |")
print("|---|---|---|---|")
for name, r in rates.items():
    c = ceiling(name)
    ratio = f"{r / rates[c]:.0%}" if c in rates else "-"
    print(f"| {name} | {r:.2f} | {c or '-'} | {ratio} |")

fips, plain = "provider-aws-lc-rs-fips", "provider-aws-lc-rs"
for op in ("encrypt_into", "decrypt_into"):
    a, b = rates.get(f"{fips}/{op}/64KiB"), rates.get(f"{plain}/{op}/64KiB")
    if a and b:
        print(f"\nFIPS vs default build, {op} 0478 64 KiB: {a:.2f} / {b:.2f} GiB/s = {a / b:.0%}")

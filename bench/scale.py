#!/usr/bin/env python3
"""bench/scale.sh's report: mlc-bench's JSON lines at each key count
(results.jsonl) and bench-scale-mem's (mem.jsonl) into report.md, plus
chart.gp/chart.dat for gnuplot.  Standard library only."""

import argparse
import json
import math
import os
import statistics

IMPLS = ["mlc", "hash", "shm", "lmdb"]

# case -> (title, the floors and peers its ratios are taken to)
PATHS = [
    ("l1_hit_cold", "L1 hit", ["hash", "shm"]),
    ("l2_hit_16_cold", "L2 hit (MLC_CACHE_NO_L1)", ["shm", "lmdb"]),
    ("set", "set (overwrite)", ["shm", "hash", "lmdb"]),
    ("miss_load", "miss -> loader -> store", ["hash", "shm", "lmdb"]),
]

# The summary's columns: (case, impl, heading)
SUMMARY = [
    ("l1_hit_cold", "hash", "L1 hit / hash"),
    ("l2_hit_16_cold", "shm", "L2 hit / shm"),
    ("l2_hit_16_cold", "lmdb", "L2 hit / LMDB"),
    ("set", "shm", "set / shm"),
    ("set", "lmdb", "set / LMDB"),
    ("miss_load", "hash", "miss→store / hash"),
    ("miss_load", "lmdb", "miss→store / LMDB"),
]


def load(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def fmt(v, digits=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def fmt_ratio(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def keys_name(n):
    e = round(math.log10(n))
    return f"1e{e}" if 10 ** e == n else f"{n:,}"


def paired(m, r):
    """mlc's ns/op over r's, round by round (they ran within a second of
    each other), median over rounds: as mlc-bench's mlc/impl column."""
    a, b = m.get("ns_rounds") or [], r.get("ns_rounds") or []
    q = [x / y for x, y in zip(a, b) if y]
    return statistics.median(q) if q else None


def spread(r):
    if r.get("ns_min") is None or not r.get("ns_op"):
        return None
    return (r["ns_max"] - r["ns_min"]) / r["ns_op"]


def machine(d):
    info = {}
    p = os.path.join(d, "machine.txt")
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                if ": " in line and not line.startswith(" "):
                    k, v = line.rstrip("\n").split(": ", 1)
                    info.setdefault(k, v)
    return info


def speed_section(rows, out):
    by = {}                     # (case, keys) -> impl -> row
    skipped = [r["skipped_keys"] for r in rows if "skipped_keys" in r]
    for r in rows:
        if "case" in r:
            by.setdefault((r["case"], int(r["keys"])), {})[r["impl"]] = r
    keys = sorted({k for (_, k) in by})
    if not keys:
        return None, keys, by
    present = {r["impl"] for r in rows if r.get("status") == "ok"}
    not_ok = {}
    for r in rows:
        if "case" in r and r.get("status") != "ok":
            not_ok.setdefault(r["impl"], r.get("note") or r["status"])

    out.append("## Summary: mlc over its floors, per key count\n")
    out.append("Each cell is mlc's ns/op over the other implementation's, "
               "paired round by round (the two ran within a second of each "
               "other) and the median taken over the rounds; below 1, mlc "
               "is faster.  16 B keys, 16 B values.\n")
    cols = [c for c in SUMMARY if c[1] in present]
    out.append("| keys | " + " | ".join(c[2] for c in cols) + " |")
    out.append("|---:|" + "---:|" * len(cols))
    for k in keys:
        cells = []
        for case, impl, _ in cols:
            d = by.get((case, k), {})
            m, r = d.get("mlc"), d.get(impl)
            ok = m and r and m["status"] == "ok" and r["status"] == "ok"
            cells.append(fmt_ratio(paired(m, r)) if ok else "-")
        out.append(f"| {keys_name(k)} | " + " | ".join(cells) + " |")
    for k in skipped:
        out.append(f"| {keys_name(k)} | skipped: not enough free memory "
                   "|" + " |" * (len(cols) - 1))
    out.append("")
    for impl in IMPLS:
        if impl not in present:
            why = not_ok.get(impl, "not asked for (--impl)")
            out.append(f"- **{impl}**: no rows ({why}).")
    out.append("- Redis and memcached are left out of the scale run: one "
               "round trip per operation (11-20 µs) is not a floor, and "
               "filling 1e7 keys through a socket takes minutes; "
               "`bench/run.sh` compares them at 100,000 keys.\n")

    # Growth: cost at the largest key count over the smallest.
    lo, hi = keys[0], keys[-1]
    if hi > lo:
        out.append(f"## Growth from {keys_name(lo)} to {keys_name(hi)} keys\n")
        out.append("ns/op at the largest key count over ns/op at the "
                   "smallest, per implementation (the same rounds' medians): "
                   "where mlc's factor is larger than its floor's, its cost "
                   "grows faster than the floor's.\n")
        imps = [i for i in IMPLS if i in present]
        out.append("| path | " + " | ".join(imps) + " |")
        out.append("|---|" + "---:|" * len(imps))
        for case, title, _ in PATHS:
            cells = []
            for i in imps:
                a = by.get((case, lo), {}).get(i)
                b = by.get((case, hi), {}).get(i)
                if a and b and a["status"] == "ok" and b["status"] == "ok":
                    cells.append(f"{b['ns_op'] / a['ns_op']:.1f}x")
                else:
                    cells.append("-")
            out.append(f"| {title} | " + " | ".join(cells) + " |")
        out.append("")

    out.append("## ns/op per path\n")
    out.append("Median over rounds of each round's wall time over its "
               "operations; *p50*, the median of single operations timed "
               "alone with rdtscp (every Nth; this VM's TSC moves in steps "
               "of about 10 ns), which a busy machine's preemptions touch "
               "less than the wall time; *spread* is (max - min) / median "
               "of mlc's rounds; *busy* is the share of the machine's CPU time "
               "other processes used while the case ran, with the rounds "
               "that started while others used more than 10% of it.\n")
    for case, title, floors in PATHS:
        # The implementations that ran this case.
        imps = [i for i in IMPLS if i in present and
                any(by.get((case, k), {}).get(i) for k in keys)]
        rat = [f for f in floors if f in imps]
        out.append(f"### {title} (`{case}`)\n")
        p50s = ["mlc"] + rat[:1]
        out.append("| keys | " + " | ".join(f"{i} ns" for i in imps) +
                   " | " + " | ".join(f"mlc/{f}" for f in rat) + " | " +
                   " | ".join(f"p50 {i}" for i in p50s) +
                   " | mlc spread | busy | notes |")
        out.append("|---:|" + "---:|" * (len(imps) + len(rat) +
                                          len(p50s) + 2) + "---|")
        for k in keys:
            d = by.get((case, k), {})
            m = d.get("mlc")
            cells = []
            for i in imps:
                r = d.get(i)
                cells.append(fmt(r["ns_op"]) if r and r["status"] == "ok"
                             else (r["status"] if r else "-"))
            for f in rat:
                r = d.get(f)
                ok = m and r and m["status"] == "ok" and r["status"] == "ok"
                cells.append(fmt_ratio(paired(m, r)) if ok else "-")
            for i in p50s:
                r = d.get(i)
                cells.append(fmt(r.get("p50")) if r and r["status"] == "ok"
                             else "-")
            sp = spread(m) if m and m["status"] == "ok" else None
            cells.append(f"{100 * sp:.0f}%" if sp is not None else "-")
            any_row = m or next(iter(d.values()), None)
            busy = any_row.get("others_busy") if any_row else None
            noisy = any_row.get("noisy_rounds") if any_row else None
            nr = int(m.get("rounds") or 0) if m and m["status"] == "ok" \
                else 0
            cells.append(f"{100 * busy:.0f}% ({int(noisy or 0)}/{nr})"
                         if busy is not None else "-")
            notes = "; ".join(f"{i}: {d[i]['note']}" for i in imps
                              if i in d and d[i].get("note"))
            cells.append(notes.replace("|", "/"))
            out.append(f"| {keys_name(k)} | " + " | ".join(cells) + " |")
        out.append("")
    return imps, keys, by


def chart(d, keys, by, present):
    imps = [i for i in IMPLS if i in present]
    with open(os.path.join(d, "chart.dat"), "w") as f:
        for case, title, _ in PATHS:
            f.write(f"# {case}: keys " + " ".join(imps) + "\n")
            for k in keys:
                vals = []
                for i in imps:
                    r = by.get((case, k), {}).get(i)
                    vals.append(f"{r['ns_op']:.2f}"
                                if r and r["status"] == "ok" else "NaN")
                f.write(f"{k} " + " ".join(vals) + "\n")
            f.write("\n\n")
    styles = {"mlc": "lc rgb '#d62728' lw 3 pt 7",
              "hash": "lc rgb '#1f77b4' lw 2 pt 5 dt 2",
              "shm": "lc rgb '#2ca02c' lw 2 pt 9 dt 2",
              "lmdb": "lc rgb '#7f7f7f' lw 2 pt 13 dt 3"}
    gp = ['set terminal svg size 1200,800 dynamic noenhanced font "sans,11"',
          'set output "chart.svg"',
          'set multiplot layout 2,2 title "mlc and the floors: ns per '
          'operation against keys (median of rounds, log-log; lower is '
          'better)"',
          "set logscale xy", "set grid xtics ytics",
          'set xlabel "keys"', 'set ylabel "ns / op"',
          'set format x "1e%L"', 'set datafile missing "NaN"',
          "set key top left"]
    for idx, (case, title, _) in enumerate(PATHS):
        gp.append(f'set title "{title}"')
        # Only the implementations that ran this case.
        plots = [f'"chart.dat" index {idx} using 1:{j + 2} with linespoints '
                 f'{styles.get(i, "")} title "{i}"'
                 for j, i in enumerate(imps)
                 if any(by.get((case, k), {}).get(i, {}).get("status") ==
                        "ok" for k in keys)]
        gp.append("plot " + ", ".join(plots))
    gp.append("unset multiplot")

    # ratio.svg: mlc over each path's floor, paired per round.
    with open(os.path.join(d, "ratio.dat"), "w") as f:
        f.write("# keys " + " ".join(f"{c}/{i}" for c, i, _ in SUMMARY) +
                "\n")
        for k in keys:
            vals = []
            for case, impl, _ in SUMMARY:
                m = by.get((case, k), {}).get("mlc")
                r = by.get((case, k), {}).get(impl)
                ok = m and r and m["status"] == "ok" and r["status"] == "ok"
                q = paired(m, r) if ok else None
                vals.append(f"{q:.3f}" if q else "NaN")
            f.write(f"{k} " + " ".join(vals) + "\n")
    xr = f"set xrange [{keys[0] / 1.6:g}:{keys[-1] * 1.6:g}]"
    gp.insert(gp.index("set logscale xy") + 1, xr)
    gp += ['set terminal svg size 900,550 dynamic noenhanced font "sans,11"',
           'set output "ratio.svg"',
           'set title "mlc / floor or peer, paired per round (below 1: '
           'mlc faster)"',
           "set logscale xy", xr, 'set ylabel "mlc / other"',
           "set key outside right", "set yrange [*:*]"]
    plots = []
    for j, (case, impl, head) in enumerate(SUMMARY):
        if impl in present:
            plots.append(f'"ratio.dat" using 1:{j + 2} with linespoints '
                         f'lw 2 title "{head}"')
    gp.append("plot " + ", ".join(plots) + ", 1 with lines lc rgb 'black' "
              "dt 2 notitle")
    with open(os.path.join(d, "chart.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")


def mem_section(rows, out):
    fills = [r for r in rows if r.get("part") == "fill"]
    occ = [r for r in rows if r.get("part") == "occupancy"]
    if fills:
        b = fills[0]["arena_bytes"]
        out.append(f"## Memory: items an arena of {b / 2**20:.0f} MiB "
                   "stores before its first eviction\n")
        out.append("16 B keys, one value size per arena, distinct keys set "
                   "until the first eviction of any kind: *bytes* (a live "
                   "item evicted for room) or *index* (evicted because both "
                   "of its index buckets were full).  max_items: *default*, "
                   "0 (an index of at most 1/16 of the arena; 0.2.0 asked bytes / 512); *fit*, what the bytes could hold "
                   "at 40 B of item header and slot word (56 B before format "
                   "7) + 9 B of index per "
                   "slot + key + value; *2x fit*, twice that (both never "
                   "below bytes / 512).  *slots* is what the index was "
                   "rounded up to (a power of two of 7-slot buckets at 80% "
                   "load: mlc_arena_info's max_items).  *arena B/item* = arena "
                   "bytes / items (everything: index, log, flight table, "
                   "pages); *alloc B/item* = allocator pages in use x page "
                   "size / items (what `mem_per_item` counts); *chunk*, the "
                   "chunk bytes an item took (its size class; a chained "
                   "item's head and pieces together); *k+v / chunk*, the "
                   "share of it that is key and value.\n")
        out.append("| value | max_items | slots | items | items per MiB | "
                   "slots used | arena B/item | alloc B/item | k+v / chunk "
                   "| chunk | first eviction |")
        out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in fills:
            items = r["items"] or 1
            alloc = r["pages_used"] * r["page_size"] / items
            kv = r["klen"] + r["vlen"]
            asked = (f"{r['index']} ({r['max_items_asked']:,})"
                     if r["max_items_asked"] else "default")
            out.append(
                f"| {r['vlen']:,} | {asked} | {r['slots']:,} | "
                f"{r['items']:,} | {r['items'] * 2**20 / b:,.0f} | "
                f"{100 * r['items'] / r['slots']:.0f}% | "
                f"{b / items:,.1f} | {alloc:,.1f} | "
                f"{100 * kv / r['chunk']:.0f}% | {r['chunk']:,} | "
                f"{r['first']} |" if r["chunk"] else
                f"| {r['vlen']:,} | {asked} | {r['slots']:,} | "
                f"{r['items']:,} | - | - | - | - | - | - | {r['first']} |")
        out.append("")
        small = {r["index"]: r for r in fills if r["vlen"] == 16}
        d, g = small.get("default"), small.get("fit")
        if d and g:
            out.append(f"With 16 B values the default index stops the arena "
                       f"at {d['items']:,} items ({b / d['items']:.0f} B of "
                       f"arena per item); an index sized to fit lets it "
                       f"reach {g['items']:,} ({b / g['items']:.0f} B per "
                       f"item), {g['items'] / d['items']:.1f}x as many.\n")
    if occ:
        out.append("## Index occupancy at the first index eviction\n")
        out.append("16 B values in an arena with bytes to spare, so only "
                   "the index can run out; distinct keys set until the "
                   "first index eviction (an item evicted because both of "
                   "its buckets were full).  *at first*: items / slots "
                   "then; *after 2x*: items / slots once twice the slots "
                   "have been set, where the index settles.  One row per "
                   "max_items asked; min / median / max over the key "
                   "sets (seeds).\n")
        out.append("| max_items asked | slots | key sets | at first: min | "
                   "median | max | after 2x: median |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|")
        groups = {}
        for r in occ:
            groups.setdefault(r["max_items_asked"], []).append(r)
        for asked in sorted(groups):
            g = groups[asked]
            first = [r["items_at_first"] / r["slots"] for r in g]
            after = [r["items_after"] / r["slots"] for r in g]
            out.append(f"| {asked:,} | {g[0]['slots']:,} | {len(g)} | "
                       f"{100 * min(first):.1f}% | "
                       f"{100 * statistics.median(first):.1f}% | "
                       f"{100 * max(first):.1f}% | "
                       f"{100 * statistics.median(after):.1f}% |")
        out.append("")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--command", default="bench/scale.sh")
    a = ap.parse_args()
    rows = load(os.path.join(a.dir, "results.jsonl"))
    mem = load(os.path.join(a.dir, "mem.jsonl"))
    info = machine(a.dir)

    out = ["# mlc scale report\n"]
    out.append(f"`{a.command}` on {info.get('date', '?')}, host "
               f"{info.get('host', '?')}, mlc {info.get('mlc', '?')} "
               f"({info.get('mlc commit', '?')}; the library last changed "
               f"in {info.get('library last changed in', '?')}); release "
               "build; "
               f"load average {info.get('load average at start', '?')} at "
               f"the start, {info.get('load average at end', '?')} at the "
               f"end; {info.get('run time', '?')}.  "
               "`machine.txt`, `sizes.txt`, `bench.txt` and `mem.txt` in "
               "this directory hold the rest.\n")
    if info.get("uncommitted library changes"):
        out.append("**Built with uncommitted library changes:** "
                   f"{info['uncommitted library changes']}\n")
    busy = [r["others_busy"] for r in rows
            if r.get("others_busy") is not None]
    seen = (f"other processes used {100 * min(busy):.0f}% to "
            f"{100 * max(busy):.0f}% of its CPU time during the cases of "
            "this run: *busy* below" if busy else "")
    out.append("The machine is a shared 2-vCPU VM: absolute nanoseconds "
               "move from run to run" + (f" ({seen})" if seen else "") +
               ", so read the ratios to the floors, which were measured in "
               "the same rounds (implementations alternate within each "
               "round, in an order rotated by the round).\n")
    imps, keys, by = speed_section(rows, out)
    mem_section(mem, out)
    out.append("## Method\n")
    out.append(
        "- Speed: `mlc-bench --keys N --case l1_hit_cold,l2_hit_16_cold,"
        "set,miss_load --impl mlc,hash,shm,lmdb` per key count N, one "
        "process per N, pinned to one CPU.  Keys are 16 printable bytes, "
        "values 16 B, walked in one shuffled order.\n"
        "- *L1 hit*: mlc_get with lru_size N + 1024, so every get is "
        "answered from L1 (the driver checks value.level).  Floor: the "
        "in-process hash table (`hash`).\n"
        "- *L2 hit*: mlc_get on a handle opened with MLC_CACHE_NO_L1, the "
        "value copied out.  Floor: the plain shared-memory table (`shm`).\n"
        "- *set*: overwrite the values of N existing keys (mlc: lru_size "
        "1000, the invalidation record published).\n"
        "- *miss -> loader -> store*: the store holds N keys; each get is "
        "of a fresh key, and mlc's loader returns a fixed 16 B value "
        "(peers: a get that misses, then a set).  The fresh keys come "
        "from a pool of min(N, 300,000) keys walked in turn, in batches of "
        "N/10 (256 to 20,000) that are deleted again after being timed, "
        "outside the timing: the store stays between N and N + batch keys "
        "whatever the round's length, and at large N a batch's keys are as "
        "cold as any other's.\n"
        "- Every mlc arena is sized so that nothing is evicted "
        "(max_items 2N + 1024, about 190 B of arena per key); any "
        "eviction, wrong level or error would appear in *notes*.\n"
        "- Memory: `bench-scale-mem` (bench/scale-mem.c), counts read from "
        "mlc_arena_info and mlc_arena_class after every set; no timing.\n")
    with open(os.path.join(a.dir, "report.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    if keys:
        present = {r["impl"] for r in rows if r.get("status") == "ok"}
        chart(a.dir, keys, by, present)


if __name__ == "__main__":
    main()

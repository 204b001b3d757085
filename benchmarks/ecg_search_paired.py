"""Paired comparison of ECG search methods over seeds, from result JSONs of ``benchmarks/ecg_search.py``.

Runs of one seed are paired: the same seed drives a method's search and its candidates' training
seeds (``ecgnas.evaluator.candidate_seed``), and the final model trains with it. For every method
and seed: the search objective (the chosen candidate's DS1 hold-out macro-F1 at search fidelity),
DS2 macro-F1 and S F1 of the single final model, search CPU-hours; then, against the reference
method (default ``random``) and against the hand-designed random-search baseline, the paired
differences, in how many seeds the method is ahead, and the Wilcoxon signed-rank p-value.

Several files may hold the same (method, seed): the first file given wins; a later one that chose
another architecture is listed under ``skipped`` (e.g. a run of another CPU kind: seeds reproduce
on the same kind of CPU, not across kinds). Nothing is trained; DS2 chooses nothing here.

    python benchmarks/ecg_search_paired.py --results benchmarks/results/ecg_search_paired.json \\
        --results benchmarks/results/ecg_search_paired_more.json \\
        --baseline benchmarks/results/ecg_search_paired_baseline.json --out benchmarks/results/ecg_search_paired_summary.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import header, mean_std  # noqa: E402

from nascore.io import atomic_write_json  # noqa: E402

BASELINE = "hand-designed random search"


def _row(r: dict, method: str, path: str) -> dict:
    ds2 = r.get("ds2") or {}
    obj = r.get("objective") or {}
    return {"method": method, "seed": int(r["seed"]), "best_arch": r["best_arch"], "file": path,
            "objective": obj.get("value", r.get("search_val_macro_f1")),
            "objective_signal": f"{obj.get('signal', 'DS1 hold-out macro-F1')}, {obj.get('epochs')} epochs",
            "ds2_macro_f1": ds2.get("macro_f1"), "ds2_S_f1": ds2.get("S_f1"),
            "search_cpu_hours": (r.get("search_cost_seconds") or 0) / 3600,
            "final_train_seconds": r.get("final_train_seconds"), "params": r.get("params")}


def collect(paths: list[str], baseline_paths: list[str], methods: list[str] | None) -> tuple[list[dict], list[dict]]:
    """Every (method, seed) row, the first file's winning; and the later rows skipped."""
    rows: dict[tuple[str, int], dict] = {}
    skipped: list[dict] = []
    groups = [(p, m, g) for p in paths for m, g in (json.loads(Path(p).read_text()).get("methods") or {}).items()]
    groups += [(p, BASELINE, json.loads(Path(p).read_text()).get("baseline") or {}) for p in baseline_paths]
    for path, method, group in groups:
        if methods is not None and method not in methods and method != BASELINE:
            continue
        for r in group.get("runs", []):
            row = _row(r, method, path)
            key = (method, row["seed"])
            if key in rows:
                if rows[key]["best_arch"] != row["best_arch"]:
                    skipped.append({**row, "kept_from": rows[key]["file"]})
                continue
            rows[key] = row
    order = list(methods or dict.fromkeys(m for _, m, _ in groups if m != BASELINE)) + [BASELINE]
    return sorted(rows.values(), key=lambda r: (order.index(r["method"]), r["seed"])), skipped


def paired(rows: list[dict], method: str, other: str, key: str) -> dict | None:
    """``method`` minus ``other`` on ``key`` over the seeds both have."""
    from scipy.stats import wilcoxon

    a = {r["seed"]: r[key] for r in rows if r["method"] == method and r[key] is not None}
    b = {r["seed"]: r[key] for r in rows if r["method"] == other and r[key] is not None}
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    d = [a[s] - b[s] for s in seeds]
    nonzero = [x for x in d if x != 0]
    p = float(wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else None
    return {"seeds": seeds, "diff": mean_std(d), "ahead": sum(x > 0 for x in d), "same": sum(x == 0 for x in d),
            "wilcoxon_p": p, "per_seed": d}


def summarise(rows: list[dict], reference: str) -> dict:
    out: dict = {"methods": {}}
    for m in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == m]
        out["methods"][m] = {"seeds": [r["seed"] for r in rs],
                             **{k: mean_std(r[k] for r in rs) for k in ("objective", "ds2_macro_f1", "ds2_S_f1",
                                                                     "search_cpu_hours", "final_train_seconds")}}
        if m not in (reference, BASELINE):
            signals = {r["objective_signal"] for r in rows if r["method"] in (m, reference)}
            out["methods"][m]["vs_reference_objective"] = (  # a supernet's own score is another signal
                paired(rows, m, reference, "objective") if len(signals) == 1
                else {"not_comparable": sorted(signals)})
            out["methods"][m]["vs_reference_ds2"] = paired(rows, m, reference, "ds2_macro_f1")
        if m != BASELINE:
            out["methods"][m]["vs_baseline_ds2"] = paired(rows, m, BASELINE, "ds2_macro_f1")
    return out


def _f(s: dict | None, digits: int = 2) -> str:
    if not s or s.get("mean") is None:
        return "–"
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if s.get("std") is not None else "")


def markdown(rows: list[dict], summary: dict, reference: str) -> str:
    seeds = sorted({r["seed"] for r in rows})
    lines = ["| method | " + " | ".join(f"seed {s} objective / DS2" for s in seeds)
             + " | objective | DS2 macro-F1 | DS2 S F1 | search CPU-h | vs " + reference
             + ": objective ahead (p) | vs baseline: DS2 Δ, ahead (p) |",
             "|---" * (len(seeds) + 7) + "|"]
    for m, s in summary["methods"].items():
        by = {r["seed"]: r for r in rows if r["method"] == m}
        cells = [f"{by[x]['objective']:.2f} / {by[x]['ds2_macro_f1']:.2f}" if x in by else "–" for x in seeds]
        ref = s.get("vs_reference_objective")
        base = s.get("vs_baseline_ds2")
        ref_txt = ("another objective" if ref and "not_comparable" in ref else
                   f"{ref['ahead']} of {len(ref['seeds'])}, Δ {_f(ref['diff'])} (p {ref['wilcoxon_p']:.2f})"
                   if ref and ref["wilcoxon_p"] is not None else "–")
        base_txt = (f"{_f(base['diff'])}, {base['ahead']} of {len(base['seeds'])} (p {base['wilcoxon_p']:.2f})"
                    if base and base["wilcoxon_p"] is not None else "–")
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {_f(s['objective'])} | {_f(s['ds2_macro_f1'])} | "
                     f"{_f(s['ds2_S_f1'], 1)} | {_f(s['search_cpu_hours'])} | {ref_txt} | {base_txt} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", action="append", required=True, help="an ecg_search.py result JSON (repeat; first wins)")
    ap.add_argument("--baseline", action="append", default=[], help="a JSON whose baseline runs are the hand-designed "
                                                                    "random search (repeat)")
    ap.add_argument("--methods", default="", help="comma list (default: every method in the files)")
    ap.add_argument("--reference", default="random")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] or None
    rows, skipped = collect(args.results, args.baseline, methods)
    summary = summarise(rows, args.reference)
    table = markdown(rows, summary, args.reference)
    print(table)
    for s in skipped:
        print(f"skipped: {s['method']} seed {s['seed']} of {s['file']} (kept the run of {s['kept_from']})")
    if args.out:
        atomic_write_json(args.out, {**header(), "settings": {"results": args.results, "baseline": args.baseline,
                                                              "reference": args.reference},
                                     "rows": rows, "skipped": skipped, "summary": summary, "table": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Deployment figures of trained ECG classifiers (issue 18) and how well the latency table predicts
measured onnxruntime latency.

Part 1 -- for each run folder (default: the hand-designed models and the default ``ecg-cell``
network trained with the default recipe, seed 0, into ``runs/export-bench/<model>-s0``; ``--train``
trains the missing ones first): ``ecgnas export RUN --format onnx --int8`` (parity on all DS1 + DS2
beats, int8 calibrated on DS1 beats, DS2 metrics of both), plus parameters and FLOPs
(:func:`ecgnas.hardware.count_flops`, batch 1). DS2 decides nothing here: no model, setting or
calibration is chosen from these figures.

Part 2 -- ``--archs N`` random architectures of the ``ecg-cell`` space (seed 0, untrained weights:
latency does not depend on them): the per-operation table estimate
(:meth:`ECGCellSpace.estimate_latency_ms`, batch 1, 1 thread), the eager-torch measurement the
search records (:func:`ecgnas.hardware.measure_latency_ms`) and onnxruntime's (batch 1, 1 thread,
median); Spearman and Kendall rank correlations between them.

Part 3 (``--parts int8``) -- which int8 setting is fastest: for each registered model family at its
default hyperparameters (untrained weights; the input shape of the default preparation), the float
ONNX file and three quantisations of it by :func:`ecgnas.export.quantize.quantize_int8` (the
previous default: int8 activations without pre-processing; pre-processing with int8 activations;
the default: pre-processing with uint8 activations), timed batch-1 and batch-256 on one thread in
three interleaved rounds (the median over rounds is reported).

Part 4 (``--parts latency``) -- times the existing exports of ``--runs`` again (``RUN/export/*.onnx``,
written by part 1) and stores the figures as each model's ``latency_retimed`` with the machine's
load, e.g. on an idle machine after the exports ran on a busy one.

    python benchmarks/ecg_export.py [--train] [--runs DIR ...] [--archs 30] [--latency-repeats 200]
    python benchmarks/ecg_export.py --parts latency --runs DIR ... --out FILE
    python benchmarks/ecg_export.py --parts int8 --out benchmarks/results/ecg_export_int8.json

Writes ``benchmarks/results/ecg_export.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

from nascore.io import atomic_write_json  # noqa: E402

MODELS = ("linear", "acharya", "kachuee", "resnet", "ecg-cell")
WORK = Path("runs/export-bench")


def _train(model: str, out: Path) -> None:
    cmd = [sys.executable, "-m", "ecgnas.cli", "train", "--model", model, "--seed", "0", "--threads", "1", "--quiet",
           "--output", str(out)]
    subprocess.run(cmd, check=True)


def export_figures(run: Path, repeats: int) -> dict:
    import torch

    from ecgnas.export.pipeline import export_run
    from ecgnas.evaluate import load_checkpoint, model_from_checkpoint
    from ecgnas.hardware import count_flops
    from ecgnas.models import count_parameters
    from nascore.io import read_json

    ckpt = load_checkpoint(run / "checkpoint.pt")
    model = model_from_checkpoint(ckpt)
    x = torch.zeros(1, int(ckpt.get("in_channels", 1)), int(ckpt["window"]))
    flops = count_flops(model, x, torch.zeros(1, int(ckpt["n_rr"])))
    t = time.perf_counter()
    rep = export_run(run, "onnx", int8=True, latency_repeats=repeats, progress=True)
    summary = read_json(run / "train_summary.json")
    lat = {name: _latency_table(rows) for name, rows in rep["latency"].items()}
    q = rep["int8"]
    return {"run": str(run), "model": ckpt["model"], "hparams": ckpt["hparams"], "members": len(ckpt["members"]),
            "offsets": ckpt.get("offsets") or [], "params": count_parameters(model),
            "flops": int(flops), "train_seconds": summary.get("train_seconds"),
            "float_bytes": q["float_bytes"], "int8_bytes": q["int8_bytes"],
            "parity": {k: rep["parity"][k] for k in ("n", "agreement", "max_abs_proba", "max_abs_score")},
            "ds2_macro_f1_float": q["ds2_float"]["macro_f1"], "ds2_macro_f1_int8": q["ds2_int8"]["macro_f1"],
            "ds2_int8_agreement_with_float": q["agreement_with_float_ds2"], "latency": lat,
            "machine_at_latency": rep["machine"], "export_seconds": round(time.perf_counter() - t, 1)}


def _latency_table(rows: list[dict]) -> dict:
    return {f"b{r['batch']}_t{r['threads']}": {k: round(r[k], 4) for k in ("median_ms", "p95_ms")} |
            {"beats_per_s": round(r["throughput_beats_per_s"])} for r in rows}


def retime(run: Path, repeats: int) -> dict:
    """Latency of ``run``'s existing ONNX exports, measured now, with the machine's load."""
    from ecgnas.export.contract import read_onnx_contract
    from ecgnas.export.latency import latency_grid, machine

    files = sorted((run / "export").glob("*.onnx"))
    if not files:
        raise SystemExit(f"{run}: no export/*.onnx (run --parts models first)")
    inputs = read_onnx_contract(files[0])["inputs"]
    _, in_ch, window = inputs["x"]["shape"]
    n_rr = inputs["rr"]["shape"][1]
    grid = {f.name: _latency_table(latency_grid(f, in_channels=int(in_ch), window=int(window), n_rr=int(n_rr),
                                                repeats=repeats)) for f in files}
    return {"latency": grid, "machine": machine(), "date": header()["date"]}


def rank_correlation(n: int, repeats: int, seed: int = 0) -> dict:
    import torch
    from scipy.stats import kendalltau, spearmanr

    from ecgnas.export.graph import export_onnx
    from ecgnas.export.latency import measure
    from ecgnas.hardware import measure_latency_ms
    from ecgnas.spaces.conv1d import ECGCellSpace

    in_ch, window, n_rr = 2, 126, 5
    space = ECGCellSpace()
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n)]
    t = time.perf_counter()
    table = space.estimate_latency_ms(archs, in_channels=in_ch, window=window, n_rr=n_rr, batch=1, threads=1)
    table_seconds = time.perf_counter() - t
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, a in enumerate(archs):
            torch.manual_seed(i)
            net = space.build_model(a, in_channels=in_ch, window=window, n_rr=n_rr).eval()
            path = Path(tmp) / f"a{i}.onnx"
            export_onnx(net, path, in_channels=in_ch, window=window, n_rr=n_rr)
            ort_ms = measure(path, in_channels=in_ch, window=window, n_rr=n_rr, batch=1, threads=1,
                             repeats=repeats, warmup=10)["median_ms"]
            torch_ms = measure_latency_ms(net, in_ch, window, n_rr, batch=1, threads=1, repeats=repeats, warmup=5)
            rows.append({"arch": space.to_string(a), "table_ms": float(table[i]), "torch_ms": torch_ms,
                         "onnxruntime_ms": ort_ms})
            print(f"  arch {i + 1}/{n}: table {table[i]:.3f} ms, torch {torch_ms:.3f} ms, onnxruntime {ort_ms:.3f} ms",
                  flush=True)
    tab, tor, ort = (np.array([r[k] for r in rows]) for k in ("table_ms", "torch_ms", "onnxruntime_ms"))

    def corr(a, b):
        return {"spearman": float(spearmanr(a, b).statistic), "kendall": float(kendalltau(a, b).statistic)}

    return {"n_archs": n, "seed": seed, "shape": {"in_channels": in_ch, "window": window, "n_rr": n_rr},
            "batch": 1, "threads": 1, "repeats": repeats, "table_lookup_seconds": round(table_seconds, 2),
            "table_vs_onnxruntime": corr(tab, ort), "table_vs_torch": corr(tab, tor),
            "torch_vs_onnxruntime": corr(tor, ort),
            "median_ratio_onnxruntime_over_torch": float(np.median(ort / tor)), "archs": rows}


INT8_SETTINGS = {"previous (int8 activations, no pre-processing)": {"activations": "int8", "preprocess": False},
                 "pre-processing, int8 activations": {"activations": "int8", "preprocess": True},
                 "default (pre-processing, uint8 activations)": {"activations": "uint8", "preprocess": True}}
INT8_FAMILIES = ("acharya", "kachuee", "resnet", "ecg-cell", "darts1d")


def int8_formats(repeats: int, rounds: int = 3) -> dict:
    import torch

    from ecgnas.export.graph import export_onnx, file_size
    from ecgnas.export.latency import measure
    from ecgnas.export.quantize import quantize_int8
    from ecgnas.models import build_model

    in_ch, window, n_rr = 2, 126, 5
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, in_ch, window)).astype(np.float32)
    rr = (1 + 0.1 * rng.standard_normal((512, n_rr))).astype(np.float32)
    shape = {"in_channels": in_ch, "window": window, "n_rr": n_rr}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fam in INT8_FAMILIES:
            torch.manual_seed(0)
            net = build_model(fam, **shape).eval()
            files = {"float": Path(tmp) / f"{fam}.onnx"}
            export_onnx(net, files["float"], **shape, contract={"model": fam, "note": "int8 timing only"})
            for i, (name, kw) in enumerate(INT8_SETTINGS.items()):
                files[name] = Path(tmp) / f"{fam}.q{i}.onnx"
                quantize_int8(files["float"], files[name], x, rr, **kw)
            times: dict = {k: {1: [], 256: []} for k in files}
            for _ in range(rounds):  # interleaved, so a change in load hits every setting alike
                for k, f in files.items():
                    for b in (1, 256):
                        times[k][b].append(measure(f, **shape, batch=b, threads=1, repeats=repeats if b == 1 else
                                                   max(10, repeats // 10), warmup=20 if b == 1 else 3)["median_ms"])
            out[fam] = {k: {"bytes": file_size(f), "b1_ms": float(np.median(times[k][1])),
                            "b256_ms": float(np.median(times[k][256]))} for k, f in files.items()}
            print(f"  {fam}: " + ", ".join(f"{k.split(' (')[0]} {v['b1_ms']:.3f} ms" for k, v in out[fam].items()),
                  flush=True)
    return {"shape": shape, "weights": "untrained (seed 0): latency does not depend on them", "threads": 1,
            "rounds": rounds, "repeats_batch1": repeats, "settings": INT8_SETTINGS, "families": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="*", default=None, help=f"run folders (default {WORK}/<model>-s0 for {MODELS})")
    ap.add_argument("--train", action="store_true", help="train the default runs that are missing (seed 0)")
    ap.add_argument("--archs", type=int, default=30, help="random ecg-cell architectures for the rank correlation "
                                                          "(0 skips it; default 30)")
    ap.add_argument("--latency-repeats", type=int, default=200)
    ap.add_argument("--parts", default="models,rank",
                    help="comma-separated: models (export figures), rank (latency rank correlation), int8 (int8 "
                         "settings timed), latency (re-time the exports of --runs); a part not run keeps its "
                         "entry from an existing --out file")
    ap.add_argument("--out", default=str(RESULTS / "ecg_export.json"))
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    runs = [Path(r) for r in args.runs] if args.runs else [WORK / f"{m}-s0" for m in MODELS]
    old = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    result = {"note": "the seed of each model is in its run folder's name (-sN); DS2 figures are reported, "
                      "nothing is chosen from them; int8 calibrated on 2048 DS1 beats",
              "models": old.get("models", []), "models_run": old.get("models_run"),
              "rank_correlation": old.get("rank_correlation"), "rank_run": old.get("rank_run"),
              "int8_formats": old.get("int8_formats"), "int8_run": old.get("int8_run")}
    if "models" in parts:  # entries of other runs are kept (one invocation per group of runs), replaced by run
        keep = {str(r) for r in runs}
        result["models"] = [m for m in result["models"] if m["run"] not in keep]
        result["models_run"] = (result["models_run"] or []) if isinstance(result["models_run"], list) else []
        result["models_run"].append({**header(), "runs": sorted(keep)})
    for run in runs if "models" in parts else []:
        if not (run / "train_summary.json").is_file():
            if not args.train or args.runs:
                print(f"skipping {run}: not trained (use --train)", flush=True)
                continue
            _train(run.name.rsplit("-s", 1)[0], run)
        print(f"export {run}", flush=True)
        result["models"].append(export_figures(run, args.latency_repeats))
        atomic_write_json(Path(args.out), result)
    if "latency" in parts:
        by_run = {m["run"]: m for m in result["models"]}
        for run in runs:
            if str(run) not in by_run:
                print(f"skipping {run}: no entry in {args.out} (run --parts models first)", flush=True)
                continue
            print(f"latency of {run}'s exports, again", flush=True)
            by_run[str(run)]["latency_retimed"] = retime(run, args.latency_repeats)
            atomic_write_json(Path(args.out), result)
    if args.archs and "rank" in parts:
        print(f"rank correlation over {args.archs} ecg-cell architectures", flush=True)
        result["rank_run"] = header()
        result["rank_correlation"] = rank_correlation(args.archs, max(20, args.latency_repeats // 4))
    if "int8" in parts:
        print("int8 settings, timed", flush=True)
        result["int8_run"] = header()
        result["int8_formats"] = int8_formats(args.latency_repeats)
    atomic_write_json(Path(args.out), result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``model_card.md`` of a trained run (and of its export): what the model is for, how it was
trained and tested, how it does per class and per record, and how the exported files behave.

:func:`model_card` builds the Markdown from the run folder's files -- ``config.json``,
``train_summary.json``, ``metrics.json`` (DS2), ``per_record.csv``, ``cv_metrics.json`` (DS1
out-of-fold, when run) -- and, when given, the export report of :func:`ecgnas.export.pipeline.export_run`
(formats, sizes, parity, int8, latency). Every figure is read from those files; nothing is
recomputed. The card states what is not recorded rather than leaving it out.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from nascore.io import atomic_write_text, read_json

#: a record is listed as a failure when a class it holds at least this many beats of is detected
#: with a sensitivity below FAILURE_SE, or when it has this many false V / S alarms
FAILURE_MIN_BEATS = 20
FAILURE_SE = 50.0


def _f(v: Any, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{nd}f}" if isinstance(v, (int, float)) else str(v)


def _read(path: Path):
    try:
        return read_json(path) if path.is_file() else None
    except (OSError, ValueError):
        return None


def failure_records(per_record_csv: Path, limit: int = 8) -> list[dict]:
    """Records whose S or V (or F) beats are mostly missed, or with many false S / V alarms, worst first."""
    import pandas as pd

    if not per_record_csv.is_file():
        return []
    tab = pd.read_csv(per_record_csv, dtype={"record": str})
    rows = []
    for _, r in tab.iterrows():
        why = []
        for c in ("S", "V", "F"):
            n, se = r.get(f"{c}_n", 0), r.get(f"{c}_se")
            if n >= FAILURE_MIN_BEATS and se == se and se < FAILURE_SE:
                why.append(f"{c}: {int(r[f'{c}_tp'])} of {int(n)} found (Se {se:.1f} %)")
        for c in ("S", "V"):
            fp = int(r.get(f"{c}_pred", 0) - r.get(f"{c}_tp", 0))
            if fp >= FAILURE_MIN_BEATS and fp > r.get(f"{c}_n", 0):
                why.append(f"{fp} false {c} alarms ({int(r[f'{c}_n'])} true {c} beats)")
        if why:
            wrong = int(round(r["n_beats"] * (1 - r["accuracy"] / 100)))
            rows.append({"record": r["record"], "n_beats": int(r["n_beats"]), "wrong": wrong, "why": "; ".join(why)})
    rows.sort(key=lambda d: -d["wrong"])
    return rows[:limit]


def _class_table(m: Mapping[str, Any]) -> list[str]:
    pc = m.get("per_class", {})
    lines = ["| class | beats | Se % | +P % | FPR % | F1 % |", "|---|---:|---:|---:|---:|---:|"]
    for c in ("N", "S", "V", "F", "Q"):
        if c in pc:
            d = pc[c]
            lines.append(f"| {c} | {d.get('support', 'n/a')} | {_f(d.get('se'))} | {_f(d.get('ppv'))} | "
                         f"{_f(d.get('fpr'), 2)} | {_f(d.get('f1'))} |")
    ec = m.get("ec57", {})
    lines += ["", "AAMI EC57 gross statistics: "
              f"SVEB Se {_f(ec.get('sveb', {}).get('se'))} %, +P {_f(ec.get('sveb', {}).get('ppv'))} %; "
              f"VEB Se {_f(ec.get('veb', {}).get('se'))} %, +P {_f(ec.get('veb', {}).get('ppv'))} %, "
              f"FPR {_f(ec.get('veb', {}).get('fpr'), 2)} %. Macro-F1 (N, S, V, F) {_f(m.get('macro_f1'))}, "
              f"accuracy {_f(m.get('accuracy'))} %, Cohen's kappa {_f(m.get('kappa'), 3)}."]
    pra = m.get("per_record_average") or {}
    if pra:
        lines.append("Per-record averages (Se over records holding the class, +P over records predicting it): " +
                     "; ".join(f"{k} Se {_f(pra[k]['se'])} / +P {_f(pra[k]['ppv'])}" for k in ("S", "V") if k in pra)
                     + ".")
    return lines


def _export_lines(rep: Mapping[str, Any], out_dir: Path) -> list[str]:
    lines = ["## Exported files", ""]
    par = rep.get("parity", {})
    lines.append("| file | format | size (bytes) |")
    lines.append("|---|---|---:|")
    for name, info in rep.get("files", {}).items():
        lines.append(f"| `{name}` | {info['format']} | {info['bytes']} |")
    lines += ["", f"Parity with the checkpoint ({rep.get('parity_beats', {}).get('what', 'n/a')}, "
              f"{par.get('n', 'n/a')} beats): labels agree on {_f(100 * par['agreement'], 3) if 'agreement' in par else 'n/a'} %, "
              f"largest probability difference {par.get('max_abs_proba', float('nan')):.1e}, largest score difference "
              f"{par.get('max_abs_score', float('nan')):.1e} (tolerances: >= 99.9 % labels, 1e-4 probability, "
              "1e-3 + 1e-4 |score|; enforced on export).", ""]
    q = rep.get("int8")
    if q:
        ff, qq = q["ds2_float"], q["ds2_int8"]
        lines += ["### int8 (onnxruntime static quantisation, calibrated on DS1 beats)", "",
                  "| model | size (bytes) | DS2 macro-F1 | accuracy | S Se / +P | V Se / +P |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, m, size in (("float32", ff, q["float_bytes"]), ("int8", qq, q["int8_bytes"])):
            lines.append(f"| {name} | {size} | {_f(m['macro_f1'], 2)} | {_f(m['accuracy'], 2)} | "
                         f"{_f(m['S']['se'])} / {_f(m['S']['ppv'])} | {_f(m['V']['se'])} / {_f(m['V']['ppv'])} |")
        lines += ["", f"int8 and float labels agree on {_f(100 * q['agreement_with_float_ds2'], 2)} % of DS2 beats. "
                  f"Calibration: {q['calibration']}.", ""]
    lat = rep.get("latency")
    if lat:
        m = rep.get("machine", {})
        lines += ["### Latency (onnxruntime, measured)", "",
                  f"CPU {m.get('cpu', 'n/a')} ({m.get('cores', '?')} cores; load average "
                  f"{m.get('loadavg_1_5_15', 'n/a')} at measurement time), onnxruntime {m.get('onnxruntime', '?')}, "
                  f"{rep.get('date', '')}.", "",
                  "| model | threads | batch | median ms | p95 ms | beats/s |", "|---|---:|---:|---:|---:|---:|"]
        for name, rows in lat.items():
            for r in rows:
                lines.append(f"| {name} | {r['threads']} | {r['batch']} | {r['median_ms']:.3f} | {r['p95_ms']:.3f} | "
                             f"{r['throughput_beats_per_s']:.0f} |")
        lines.append("")
    lines += [f"The preprocessing contract is in `{os.path.relpath(out_dir / 'contract.json', out_dir)}` and inside "
              "each exported file (ONNX metadata_props key `ecgnas.contract`; TorchScript extra file "
              "`contract.json`).", ""]
    return lines


def _search_text(res: Mapping[str, Any] | None, cfg: Mapping[str, Any]) -> str:
    if res:
        return (f"`{res.get('method')}` on the `{res.get('space')}` space (seed {res.get('seed')}), "
                f"{res.get('evaluations', 'n/a')} candidate evaluations on DS1 (selection on the DS1 hold-out), "
                f"{_f(res.get('search_cost_seconds'), 0)} s of candidate evaluation + "
                f"{_f(res.get('final_train_seconds'), 0)} s of final training")
    if cfg.get("search"):
        return str(cfg["search"])
    return ("not recorded in this run folder (a searched architecture's search is described by its "
            "`ecgnas search` output folder, whose `ecgnas report` writes the card with it)")


def model_card(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
               export_report: Mapping[str, Any] | None = None, search: Mapping[str, Any] | None = None) -> str:
    """The Markdown text of the model card of ``run_dir`` (links relative to ``out_dir``); ``search``:
    the ``result.json`` of the ``ecgnas search`` that found the model, for its method and cost."""
    run = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run
    cfg = _read(run / "config.json") or {}
    summ = _read(run / "train_summary.json") or {}
    metrics = _read(run / "metrics.json")
    cv = _read(run / "cv_metrics.json")
    ens = cfg.get("ensemble") or {}
    model, hp = cfg.get("model", summ.get("model", "?")), cfg.get("hparams", summ.get("hparams", {}))
    k = ens.get("k", 1) or 1
    lines = [f"# Model card: `{model}`{f' x{k} ensemble' if k > 1 else ''} ({run.name})", "",
             "An ECG beat classifier (AAMI EC57 classes N, S, V, F, Q) trained with ecgnas on the MIT-BIH "
             "Arrhythmia Database.", "",
             "## Intended use", "",
             "* Research and teaching: comparing beat classifiers and architecture-search methods under the "
             "inter-patient protocol; a starting point for engineering work on Holter-analysis software.",
             "* Input: one ECG lead, beats already located (R-peak positions given); see the preprocessing "
             "contract.", "",
             "## Not intended use", "",
             "* **Not a medical device.** It is not cleared or validated for diagnosis, monitoring or any "
             "clinical decision, and must not be used on patients.",
             "* Not for leads, sampling rates or preprocessing other than the contract's; not for paced "
             "rhythms (paced records were excluded; class Q is untrained); not for beat detection.",
             "* Not validated outside MIT-BIH (48 half-hour records of 47 patients, 1975-1979).", "",
             "## Model", "",
             f"* Family `{model}`, hyper-parameters `{hp}`; {summ.get('params', 'n/a')} parameters"
             f"{' per member' if k > 1 else ''}.",
             (f"* Ensemble of {k} members ({ens.get('members', 'n/a')}), mean of their probabilities; decision: "
              if k > 1 else "* A single model; decision: ")
             + f"{'per-class offsets fitted on DS1 out-of-fold predictions' if ens.get('decision') == 'cv' else 'argmax'}"
             ".",
             f"* Training recipe: `{cfg.get('train', {})}`; {_f(summ.get('train_seconds'), 0)} s of training on "
             f"{summ.get('device', 'n/a')}.",
             f"* Search method and cost: {_search_text(search, cfg)}.", "",
             "## Training data and protocol", "",
             (f"* MIT-BIH Arrhythmia Database (PhysioNet), lead from the prep config `{(cfg.get('prep') or {}).get('lead', 'MLII')}`; "
              "paced records 102, 104, 107, 217 excluded; no other database and no extra data."
              if (cfg.get("dataset") or "mitdb") == "mitdb" else
              f"* Databases `{cfg.get('dataset')}` (ecgnas.datasets), lead from the prep config "
              f"`{(cfg.get('prep') or {}).get('lead', 'MLII')}`"
              + (f"; **{cfg['extra_training_data']}** -- not comparable with figures trained on MIT-BIH DS1 alone."
                 if cfg.get("extra_training_data") else ".")),
             f"* Split `{cfg.get('split', 'inter')}`: "
             + ("inter-patient (de Chazal et al. 2004): trained on the 22 DS1 records, tested on the 22 DS2 "
                "records, no patient on both sides. Everything chosen (recipe, offsets, members) was chosen on DS1."
                if cfg.get("split", "inter") == "inter" else "intra-patient (optimistic; for comparison only)."),
             f"* Preprocessing: `{cfg.get('prep', {})}`.", ""]
    if cv:
        lines += ["## DS1 cross-validation (out-of-fold)", "", *_class_table(cv), ""]
    if metrics:
        lines += ["## DS2 (unseen patients)", "", *_class_table(metrics), ""]
        conf = run / "confusion.png"
        if conf.is_file():
            lines += [f"Confusion matrix: ![confusion matrix]({os.path.relpath(conf, out)})", ""]
        fails = failure_records(run / "per_record.csv")
        lines += ["### Known failure records (DS2)", ""]
        if fails:
            lines += ["| record | beats | misclassified | what fails |", "|---|---:|---:|---|"]
            lines += [f"| {r['record']} | {r['n_beats']} | {r['wrong']} | {r['why']} |" for r in fails]
        else:
            lines.append(f"None with a class of >= {FAILURE_MIN_BEATS} beats detected below "
                         f"{FAILURE_SE:.0f} % or as many false S / V alarms.")
        lines += ["", f"Per-record statistics: `{os.path.relpath(run / 'per_record.csv', out)}`.", ""]
    else:
        lines += ["## DS2 (unseen patients)", "", "No metrics.json in the run folder.", ""]
    if export_report:
        lines += _export_lines(export_report, out)
    return "\n".join(lines)


def write_model_card(run_dir, out_dir=None, export_report=None, search=None) -> Path:
    """Write ``model_card.md`` into ``out_dir`` (default the run folder); returns its path."""
    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    path = out / "model_card.md"
    atomic_write_text(path, model_card(run_dir, out, export_report, search))
    return path

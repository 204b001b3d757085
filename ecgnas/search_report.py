"""The report of an ECG search run folder (:mod:`ecgnas.search`): Pareto front, search curve, report.md.

* :func:`pareto_front` -- which candidates no other candidate beats on both hold-out macro-F1
  (higher is better) and a size measure (parameters, FLOPs or latency; lower is better);
* :func:`write_pareto` -- ``pareto.csv`` (every evaluated candidate with its hold-out macro-F1,
  parameters, FLOPs, measured latency and whether it is on the parameter front) and
  ``pareto.png`` (macro-F1 against each size measure, log scale, fronts as steps, constraints as
  dashed lines, the baseline's candidates in grey);
* :func:`write_search_report` -- ``search.png`` (best hold-out macro-F1 so far against the
  number of evaluations, search and baseline) and ``report.md``: the DS2 figures of the final
  model beside the baseline's, the search cost, the best candidates and the figures. ``ecgnas
  report RUN`` re-renders it from the files of a finished run.

>>> pareto_front([50, 60, 55, 60], [10, 30, 5, 40]).tolist()   # 50 @ 10 loses to 55 @ 5
[False, True, True, False]
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from nascore.errors import UserError
from nascore.io import atomic_write_bytes, atomic_write_text, read_json
from nascore.lock import folder_lock

SIZE_MEASURES = (("params", "parameters"), ("flops", "FLOPs per beat"), ("latency_ms", "CPU latency per beat (ms)"))


def pareto_front(score: Sequence[float], size: Sequence[float]) -> np.ndarray:
    """Boolean mask of the candidates not dominated in (``score`` up, ``size`` down). A candidate
    is dominated when another is at least as good on both and strictly better on one; among exact
    duplicates the first is kept."""
    s = np.asarray(score, float)
    c = np.asarray(size, float)
    keep = np.ones(len(s), bool)
    for i in range(len(s)):
        if not (np.isfinite(s[i]) and np.isfinite(c[i])):
            keep[i] = False
            continue
        better_eq = (s >= s[i]) & (c <= c[i])
        strictly = (s > s[i]) | (c < c[i])
        dom = better_eq & strictly
        dup = (s == s[i]) & (c == c[i]) & (np.arange(len(s)) < i)
        keep[i] = not (dom.any() or dup.any())
    return keep


def read_history(search_dir: Path) -> list[dict]:
    """The complete records of a search's ``history.jsonl`` (a torn last line is skipped).

    A reader only: the file is never repaired here, since the search that writes it may be
    appending at this moment; the run loop repairs it under its folder lock."""
    from nascore.io import read_jsonl

    return read_jsonl(Path(search_dir) / "history.jsonl")


def top_rung_records(history: Sequence[Mapping]) -> list[Mapping]:
    """Each candidate once, at the highest rung it reached (multi-fidelity histories record one
    line per (candidate, rung); :mod:`nascore.multifidelity`), in the order those records were
    asked; a single-fidelity history (no ``rung``) is returned as it is.

    >>> top_rung_records([{"i": 0, "arch": "a", "rung": 0}, {"i": 1, "arch": "b", "rung": 0},
    ...                   {"i": 2, "arch": "a", "rung": 1}])
    [{'i': 1, 'arch': 'b', 'rung': 0}, {'i': 2, 'arch': 'a', 'rung': 1}]
    """
    if not any("rung" in rec for rec in history):
        return list(history)
    top: dict[str, Mapping] = {}
    for rec in history:
        old = top.get(rec["arch"])
        if old is None or rec.get("rung", 0) > old.get("rung", 0):
            top[rec["arch"]] = rec
    return sorted(top.values(), key=lambda r: r["i"])


def candidates_frame(history: Sequence[Mapping]) -> pd.DataFrame:
    """One row per evaluated candidate of a search history (``history.jsonl`` records; a
    multi-fidelity candidate at the highest rung it reached, :func:`top_rung_records`)."""
    rows = []
    for rec in top_rung_records(history):
        m = rec.get("metrics", {})
        rows.append({"i": rec["i"], "arch": rec["arch"], "val_macro_f1": rec["score"], "params": m.get("params"),
                     "flops": m.get("flops"), "latency_ms": m.get("latency_ms"), "seconds": rec.get("cost"),
                     "cached": bool(m.get("cached", False))})
    df = pd.DataFrame(rows, columns=["i", "arch", "val_macro_f1", "params", "flops", "latency_ms", "seconds", "cached"])
    return df.sort_values("i").reset_index(drop=True)


def write_pareto(out: Path, history: Sequence[Mapping], constraints: Mapping[str, float] | None = None,
                 baseline_history: Sequence[Mapping] | None = None) -> pd.DataFrame:
    """Write ``pareto.csv`` and ``pareto.png`` into ``out``; returns the candidate table."""
    out = Path(out)
    df = candidates_frame(history)
    if df.empty:
        raise UserError(f"{out}: the search history is empty, no Pareto front to draw")
    for col, _ in SIZE_MEASURES:
        vals = pd.to_numeric(df[col], errors="coerce")
        df[f"front_{col}"] = pareto_front(df["val_macro_f1"], vals.fillna(np.inf)) if vals.notna().any() else False
    atomic_write_text(out / "pareto.csv", df.to_csv(index=False, lineterminator="\n", float_format="%.4f"))
    base = candidates_frame(baseline_history) if baseline_history else None
    _plot_pareto(df, base, dict(constraints or {}), out / "pareto.png")
    return df


def _plot_pareto(df: pd.DataFrame, base: pd.DataFrame | None, constraints: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    measures = [(c, label) for c, label in SIZE_MEASURES if pd.to_numeric(df[c], errors="coerce").notna().any()]
    fig = Figure(figsize=(4.6 * len(measures), 4.0), dpi=110)
    FigureCanvasAgg(fig)
    limits = {"params": constraints.get("max_params"), "flops": constraints.get("max_flops"),
              "latency_ms": constraints.get("max_latency_ms")}
    for k, (col, label) in enumerate(measures):
        ax = fig.add_subplot(1, len(measures), k + 1)
        if base is not None and not base.empty and pd.to_numeric(base[col], errors="coerce").notna().any():
            ax.scatter(base[col], base["val_macro_f1"], marker="x", color="0.6", s=18, label="baseline candidates")
        x = pd.to_numeric(df[col], errors="coerce")
        ax.scatter(x, df["val_macro_f1"], s=16, color="tab:blue", alpha=0.7, label="searched candidates")
        front = df[df[f"front_{col}"]].sort_values(col)
        if not front.empty:
            ax.step(front[col], front["val_macro_f1"], where="post", color="tab:red", lw=1.2, label="Pareto front")
        best = df.loc[df["val_macro_f1"].idxmax()]
        ax.scatter([best[col]], [best["val_macro_f1"]], marker="*", s=120, color="tab:orange", zorder=5,
                   label="selected")
        if limits[col]:
            ax.axvline(limits[col], ls="--", color="k", lw=0.8, label="constraint")
        if (x > 0).all():
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("hold-out macro-F1 (%)")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("search candidates: DS1 hold-out macro-F1 against size", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def _best_so_far(df: pd.DataFrame) -> np.ndarray:
    return np.maximum.accumulate(df.sort_values("i")["val_macro_f1"].to_numpy(float))


def _plot_curve(curves: Mapping[str, np.ndarray], path: Path, xlabel: str = "candidate evaluations",
                ylabel: str = "best DS1 hold-out macro-F1 so far (%)") -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 3.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, y in curves.items():
        ax.plot(np.arange(1, len(y) + 1), y, marker=".", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def _f(v, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)


def _metric_row(label: str, m: Mapping | None, params, cost) -> str:
    if m is None:
        return f"| {label} | – | – | – | – | – | – | – | – | – | – | – |"
    pc = m["per_class"]
    return (f"| {label} | {_f(m['accuracy'])} | {_f(m['macro_f1'])} | {_f(pc['S']['se'])} | {_f(pc['S']['ppv'])} | "
            f"{_f(pc['S']['f1'])} | {_f(pc['V']['se'])} | {_f(pc['V']['ppv'])} | {_f(pc['V']['f1'])} | "
            f"{_f(pc['F']['f1'])} | {_f(params)} | {_f(cost, 0)} |")


def write_search_report(run_dir) -> Path:
    """Render ``search.png`` and ``report.md`` of a finished :func:`ecgnas.search.ecg_search` folder.

    The folder is written under its lock (:func:`nascore.lock.folder_lock`, re-entered when the
    search itself calls this): re-rendering a folder that a search is still writing is refused
    with a UserError naming that search's PID."""
    run = Path(run_dir)
    res_path = run / "result.json"
    if not res_path.is_file():
        raise UserError(f"{run}: no result.json (not a finished `ecgnas search` run folder)")
    res = read_json(res_path)
    if "method" not in res or "ds2" not in res:
        raise UserError(f"{res_path}: not the result of `ecgnas search` (no method / ds2)")
    with folder_lock(run, what="search run folder"):
        return _render_report(run, res)


def search_objective(res: Mapping) -> dict:
    """What a finished search optimised, on DS1 only, and the chosen architecture's DS1 figures.

    From a ``result.json`` (and the ``config`` inside it): ``signal`` (the DS1 score the search
    maximised: the hold-out records, grouped cross-validation over DS1, or the supernet's hold-out
    score), ``epochs`` and ``beats_per_epoch`` of the training behind it (the top rung of a
    multi-fidelity search), ``repeats`` (trainings per candidate whose mean is the score),
    ``value`` (the chosen architecture's score at that fidelity -- the search objective),
    ``final_holdout`` (the DS1 hold-out macro-F1 of the final model, full schedule) and
    ``final_cv`` (the out-of-fold DS1 macro-F1 of the final model's record cross-validation at the
    full schedule: present when it was trained as a ``--ensemble K`` of fold models, else ``None``).
    None of these looks at DS2; the DS2 figures are reported apart from them.

    >>> o = search_objective({"method": "random", "search_val_macro_f1": 61.0, "final_val_macro_f1": 58.0,
    ...                       "config": {"fidelity": {"epochs": 3, "samples_per_epoch": 8192},
    ...                                  "multi_fidelity": {"rungs": [1, 3, 9], "eta": 3}}})
    >>> o["signal"], o["epochs"], o["value"], o["final_cv"]
    ('DS1 hold-out macro-F1', 9, 61.0, None)
    """
    cfg = res.get("config") or {}
    fid = cfg.get("fidelity") or {}
    mf = cfg.get("multi_fidelity")
    selection = cfg.get("selection", "holdout")
    from ecgnas.methods import METHODS

    entry = METHODS.get(str(res.get("method")))
    if entry is not None and entry.kind == "supernet":  # the supernet's own schedule, not the candidates' fidelity
        from ecgnas.supernet import ecg_search_config

        # the settings ecg_search checked with the same function before the search ran
        sn = ecg_search_config(method=entry.supernet, **(cfg.get("supernet") or {}))
        return {"signal": "supernet DS1 hold-out macro-F1", "selection": "holdout", "epochs": sn["epochs"],
                "warmup": sn["warmup"], "beats_per_epoch": sn["samples_per_epoch"],
                "value": res.get("search_val_macro_f1"), "final_holdout": res.get("final_val_macro_f1"),
                "final_cv": res.get("final_cv_macro_f1"), "final_ensemble": cfg.get("final_ensemble", 1),
                "repeats": 1}
    if selection == "cv":
        signal = "DS1 grouped 4-fold cross-validation macro-F1"
    else:
        signal = "DS1 hold-out macro-F1"
    return {"signal": signal, "selection": selection,
            "epochs": (mf or {}).get("rungs", [fid.get("epochs")])[-1],
            "beats_per_epoch": fid.get("samples_per_epoch"),
            "value": res.get("search_val_macro_f1"), "final_holdout": res.get("final_val_macro_f1"),
            "final_cv": res.get("final_cv_macro_f1"), "final_ensemble": cfg.get("final_ensemble", 1),
            "repeats": cfg.get("search_repeats", 1)}


def _objective_lines(res: Mapping) -> list[str]:
    """The report's "search objective" section: DS1 figures only, for the searched model and the baseline."""
    o = search_objective(res)
    beats = "all DS1 beats" if o["beats_per_epoch"] is None else f"{_f(o['beats_per_epoch'])} beats"
    lines = ["## Search objective (DS1 only: what the search optimised)", "",
             f"The search maximised the **{o['signal']}** of "
             + (f"a {o['epochs']}-epoch supernet search ({o['warmup']} of warm-up)" if "warmup" in o else
                f"a {o['epochs']}-epoch training" if o["repeats"] == 1 else
                f"{o['repeats']} {o['epochs']}-epoch trainings with different seeds (their mean)")
             + f" ({beats} per epoch)"
             + (" at the top rung of its multi-fidelity schedule" if (res.get("config") or {}).get("multi_fidelity")
                else "") + ". The final model's DS1 cross-validation score (full schedule) exists when it was "
             "trained as an ensemble of record-fold models (`--ensemble K`). None of these figures looks at DS2.", "",
             "| model | search objective | final model: DS1 hold-out | final model: DS1 CV (out-of-fold) |",
             "|---|---|---|---|",
             f"| {res.get('method')} (searched) | {_f(o['value'], 2)} | {_f(o['final_holdout'], 2)} | "
             f"{_f(o['final_cv'], 2) if o['final_cv'] is not None else 'not trained as an ensemble'} |"]
    base = res.get("baseline")
    if base:
        cv = base.get("final_cv_macro_f1")
        lines.append(f"| baseline: random search, hand-designed | {_f(base.get('search_val_macro_f1'), 2)} | "
                     f"{_f(base.get('final_val_macro_f1'), 2)} | "
                     f"{_f(cv, 2) if cv is not None else 'not trained as an ensemble'} |")
    return lines + [""]


def _render_report(run: Path, res: dict) -> Path:
    """``search.png``, (missing) Pareto files and ``report.md`` of the run folder ``run``."""
    curves = {}
    hist = read_history(run / "search") if (run / "search" / "history.jsonl").is_file() else []
    if hist:
        curves[f"{res['method']} ({res['space']})"] = _best_so_far(candidates_frame(hist))
    base = res.get("baseline")
    base_hist = []
    if base and (Path(base["folder"]) / "search" / "history.jsonl").is_file():
        base_hist = read_history(Path(base["folder"]) / "search")
        curves["baseline: random search, hand-designed family"] = _best_so_far(candidates_frame(base_hist))
    if curves:
        _plot_curve(curves, run / "search.png")
    elif (run / "search" / "log.jsonl").is_file():  # a supernet search: hold-out macro-F1 per epoch
        from nascore.io import read_jsonl

        log = read_jsonl(run / "search" / "log.jsonl")  # a reader: never repairs a file it does not write
        if log and "valid_macro_f1" in log[0]:
            curves[f"{res['method']} supernet"] = np.array([r["valid_macro_f1"] for r in log], float)
            _plot_curve(curves, run / "search.png", xlabel="supernet epoch",
                        ylabel="supernet DS1 hold-out macro-F1 (%)")
    if hist and not (run / "pareto.png").is_file():
        write_pareto(run, hist, res.get("constraints"), base_hist or None)

    lines = [f"# ECG architecture search: {res['method']} on {res['space']} (seed {res['seed']})", "",
             f"Split: {res['split']}-patient. Search on DS1 only (train = DS1 minus the hold-out records, "
             "selection on the DS1 hold-out); DS2 is used for the figures below only.", "",
             *([f"**{str(res['extra_training_data']).capitalize()}** -- the figures are not comparable with "
                "results trained on MIT-BIH alone.", ""] if res.get("extra_training_data") else []),
             f"* best architecture: `{res['best_arch']}`",
             f"* hold-out macro-F1 at search fidelity {_f(res.get('search_val_macro_f1'), 2)}, after the full "
             f"schedule {_f(res.get('final_val_macro_f1'), 2)}",
             f"* search cost: {_f(res['search_cost_seconds'], 0)} s = {_f(res['search_cost_seconds'] / 3600, 3)} h "
             f"of candidate evaluation ({_f(res.get('evaluations'))} evaluations); final training "
             f"{_f(res['final_train_seconds'], 0)} s",
             f"* parameters {_f(res['params'])}, FLOPs per beat {_f(res.get('flops'))}, "
             f"CPU latency per beat {_f(res.get('latency_ms'), 3)} ms"]
    if res.get("constraints"):
        lines.append(f"* constraints: {', '.join(f'{k} = {v:g}' for k, v in res['constraints'].items())}")
    lines += [""] + _objective_lines(res)
    lines += ["## DS2 (inter-patient test set, never used to choose anything)", "",
              "| model | accuracy | macro-F1 (N,S,V,F) | S Se | S +P | S F1 | V Se | V +P | V F1 | F F1 | params | "
              "search s |", "|---|---|---|---|---|---|---|---|---|---|---|---|",
              _metric_row(f"{res['method']} (searched)", res["ds2"], res["params"], res["search_cost_seconds"])]
    if base:
        lines.append(_metric_row("baseline: random search, hand-designed", res.get("baseline_ds2"), base.get("params"),
                                 base.get("search_cost_seconds")))
    lines += ["", "Percent. Per-record figures: `final/per_record.csv`; every prediction: `final/predictions.csv`.", ""]
    if curves:
        lines += ["## Search", "", "![search curve](search.png)", ""]
    if (run / "pareto.png").is_file():
        lines += ["![Pareto front](pareto.png)", ""]
    if (run / "search" / "alpha.png").is_file():
        lines += ["Architecture weights softmax(α) per edge over the supernet epochs:", "",
                  "![alpha](search/alpha.png)", ""]
    if hist:
        df = candidates_frame(hist).sort_values("val_macro_f1", ascending=False).head(10)
        lines += ["Best candidates (DS1 hold-out, search fidelity):", "",
                  "| # | architecture | hold-out macro-F1 | params | FLOPs | latency ms |", "|---|---|---|---|---|---|"]
        for _, r in df.iterrows():
            lines.append(f"| {int(r['i'])} | `{_cell(r['arch'])}` | {_f(float(r['val_macro_f1']), 2)} | {_f(_int(r['params']))} | "
                         f"{_f(_int(r['flops']))} | {_f(_num(r['latency_ms']), 3)} |")
        lines.append("")
        full = candidates_frame(hist)
        front = full[pareto_front(full["val_macro_f1"], pd.to_numeric(full["params"], errors="coerce").fillna(np.inf))]
        lines += ["Pareto front, hold-out macro-F1 against parameters (`pareto.csv` has every candidate and the "
                  "FLOP and latency fronts):", "",
                  "| # | architecture | hold-out macro-F1 | params | FLOPs | latency ms |", "|---|---|---|---|---|---|"]
        for _, r in front.sort_values("params").iterrows():
            lines.append(f"| {int(r['i'])} | `{_cell(r['arch'])}` | {_f(float(r['val_macro_f1']), 2)} | {_f(_int(r['params']))} | "
                         f"{_f(_int(r['flops']))} | {_f(_num(r['latency_ms']), 3)} |")
        lines.append("")
    lines += ["## Confusion matrices (DS2)", "", "![final model](final/confusion.png)", ""]
    if base and (Path(base["folder"]) / "final" / "confusion.png").is_file():
        rel = Path(base["folder"]) / "final" / "confusion.png"
        try:
            rel = rel.resolve().relative_to(run.resolve())
        except ValueError:
            rel = rel.resolve()
        lines += [f"![baseline]({rel.as_posix()})", ""]
    if (run / "final" / "metrics.json").is_file():  # the found model's card, with this search's method and cost
        from ecgnas.export.card import write_model_card

        write_model_card(run / "final", run / "final", search=res)
        lines += ["Model card of the final model: [final/model_card.md](final/model_card.md)", ""]
    path = run / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _cell(text: str) -> str:
    """Text for a markdown table cell (architecture strings contain ``|``)."""
    return str(text).replace("|", "\\|")


def _int(v):
    try:
        return None if v is None or pd.isna(v) else int(v)
    except (TypeError, ValueError):
        return None


def _num(v):
    try:
        return None if v is None or pd.isna(v) else float(v)
    except (TypeError, ValueError):
        return None

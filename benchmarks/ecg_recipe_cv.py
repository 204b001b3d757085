"""Recipe ablation judged by grouped record-fold cross-validation over DS1 (DS2 is never read).

Each variant is a (model, hyper-parameters, training-config overrides) triple. For each seed the
script runs :func:`ecgnas.ensemble.cross_validate` over the 4 record folds of DS1
(:func:`ecgnas.data.record_folds`) with a fixed schedule (no early stopping) and scores the pooled
out-of-fold predictions: macro-F1 over N, S, V, F and the S / V F1, raw (argmax) and after
per-class decision offsets fitted on the same out-of-fold predictions (in-sample for the offsets,
so optimistic by construction; the raw column is the ablation criterion). It also scores the
scikit-learn logistic-regression reference the same way (:func:`sklearn_reference`). The
``offsets_nested`` column fits the offsets on three folds and applies them to the fourth: the
DS1-only test of whether decision offsets help on unseen patients (they did not; see RESULTS.md).

Out-of-fold probabilities are kept under ``--work`` (``<variant>-s<seed>.npz``) so a rerun skips
finished jobs. Output: ``benchmarks/results/ecg_recipe_cv.json``.

    NASCORE_DATA=../shared/data python benchmarks/ecg_recipe_cv.py --seeds 0,1 --jobs 2 --work runs/ecg_recipe_cv
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from common import RESULTS, header, parallel_map  # noqa: E402

import numpy as np  # noqa: E402

from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.io import atomic_write_json  # noqa: E402

# Every field a variant depends on is spelled out, so the rows do not move when TrainConfig's
# defaults do (the defaults are the recipe this ablation chooses).
OLD = {"sampler": "balanced", "class_weight": "none", "samples_per_epoch": 16384, "epochs": 12,
       "schedule": "onecycle", "augment": "none", "lr": 2e-3, "weight_decay": 1e-2, "label_smoothing": 0.0,
       "loss": "ce", "ema_decay": None}
NEW = {**OLD, "sampler": "shuffle", "class_weight": "inverse", "samples_per_epoch": None, "epochs": 6,
       "schedule": "cosine"}
AUG = "scale,wander,noise,shift,stretch"
CELL = "ecg-cell"  # the default ecg-cell network (ecgnas/models/cellnet.py)

#: variant -> (model, hparams, TrainConfig overrides, RR standardisation in the model)
VARIANTS: dict[str, tuple[str, dict, dict, bool]] = {
    "linear: old recipe (balanced sampler, 12 x 16k, lr 2e-3, onecycle)": ("linear", {}, {**OLD}, False),
    "linear: old recipe + RR standardised": ("linear", {}, {**OLD}, True),
    "linear: shuffle + inverse weights, 20 epochs, lr 1e-2, RR standardised": (
        "linear", {}, {**NEW, "epochs": 20, "lr": 1e-2, "weight_decay": 0.0}, True),
    "cell: old recipe": (CELL, {}, {**OLD}, False),
    "cell: old recipe + RR standardised": (CELL, {}, {**OLD}, True),
    "cell: new (shuffle + inverse weights, 6 epochs, cosine, RR std.)": (CELL, {}, {**NEW}, True),
    "cell: new + augment": (CELL, {}, {**NEW, "augment": AUG}, True),
    "cell: new + augment + mixup": (CELL, {}, {**NEW, "augment": AUG + ",mix"}, True),
    "cell: new + augment + EMA 0.999": (CELL, {}, {**NEW, "augment": AUG, "ema_decay": 0.999}, True),
    "cell: new + augment + label smoothing 0.1": (CELL, {}, {**NEW, "augment": AUG, "label_smoothing": 0.1}, True),
    "cell: new + augment + focal loss": (CELL, {}, {**NEW, "augment": AUG, "loss": "focal"}, True),
    "cell: new + augment + balanced sampler": (CELL, {}, {**NEW, "augment": AUG, "sampler": "balanced",
                                                         "class_weight": "none"}, True),
    "cell: new + augment + RR jitter": (CELL, {}, {**NEW, "augment": AUG + ",rr"}, True),
    "cell: new + augment + lr 5e-3": (CELL, {}, {**NEW, "augment": AUG, "lr": 5e-3}, True),
}
VARIANTS["cell: new + augment + label smoothing 0.1 + linear RR path (rr_skip)"] = (
    CELL, {"rr_skip": True}, {**NEW, "augment": AUG, "label_smoothing": 0.1}, True)
#: variants on other prepared inputs: variant -> PrepConfig overrides (the rest as in VARIANTS)
PREP_VARIANTS: dict[str, dict] = {}
for _name, _prep in (("record amplitude normalisation", {"beat_norm": "record"}),
                     ("residual channel only", {"residual": "only"})):
    for _base in ("cell: new + augment", "cell: new + augment + mixup"):
        _v = f"{_base} + {_name}"
        VARIANTS[_v] = VARIANTS[_base]
        PREP_VARIANTS[_v] = _prep
_v = "cell: new + augment + label smoothing 0.1 + template of non-premature beats"
VARIANTS[_v] = VARIANTS["cell: new + augment + label smoothing 0.1"]
PREP_VARIANTS[_v] = {"template": "regular"}


def slug(variant: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", variant.lower()).strip("-")[:60]


def scores(y: np.ndarray, proba: np.ndarray, fold: np.ndarray | None = None) -> dict:
    """Out-of-fold scores: ``raw`` (argmax), ``offsets_in_sample`` (offsets fitted on these same
    predictions: optimistic by construction) and, given each beat's ``fold``, ``offsets_nested``
    (for each fold, offsets fitted on the other folds' predictions, applied to it: the honest
    DS1 estimate of what decision offsets do for unseen patients)."""
    from ecgnas.decision import apply_offsets, fit_offsets
    from ecgnas.metrics import classification_report

    def one(pred):
        r = classification_report(y, pred)
        return {"macro_f1": r["macro_f1"], "S_f1": r["per_class"]["S"]["f1"], "V_f1": r["per_class"]["V"]["f1"],
                "S_se": r["per_class"]["S"]["se"], "S_ppv": r["per_class"]["S"]["ppv"]}

    b = fit_offsets(y, proba)
    out = {"raw": one(proba.argmax(1)), "offsets_in_sample": one(apply_offsets(proba, b).argmax(1)),
           "offsets": b.tolist()}
    if fold is not None:
        pred = np.empty(len(y), np.int64)
        for k in np.unique(fold):
            held = fold == k
            pred[held] = apply_offsets(proba[held], fit_offsets(y[~held], proba[~held])).argmax(1)
        out["offsets_nested"] = one(pred)
    return out


def _fold_of(beats, folds) -> np.ndarray:
    f = np.full(len(beats.y), -1)
    for k, idx in enumerate(folds):
        f[idx] = k
    return f


def _job(job: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from ecgnas.data import DataSpec, PrepConfig, record_folds
    from ecgnas.ensemble import cross_validate
    from ecgnas.evaluate import build, load_data
    from ecgnas.train import TrainConfig

    out = Path(job["work"]) / f"{slug(job['variant'])}-s{job['seed']}.npz"
    beats, _ = load_data(DataSpec(prep=PrepConfig(**PREP_VARIANTS.get(job["variant"], {})), data=job["data"]),
                         progress=False)
    folds = record_folds(beats, 4)
    if not out.exists():
        model, hp, over, rr_norm = VARIANTS[job["variant"]]
        cfg = TrainConfig(**{"device": "cpu", "num_threads": 1, "seed": job["seed"], "select": "last",
                             "patience": None, **over})
        t = time.process_time()
        cv = cross_validate(lambda k: build(model, beats.window, beats.n_rr, 5, hp, in_channels=beats.in_channels,
                                                  rr_norm=rr_norm),
                            beats, folds, cfg)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{time.time_ns()}.npz")
        np.savez(tmp, proba=cv["proba"], index=cv["index"], cpu_seconds=time.process_time() - t)
        tmp.replace(out)
    z = np.load(out)
    y = beats.y[z["index"]]
    keep = y < 4  # Q is outside the headline metric
    fold = _fold_of(beats, folds)[z["index"]]
    return {"variant": job["variant"], "seed": job["seed"], "cpu_seconds": float(z["cpu_seconds"]),
            **scores(y[keep], z["proba"][keep], fold[keep])}


def sklearn_reference(data, C: float = 0.01) -> dict:
    """Out-of-fold scores of the scikit-learn logistic regression (balanced weights, ``C``) on
    residual + RR over the same 4 DS1 record folds."""
    from sklearn.linear_model import LogisticRegression

    from ecgnas.data import DataSpec, record_folds
    from ecgnas.evaluate import load_data

    beats, _ = load_data(DataSpec(data=data), progress=False)
    folds = record_folds(beats, 4)
    feat = lambda i: np.concatenate([beats.rr[i], beats.x[i, 1]], 1)  # noqa: E731
    probas, idx, fold = [], [], []
    for k, held in enumerate(folds):
        tr = np.concatenate([f for j, f in enumerate(folds) if j != k])
        tr = tr[beats.y[tr] < 4]
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(feat(tr), beats.y[tr])
        p = np.zeros((len(held), 5))
        p[:, clf.classes_] = clf.predict_proba(feat(held))
        probas.append(p)
        idx.append(held)
        fold.append(np.full(len(held), k))
    idx = np.concatenate(idx)
    y = beats.y[idx]
    keep = y < 4
    return {"variant": f"sklearn logistic regression (C={C}, balanced), residual + RR", "seed": None,
            **scores(y[keep], np.concatenate(probas)[keep], np.concatenate(fold)[keep])}


def stats(vals) -> dict:
    v = np.asarray(list(vals), dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default=None, help="comma-separated indices into VARIANTS (default all)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--work", default="runs/ecg_recipe_cv")
    ap.add_argument("--out", default=str(RESULTS / "ecg_recipe_cv.json"))
    ap.add_argument("--collect", action="store_true",
                    help="train nothing: aggregate the (variant, seed) results already under --work")
    args = ap.parse_args(argv)
    names = list(VARIANTS)
    if args.variants:
        names = [names[int(i)] for i in args.variants.split(",")]
    jobs = [{"variant": v, "seed": s, "data": args.data, "work": args.work} for s in parse_seeds(args.seeds)
            for v in names]
    if args.collect:
        jobs = [j for j in jobs if (Path(args.work) / f"{slug(j['variant'])}-s{j['seed']}.npz").exists()]
    from ecgnas.data import DataSpec, PrepConfig
    from ecgnas.evaluate import load_data

    for prep in [{}] + [PREP_VARIANTS[v] for v in names if v in PREP_VARIANTS]:
        load_data(DataSpec(prep=PrepConfig(**prep), data=args.data), progress=False)  # warm the caches before forking
    rows = parallel_map(_job, jobs, args.jobs, desc="cv jobs")
    ref = sklearn_reference(args.data)
    agg = {}
    for v in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == v]
        agg[v] = {f"{kind}_{m}": stats(r[kind][m] for r in rs)
                  for kind in ("raw", "offsets_nested", "offsets_in_sample") for m in ("macro_f1", "S_f1", "V_f1")}
        agg[v]["cpu_seconds"] = stats(r["cpu_seconds"] for r in rs)
        agg[v]["spec"] = {"model": VARIANTS[v][0], "hparams": VARIANTS[v][1], "train": VARIANTS[v][2],
                          "rr_norm": VARIANTS[v][3], "prep": PREP_VARIANTS.get(v, {})}
    for v, a in agg.items():
        print(f"{v:60s} CV {a['raw_macro_f1']['mean']:.1f}±{a['raw_macro_f1']['std']:.1f} "
              f"S {a['raw_S_f1']['mean']:.1f} V {a['raw_V_f1']['mean']:.1f} | nested off "
              f"{a['offsets_nested_macro_f1']['mean']:.1f} | in-sample off "
              f"{a['offsets_in_sample_macro_f1']['mean']:.1f} S {a['offsets_in_sample_S_f1']['mean']:.1f} "
              f"({a['cpu_seconds']['mean']:.0f} cpu-s)")
    print(f"{ref['variant']:60s} CV {ref['raw']['macro_f1']:.1f} S {ref['raw']['S_f1']:.1f} V {ref['raw']['V_f1']:.1f}"
          f" | nested off {ref['offsets_nested']['macro_f1']:.1f} | in-sample off {ref['offsets_in_sample']['macro_f1']:.1f}")
    atomic_write_json(args.out, {**header(), "protocol": "4 grouped record folds over DS1, out-of-fold scores; "
                                 "DS2 not read", "rows": rows, "aggregate": agg, "sklearn_reference": ref})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

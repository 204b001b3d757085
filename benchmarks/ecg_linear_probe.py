"""A converged linear classifier on the pipeline's inputs, as a reference for the networks.

scikit-learn's multinomial logistic regression (lbfgs, balanced class weights, L2 strength C)
on the same beats every model sees (``PrepConfig()``): the RR features plus the residual channel
(window minus the record's median beat), or plus both channels. Trained on DS1 minus the hold-out
records (N, S, V, F beats; Q left out as in ``TrainConfig``), C chosen on the DS1 hold-out
macro-F1, DS2 reported for every C (for information) and for the chosen one. This is the
classical family of de Chazal et al. (2004), without their hand-made morphology features.

``--gbt`` adds the second reference: scikit-learn's histogram gradient-boosted trees on the same
residual + RR inputs, fixed settings (300 iterations, learning rate 0.1, 31 leaves, balanced
class weights; nothing is chosen), trained on all of DS1, with its DS1 out-of-fold score over
the 5 record folds that ``ecgnas train`` uses and its DS2 figures.

    NASCORE_DATA=../shared/data python benchmarks/ecg_linear_probe.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

import numpy as np  # noqa: E402

from nascore.io import atomic_write_json  # noqa: E402

FEATURES = {"rr + residual": lambda b, i: np.concatenate([b.rr[i], b.x[i, 1]], 1),
            "rr + window + residual": lambda b, i: np.concatenate([b.rr[i], b.x[i, 0], b.x[i, 1]], 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--C", default="0.01,0.1,1")
    ap.add_argument("--out", default=str(RESULTS / "ecg_linear_probe.json"))
    ap.add_argument("--gbt", action="store_true", help="also the gradient-boosted-trees reference")
    args = ap.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    from ecgnas.data import DataSpec
    from ecgnas.evaluate import load_data
    from ecgnas.metrics import classification_report

    beats, sp = load_data(DataSpec(data=args.data), progress=False)
    tr = sp["train"][beats.y[sp["train"]] < 4]
    rows = []
    for name, feat in FEATURES.items():
        for c in (float(v) for v in args.C.split(",")):
            t = time.process_time()
            clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
            clf.fit(feat(beats, tr), beats.y[tr])
            row = {"features": name, "C": c, "cpu_seconds": round(time.process_time() - t, 1)}
            for part, key in (("val", "holdout"), ("test", "ds2")):
                idx = sp[part]
                r = classification_report(beats.y[idx], clf.predict(feat(beats, idx)))
                row[key] = {"macro_f1": r["macro_f1"], "accuracy": r["accuracy"],
                            **{f"{k}_{m}": r["per_class"][k][m] for k in ("S", "V") for m in ("se", "ppv", "f1")}}
            rows.append(row)
            print(name, c, f"hold-out {row['holdout']['macro_f1']:.1f}  DS2 {row['ds2']['macro_f1']:.1f} "
                  f"(S F1 {row['ds2']['S_f1']:.1f}, V F1 {row['ds2']['V_f1']:.1f})", flush=True)
    gbt = gbt_reference(beats, sp) if args.gbt else None
    chosen = {name: max((r for r in rows if r["features"] == name), key=lambda r: r["holdout"]["macro_f1"])
              for name in FEATURES}
    atomic_write_json(args.out, {**header(), "model": "sklearn LogisticRegression(lbfgs, class_weight=balanced)",
                                 "selection": "C by DS1 hold-out macro-F1", "rows": rows,
                                 "chosen": {k: {"C": v["C"], "holdout": v["holdout"], "ds2": v["ds2"]}
                                            for k, v in chosen.items()}, "gbt": gbt})
    print(f"wrote {args.out}")
    return 0


def gbt_reference(beats, sp) -> dict:
    """Gradient-boosted trees on residual + RR: DS1 5-fold record CV (out of fold) and DS1 -> DS2."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ecgnas.data import record_folds
    from ecgnas.metrics import classification_report

    def model():
        return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, max_leaf_nodes=31,
                                              class_weight="balanced", early_stopping=False, random_state=0)

    feat = FEATURES["rr + residual"]

    def head(y, pred):
        r = classification_report(y, pred)
        return {"macro_f1": r["macro_f1"], "accuracy": r["accuracy"],
                **{f"{k}_{m}": r["per_class"][k][m] for k in ("N", "S", "V", "F") for m in ("se", "ppv", "f1")}}

    folds = record_folds(beats, 5)
    truth, preds = [], []
    for k, held in enumerate(folds):
        tr = np.concatenate([f for j, f in enumerate(folds) if j != k])
        tr = tr[beats.y[tr] < 4]
        preds.append(model().fit(feat(beats, tr), beats.y[tr]).predict(feat(beats, held)))
        truth.append(beats.y[held])
    ds1 = np.concatenate([sp["train"], sp["val"]])
    ds1 = ds1[beats.y[ds1] < 4]
    t = time.process_time()
    clf = model().fit(feat(beats, ds1), beats.y[ds1])
    cpu = time.process_time() - t
    out = {"model": "HistGradientBoostingClassifier(max_iter=300, lr=0.1, 31 leaves, balanced)",
           "features": "rr + residual", "cpu_seconds_fit": round(cpu, 1),
           "cv": head(np.concatenate(truth), np.concatenate(preds)),
           "ds2": head(beats.y[sp["test"]], clf.predict(feat(beats, sp["test"])))}
    print(f"gbt: DS1 CV {out['cv']['macro_f1']:.1f}  DS2 {out['ds2']['macro_f1']:.1f} (S F1 {out['ds2']['S_f1']:.1f}, "
          f"V F1 {out['ds2']['V_f1']:.1f}), {cpu:.0f} CPU-s", flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main())

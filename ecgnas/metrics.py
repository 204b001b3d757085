"""Clinical beat-classification metrics over the AAMI classes (N, S, V, F, Q), AAMI EC57 style.

Inputs everywhere: ``y_true`` and ``y_pred``, 1-D sequences of the same length ``n`` holding
class indices 0..4 into :data:`ecgnas.aami.CLASSES` (or the letters ``"N" "S" "V" "F" "Q"``);
``records``, a length-``n`` sequence naming the record each beat comes from.

Units. Accuracy, sensitivity (Se), positive predictivity (+P, key ``ppv``), false-positive
rate (``fpr``), specificity (``sp``) and F1 are reported in **percent** (0-100). Cohen's kappa,
the j-index and jκ are unitless (kappa and jκ at most 1, j at most 4).

Plain five-class statistics (:func:`class_statistics`), one class against the rest, from the
confusion matrix ``cm`` (rows = truth, columns = prediction) with ``TP = cm[k, k]``,
``FN = row sum - TP``, ``FP = column sum - TP``, ``TN = n - TP - FN - FP``::

    Se = TP/(TP+FN)   +P = TP/(TP+FP)   FPR = FP/(FP+TN)   Sp = TN/(TN+FP)   F1 = 2TP/(2TP+FP+FN)

A 0/0 statistic (for example Se of a class absent from the truth) is ``NaN`` (``None`` in
:func:`metrics_json`). Macro averages follow scikit-learn's ``zero_division=0``: a class whose F1
is 0/0 (absent from both truth and prediction) counts as F1 = 0. ``macro_f1`` averages N, S, V
and F (Q has only 15 beats in DS1+DS2, so its F1 is noise); ``macro_f1_5`` averages all five.

AAMI EC57 SVEB/VEB statistics (:func:`ec57_statistics`). ANSI/AAMI EC57:1998 (section 3.5 and
its reference implementation, the PhysioNet ``bxb`` program, ``print_results``) scores ventricular
and supraventricular ectopic beats with these conventions, reproduced here from the 5x5 matrix
(``Xy`` = reference class X, predicted class y)::

    VEB:  TP = Vv   FN = Vn+Vs+Vf+Vq   FP = Nv+Sv         TN = N,S,F,Q rows, columns n,s,f,q
    SVEB: TP = Ss   FN = Sn+Sv+Sf+Sq   FP = Ns+Vs+Fs      TN = N,V,F,Q rows, columns n,v,f,q

i.e. for VEB, fusion (F) and unclassifiable (Q) reference beats labelled V are *not* false
positives (a fusion beat is partly ventricular; a Q beat has no reference class), and for SVEB a
Q reference beat labelled S is not a false positive. Those cells (Fv, Qv; Qs) are left out of
every count. A beat the algorithm labels Q is a miss (FN) for a true V/S beat and a negative
otherwise. ``bxb`` prints SVEB Se/+P and VEB Se/+P/FPR; the SVEB FPR/Sp here are the same
construction applied to SVEB (our extension). Missed detections (bxb's ``o``/``x`` columns) do
not exist here: every reference beat is classified.

j-index and jκ. Llamedo & Martínez (2011), "Heartbeat classification using feature selection
driven by database generalization criteria", IEEE TBME 58(3):616-625, rank classifiers by
``j = Se_S + +P_S + Se_V + +P_V`` (fractions, so 0 <= j <= 4); Mar, Zaunseder, Martínez, Llamedo
& Poll (2011), "Optimization of ECG classification by means of feature selection", IEEE TBME
58(8):2168-2177, combine it with Cohen's kappa as ``jκ = ½·κ + ⅛·j``. Choices made here: the four
Se/+P are the EC57 SVEB/VEB gross statistics above (those papers report EC57 statistics), a 0/0
term counts as 0 (a model that never predicts S gets no credit for +P_S), and κ is Cohen's kappa
(Cohen 1960) over the full 5x5 matrix. jκ is NaN only when κ is (all beats in one class and all
predictions that same class).

Gross vs per-record average. *Gross* statistics pool all beats of all records into one matrix.
The *per-record average* (:func:`per_record_average`) computes Se and +P in each record and
averages them: Se over the records in which the class is present in the truth (TP+FN > 0), +P
over the records in which it is predicted at least once (TP+FP > 0); the numbers of records used
are reported beside each average. A class present nowhere gives NaN.

>>> import numpy as np
>>> rep = classification_report([0, 0, 1, 2, 2, 3], [0, 1, 1, 2, 3, 3])
>>> round(rep["accuracy"], 2), rep["per_class"]["S"]["se"], rep["per_class"]["S"]["ppv"]
(66.67, 100.0, 50.0)
>>> rep["ec57"]["veb"]["fp"], rep["ec57"]["veb"]["fn"]
(0, 1)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ecgnas.aami import CLASSES
from nascore.errors import UserError

N_CLASSES = len(CLASSES)
MACRO_CLASSES: tuple[str, ...] = ("N", "S", "V", "F")
"""Classes averaged by ``macro_f1`` (AAMI EC57 practice: Q is too rare to score)."""

_IDX = {c: i for i, c in enumerate(CLASSES)}
_N, _S, _V, _F, _Q = (_IDX[c] for c in ("N", "S", "V", "F", "Q"))


# ----------------------------------------------------------------------------- input checks
def as_labels(y: Any, name: str = "y") -> np.ndarray:
    """Class indices as an int64 array ``[n]``; accepts indices 0..4 or AAMI letters.

    >>> as_labels(["N", "V", "Q"]).tolist(), as_labels([0, 4]).tolist()
    ([0, 2, 4], [0, 4])
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise UserError(f"{name}: expected a 1-D sequence of labels, got shape {arr.shape}")
    if arr.dtype.kind in "USO":
        bad = sorted({str(v) for v in arr.tolist() if v not in _IDX})
        if bad:
            raise UserError(f"{name}: unknown class label(s) {bad[:5]} (valid: {', '.join(CLASSES)})")
        return np.array([_IDX[v] for v in arr.tolist()], dtype=np.int64)
    if arr.dtype.kind == "b" or (arr.dtype.kind not in "iu" and arr.size and not np.all(np.mod(arr, 1) == 0)):
        raise UserError(f"{name}: labels must be integer class indices 0..{N_CLASSES - 1}, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= N_CLASSES):
        bad = sorted(set(out[(out < 0) | (out >= N_CLASSES)].tolist()))
        raise UserError(f"{name}: class index {bad[0]} out of range 0..{N_CLASSES - 1} ({CLASSES})")
    return out


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = as_labels(y_true, "y_true")
    p = as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise UserError(f"y_true has {t.size} labels but y_pred has {p.size}")
    if t.size == 0:
        raise UserError("y_true is empty: no beats to score")
    return t, p


def _div(a: float, b: float) -> float:
    """``a / b``, NaN when ``b == 0``."""
    return float(a) / float(b) if b else math.nan


# ----------------------------------------------------------------------------- confusion-based
def confusion(y_true: Any, y_pred: Any) -> np.ndarray:
    """The 5x5 confusion matrix, ``int64``, rows = true class, columns = predicted class.

    >>> confusion([0, 1, 1], [0, 1, 2])[1].tolist()
    [0, 1, 1, 0, 0]
    """
    t, p = _pair(y_true, y_pred)
    counts = np.bincount(t * N_CLASSES + p, minlength=N_CLASSES * N_CLASSES)
    return counts.reshape(N_CLASSES, N_CLASSES).astype(np.int64)


def _check_cm(cm: Any) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.shape != (N_CLASSES, N_CLASSES):
        raise UserError(f"confusion matrix must be {N_CLASSES}x{N_CLASSES}, got shape {cm.shape}")
    if cm.size and (cm.min() < 0):
        raise UserError("confusion matrix has negative counts")
    return cm.astype(np.int64)


def _binary(tp: int, fn: int, fp: int, tn: int) -> dict[str, float]:
    """Se, +P, FPR, Sp, F1 in percent (NaN for 0/0) from binary counts."""
    return {
        "se": 100.0 * _div(tp, tp + fn),
        "ppv": 100.0 * _div(tp, tp + fp),
        "fpr": 100.0 * _div(fp, fp + tn),
        "sp": 100.0 * _div(tn, tn + fp),
        "f1": 100.0 * _div(2 * tp, 2 * tp + fp + fn),
    }


def class_statistics(cm: Any) -> dict[str, dict[str, float]]:
    """Per-class one-vs-rest statistics from a 5x5 confusion matrix.

    Returns ``{class: {"se", "ppv", "fpr", "sp", "f1" (percent, NaN for 0/0), "support" (true
    beats), "n_pred" (predicted beats), "tp", "fn", "fp", "tn"}}`` for each of N, S, V, F, Q.

    >>> st = class_statistics(confusion([0, 0, 2], [0, 2, 2]))
    >>> st["V"]["ppv"], st["V"]["se"], math.isnan(st["S"]["se"])
    (50.0, 100.0, True)
    """
    cm = _check_cm(cm)
    n = int(cm.sum())
    out = {}
    for k, c in enumerate(CLASSES):
        tp = int(cm[k, k])
        fn = int(cm[k].sum()) - tp
        fp = int(cm[:, k].sum()) - tp
        tn = n - tp - fn - fp
        out[c] = {**_binary(tp, fn, fp, tn), "support": tp + fn, "n_pred": tp + fp,
                  "tp": tp, "fn": fn, "fp": fp, "tn": tn}
    return out


def ec57_statistics(cm: Any) -> dict[str, dict[str, float]]:
    """AAMI EC57 gross SVEB and VEB statistics (conventions in the module docstring).

    Returns ``{"sveb": {...}, "veb": {...}}``, each with ``se``, ``ppv``, ``fpr``, ``sp``, ``f1``
    (percent, NaN for 0/0) and the counts ``tp``, ``fn``, ``fp``, ``tn``.

    >>> cm = confusion(["V", "F", "N", "Q"], ["V", "V", "V", "S"])
    >>> ec57_statistics(cm)["veb"]["fp"], ec57_statistics(cm)["sveb"]["fp"]
    (1, 0)
    """
    cm = _check_cm(cm)
    others = range(N_CLASSES)

    def stats(pos: int, fp_rows: Sequence[int], skip_rows: Sequence[int]) -> dict[str, float]:
        tp = int(cm[pos, pos])
        fn = int(cm[pos].sum()) - tp
        fp = int(sum(cm[r, pos] for r in fp_rows))
        # negatives: reference rows other than pos, predicted columns other than pos
        tn = int(sum(cm[r, c] for r in others if r != pos for c in others if c != pos))
        assert fp + tn + tp + fn + sum(int(cm[r, pos]) for r in skip_rows) == int(cm.sum())
        return {**_binary(tp, fn, fp, tn), "tp": tp, "fn": fn, "fp": fp, "tn": tn}

    return {
        "sveb": stats(_S, fp_rows=(_N, _V, _F), skip_rows=(_Q,)),
        "veb": stats(_V, fp_rows=(_N, _S), skip_rows=(_F, _Q)),
    }


def cohen_kappa(cm: Any) -> float:
    """Cohen's (1960) kappa ``(p_o - p_e) / (1 - p_e)`` of a confusion matrix; NaN when ``p_e = 1``.

    >>> round(cohen_kappa(confusion([0, 0, 1, 1], [0, 1, 1, 1])), 4)
    0.5
    """
    cm = _check_cm(cm).astype(np.float64)
    n = cm.sum()
    if n == 0:
        return math.nan
    po = np.trace(cm) / n
    pe = float((cm.sum(axis=1) * cm.sum(axis=0)).sum()) / (n * n)
    return _div(po - pe, 1.0 - pe) if pe != 1.0 else math.nan


def j_index(ec57: dict[str, dict[str, float]]) -> float:
    """Llamedo & Martínez (2011) j-index ``Se_S + +P_S + Se_V + +P_V`` in fractions (0..4).

    Takes :func:`ec57_statistics` output (percent); a NaN (0/0) term counts as 0.

    >>> j_index({"sveb": {"se": 50.0, "ppv": 100.0}, "veb": {"se": 100.0, "ppv": float("nan")}})
    2.5
    """
    terms = (ec57["sveb"]["se"], ec57["sveb"]["ppv"], ec57["veb"]["se"], ec57["veb"]["ppv"])
    return float(sum(0.0 if math.isnan(v) else v / 100.0 for v in terms))


def jk_index(kappa: float, j: float) -> float:
    """Mar et al. (2011) ``jκ = ½·κ + ⅛·j`` (unitless, at most 1).

    >>> jk_index(1.0, 4.0)
    1.0
    """
    return 0.5 * float(kappa) + 0.125 * float(j)


def _macro_f1(per_class: dict[str, dict[str, float]], classes: Sequence[str]) -> float:
    vals = [per_class[c]["f1"] for c in classes]
    return float(np.mean([0.0 if math.isnan(v) else v for v in vals]))


def report_from_confusion(cm: Any) -> dict[str, Any]:
    """Everything :func:`classification_report` returns, from a 5x5 confusion matrix."""
    cm = _check_cm(cm)
    n = int(cm.sum())
    if n == 0:
        raise UserError("confusion matrix is empty: no beats to score")
    per_class = class_statistics(cm)
    ec57 = ec57_statistics(cm)
    kappa = cohen_kappa(cm)
    j = j_index(ec57)
    return {
        "n_beats": n,
        "accuracy": 100.0 * float(np.trace(cm)) / n,
        "macro_f1": _macro_f1(per_class, MACRO_CLASSES),
        "macro_f1_5": _macro_f1(per_class, CLASSES),
        "kappa": kappa,
        "j_index": j,
        "jk_index": jk_index(kappa, j),
        "per_class": per_class,
        "ec57": ec57,
        "confusion": cm,
    }


def classification_report(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Gross (pooled) statistics of a beat classification.

    Returns a dict: ``n_beats``, ``accuracy``, ``macro_f1`` (N,S,V,F), ``macro_f1_5`` (all five),
    all in percent; ``kappa``, ``j_index``, ``jk_index`` (unitless); ``per_class`` =
    :func:`class_statistics`; ``ec57`` = :func:`ec57_statistics`; ``confusion`` (int64 [5, 5]).
    Undefined (0/0) statistics are NaN.

    >>> rep = classification_report([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    >>> rep["accuracy"], rep["macro_f1"], rep["kappa"], rep["jk_index"]
    (100.0, 100.0, 1.0, 1.0)
    """
    return report_from_confusion(confusion(y_true, y_pred))


def probability_scores(y_true: Any, proba: Any) -> dict[str, float]:
    """Threshold-free scores of class probabilities ``proba [n, 5]`` over the N, S, V, F classes.

    Macro-F1 counts argmax decisions, so on a few hold-out patients a handful of S or F beats
    flipping side moves it by points; these use the whole probability and move smoothly:

    * ``macro_auc`` -- the mean one-vs-rest ROC AUC (percent) of the classes of ``MACRO_CLASSES``
      present in ``y_true`` (a class needs positives and negatives; absent ones are skipped);
    * ``balanced_nll`` -- the class-balanced mean negative log-likelihood, the mean over the
      present classes of each class's mean ``-log p(true class)`` (nats; lower is better; p
      clipped at 1e-7);
    * ``balanced_accuracy`` -- the mean recall of the present classes (percent).

    NaN when no class of ``MACRO_CLASSES`` is present.

    >>> s = probability_scores([0, 0, 1, 1], [[.9, .1, 0, 0, 0], [.6, .4, 0, 0, 0],
    ...                                       [.3, .7, 0, 0, 0], [.45, .55, 0, 0, 0]])
    >>> s["macro_auc"], s["balanced_accuracy"], round(s["balanced_nll"], 3)
    (100.0, 100.0, 0.393)
    """
    from sklearn.metrics import roc_auc_score

    y = as_labels(y_true, "y_true")
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape != (len(y), N_CLASSES):
        raise UserError(f"proba: expected shape ({len(y)}, {N_CLASSES}), got {p.shape}")
    aucs, nlls, recalls = [], [], []
    pred = p.argmax(1)
    for c in MACRO_CLASSES:
        k = _IDX[c]
        pos = y == k
        if not pos.any():
            continue
        nlls.append(float(-np.log(np.clip(p[pos, k], 1e-7, 1.0)).mean()))
        recalls.append(float((pred[pos] == k).mean()))
        if (~pos).any():
            aucs.append(float(roc_auc_score(pos, p[:, k])))
    nan = float("nan")
    return {"macro_auc": 100.0 * float(np.mean(aucs)) if aucs else nan,
            "balanced_nll": float(np.mean(nlls)) if nlls else nan,
            "balanced_accuracy": 100.0 * float(np.mean(recalls)) if recalls else nan}


# ----------------------------------------------------------------------------- per record
def _records(records: Any, n: int) -> np.ndarray:
    rec = np.asarray(records)
    if rec.ndim != 1 or rec.size != n:
        raise UserError(f"records: expected {n} record names (one per beat), got shape {rec.shape}")
    return rec.astype(str)


def per_record_table(y_true: Any, y_pred: Any, records: Any) -> pd.DataFrame:
    """One row per record (sorted by name): counts and Se/+P per class, plus EC57 SVEB/VEB.

    Columns: ``record``, ``n_beats``, ``accuracy``; for each class c in N,S,V,F,Q: ``c_n`` (true
    beats), ``c_pred`` (predicted), ``c_tp``, ``c_se``, ``c_ppv``; then ``sveb_se``, ``sveb_ppv``,
    ``veb_se``, ``veb_ppv``, ``veb_fpr`` (EC57 conventions) with their ``*_tp/_fn/_fp`` counts.
    Percent; NaN where 0/0.

    >>> tab = per_record_table([0, 1, 0, 0], [0, 1, 1, 0], ["100", "100", "101", "101"])
    >>> tab[["record", "S_n", "S_se", "S_ppv"]].values.tolist()
    [['100', 1, 100.0, 100.0], ['101', 0, nan, 0.0]]
    """
    t, p = _pair(y_true, y_pred)
    rec = _records(records, t.size)
    rows = []
    for name in sorted(set(rec.tolist())):
        m = rec == name
        cm = confusion(t[m], p[m])
        st = class_statistics(cm)
        ec = ec57_statistics(cm)
        row: dict[str, Any] = {"record": name, "n_beats": int(m.sum()),
                               "accuracy": 100.0 * float(np.trace(cm)) / int(m.sum())}
        for c in CLASSES:
            row.update({f"{c}_n": st[c]["support"], f"{c}_pred": st[c]["n_pred"], f"{c}_tp": st[c]["tp"],
                        f"{c}_se": st[c]["se"], f"{c}_ppv": st[c]["ppv"]})
        for kind in ("sveb", "veb"):
            row.update({f"{kind}_tp": ec[kind]["tp"], f"{kind}_fn": ec[kind]["fn"], f"{kind}_fp": ec[kind]["fp"],
                        f"{kind}_se": ec[kind]["se"], f"{kind}_ppv": ec[kind]["ppv"]})
        row["veb_fpr"] = ec["veb"]["fpr"]
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_defined(values: pd.Series) -> tuple[float, int]:
    v = values.to_numpy(dtype=np.float64)
    v = v[~np.isnan(v)]
    return (float(v.mean()) if v.size else math.nan), int(v.size)


def per_record_average(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per-record averages of Se and +P from :func:`per_record_table` (rule in module docstring).

    Returns ``{class or "sveb"/"veb": {"se", "ppv", "n_records_se", "n_records_ppv"}}``: Se is
    averaged over records where the class occurs in the truth, +P over records where it is
    predicted (exactly the records where the per-record value is defined).

    >>> tab = per_record_table([0, 1, 0, 0], [0, 1, 1, 0], ["100", "100", "101", "101"])
    >>> per_record_average(tab)["S"]
    {'se': 100.0, 'ppv': 50.0, 'n_records_se': 1, 'n_records_ppv': 2}
    """
    out = {}
    for key in (*CLASSES, "sveb", "veb"):
        se, n_se = _mean_defined(table[f"{key}_se"])
        ppv, n_ppv = _mean_defined(table[f"{key}_ppv"])
        out[key] = {"se": se, "ppv": ppv, "n_records_se": n_se, "n_records_ppv": n_ppv}
    return out


# ----------------------------------------------------------------------------- JSON
def json_clean(obj: Any) -> Any:
    """Recursively turn NaN/inf into None, numpy scalars/arrays into Python (JSON-safe).

    >>> json_clean({"a": float("nan"), "b": np.int64(3), "c": np.array([[1, 2]])})
    {'a': None, 'b': 3, 'c': [[1, 2]]}
    """
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def metrics_json(y_true: Any, y_pred: Any, records: Any | None = None) -> dict[str, Any]:
    """The dict written as ``metrics.json``: gross report, EC57 block, per-record averages.

    Keys: ``n_beats``, ``accuracy``, ``macro_f1``, ``macro_f1_5``, ``kappa``, ``j_index``,
    ``jk_index``, ``per_class`` = ``{"N": {"se", "ppv", "fpr", "sp", "f1", "support"}, ...}``,
    ``ec57`` = ``{"sveb": {...}, "veb": {...}}``, ``per_record_average`` (None without
    ``records``), ``n_records``, ``confusion`` (list of lists, rows = truth), ``classes``. Percent
    units; JSON-serialisable, undefined values are ``None``.

    >>> m = metrics_json([0, 2, 2], [0, 2, 0], ["100", "100", "101"])
    >>> m["per_class"]["V"]["se"], m["per_class"]["S"]["se"], m["per_record_average"]["V"]["se"]
    (50.0, None, 50.0)
    """
    t, p = _pair(y_true, y_pred)
    rep = report_from_confusion(confusion(t, p))
    keep = ("se", "ppv", "fpr", "sp", "f1", "support")
    out = {
        "classes": list(CLASSES),
        "n_beats": rep["n_beats"],
        "accuracy": rep["accuracy"],
        "macro_f1": rep["macro_f1"],
        "macro_f1_5": rep["macro_f1_5"],
        "kappa": rep["kappa"],
        "j_index": rep["j_index"],
        "jk_index": rep["jk_index"],
        "per_class": {c: {k: rep["per_class"][c][k] for k in keep} for c in CLASSES},
        "ec57": rep["ec57"],
        "per_record_average": None,
        "n_records": None,
        "confusion": rep["confusion"].tolist(),
    }
    if records is not None:
        table = per_record_table(t, p, records)
        out["per_record_average"] = per_record_average(table)
        out["n_records"] = int(len(table))
    return json_clean(out)

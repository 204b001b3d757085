"""AAMI EC57 metrics (ecgnas.metrics) and evaluation writers (ecgnas.report)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (accuracy_score, cohen_kappa_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support)

from ecgnas.aami import CLASSES
from ecgnas.metrics import (as_labels, classification_report, confusion, ec57_statistics, metrics_json,
                            per_record_average, per_record_table)
from ecgnas.report import read_predictions_csv, save_confusion_png, write_evaluation, write_predictions_csv
from nascore.errors import UserError

N, S, V, F, Q = range(5)

# A hand-worked example (10 beats). Confusion (rows = truth):
#        n  s  v  f  q
#   N  [ 2, 1, 1, 0, 0 ]
#   S  [ 1, 1, 0, 0, 0 ]
#   V  [ 0, 0, 2, 0, 0 ]
#   F  [ 0, 0, 1, 0, 0 ]
#   Q  [ 0, 0, 0, 0, 1 ]
HAND_TRUE = [N, N, N, N, S, S, V, V, F, Q]
HAND_PRED = [N, N, S, V, S, N, V, V, V, Q]


def test_hand_worked_confusion_and_statistics():
    cm = confusion(HAND_TRUE, HAND_PRED)
    assert cm.dtype == np.int64 and cm.shape == (5, 5)
    assert cm.tolist() == [[2, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 2, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1]]
    rep = classification_report(HAND_TRUE, HAND_PRED)
    pc = rep["per_class"]
    assert rep["n_beats"] == 10
    assert rep["accuracy"] == pytest.approx(60.0)
    # N: TP 2, FN 2, FP 1 (S->N), TN 5
    assert pc["N"]["se"] == pytest.approx(50.0)
    assert pc["N"]["ppv"] == pytest.approx(200 / 3)
    assert pc["N"]["fpr"] == pytest.approx(100 / 6)
    assert pc["N"]["sp"] == pytest.approx(500 / 6)
    assert pc["N"]["f1"] == pytest.approx(400 / 7)
    # S: TP 1, FN 1, FP 1
    assert (pc["S"]["se"], pc["S"]["ppv"], pc["S"]["f1"]) == pytest.approx((50.0, 50.0, 50.0))
    # V: TP 2, FN 0, FP 2 (N->V and F->V), TN 6
    assert (pc["V"]["se"], pc["V"]["ppv"], pc["V"]["fpr"]) == pytest.approx((100.0, 50.0, 25.0))
    assert pc["V"]["f1"] == pytest.approx(400 / 6)
    # F: never predicted -> +P is 0/0 = NaN; Se 0; F1 0/(0+0+1) = 0
    assert pc["F"]["se"] == 0.0 and math.isnan(pc["F"]["ppv"]) and pc["F"]["f1"] == 0.0
    assert pc["Q"]["f1"] == pytest.approx(100.0)
    assert [pc[c]["support"] for c in CLASSES] == [4, 2, 2, 1, 1]
    assert rep["macro_f1"] == pytest.approx((400 / 7 + 50 + 400 / 6 + 0) / 4)
    assert rep["macro_f1_5"] == pytest.approx((400 / 7 + 50 + 400 / 6 + 0 + 100) / 5)
    # kappa: p_o = 0.6; p_e = (4*3 + 2*2 + 2*4 + 1*0 + 1*1) / 100 = 0.25 -> 0.35 / 0.75 = 7/15
    assert rep["kappa"] == pytest.approx(7 / 15)
    # EC57: the F beat labelled V is not a VEB false positive -> VEB +P = 2/3 (plain +P_V is 1/2)
    veb, sveb = rep["ec57"]["veb"], rep["ec57"]["sveb"]
    assert (veb["tp"], veb["fn"], veb["fp"], veb["tn"]) == (2, 0, 1, 6)
    assert (veb["se"], veb["ppv"], veb["fpr"]) == pytest.approx((100.0, 200 / 3, 100 / 7))
    assert (sveb["tp"], sveb["fn"], sveb["fp"]) == (1, 1, 1)
    # j = 0.5 + 0.5 + 1 + 2/3; jk = kappa/2 + j/8 = 7/30 + 1/3
    assert rep["j_index"] == pytest.approx(0.5 + 0.5 + 1 + 2 / 3)
    assert rep["jk_index"] == pytest.approx(7 / 30 + 1 / 3)


def test_ec57_exclusions_for_fusion_and_unclassifiable():
    # F->V and Q->V are not VEB false positives; Q->S is not an SVEB false positive, F->S is.
    t = [F, Q, Q, F, N, S, V]
    p = [V, V, S, S, V, V, S]
    ec = ec57_statistics(confusion(t, p))
    assert ec["veb"]["fp"] == 2  # N->V, S->V
    assert ec["veb"]["fn"] == 1  # V->S
    assert ec["sveb"]["fp"] == 2  # F->S, V->S (Q->S skipped)
    assert ec["sveb"]["fn"] == 1  # S->V
    # TN excludes the skipped cells: VEB negatives are rows N,S,F,Q outside column v
    assert ec["veb"]["tn"] == 2  # Q->S, F->S
    assert ec["sveb"]["tn"] == 3  # F->V, Q->V, N->V
    # A predicted Q is a miss for a true V
    assert ec57_statistics(confusion([V, V], [Q, V]))["veb"]["se"] == pytest.approx(50.0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_agrees_with_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    n = 500
    probs = [0.6, 0.15, 0.15, 0.07, 0.03] if seed % 2 else [0.2] * 5
    t = rng.choice(5, size=n, p=probs)
    p = np.where(rng.random(n) < 0.6, t, rng.choice(5, size=n, p=probs))
    rep = classification_report(t, p)
    assert np.array_equal(rep["confusion"], confusion_matrix(t, p, labels=range(5)))
    assert rep["accuracy"] == pytest.approx(100 * accuracy_score(t, p))
    assert rep["kappa"] == pytest.approx(cohen_kappa_score(t, p))
    prec, rec, f1, sup = precision_recall_fscore_support(t, p, labels=range(5), zero_division=0)
    for k, c in enumerate(CLASSES):
        assert rep["per_class"][c]["se"] == pytest.approx(100 * rec[k])
        assert rep["per_class"][c]["ppv"] == pytest.approx(100 * prec[k])
        assert rep["per_class"][c]["f1"] == pytest.approx(100 * f1[k])
        assert rep["per_class"][c]["support"] == sup[k]
        # specificity = recall of the negative class in the one-vs-rest problem
        neg_rec = precision_recall_fscore_support(t != k, p != k, average="binary", zero_division=0)[1]
        assert rep["per_class"][c]["sp"] == pytest.approx(100 * neg_rec)
        assert rep["per_class"][c]["fpr"] == pytest.approx(100 - 100 * neg_rec)
    assert rep["macro_f1"] == pytest.approx(100 * f1_score(t, p, labels=[0, 1, 2, 3], average="macro", zero_division=0))
    assert rep["macro_f1_5"] == pytest.approx(100 * f1_score(t, p, labels=range(5), average="macro", zero_division=0))


def test_absent_class_is_nan_in_report_none_in_json_and_zero_in_macro():
    t = [N, N, S, V, V, N]
    p = [N, S, S, V, N, N]  # no F, no Q anywhere
    rep = classification_report(t, p)
    for c in ("F", "Q"):
        for key in ("se", "ppv", "f1"):
            assert math.isnan(rep["per_class"][c][key])
        assert rep["per_class"][c]["sp"] == 100.0 and rep["per_class"][c]["fpr"] == 0.0
    assert rep["macro_f1"] == pytest.approx(100 * f1_score(t, p, labels=[0, 1, 2, 3], average="macro", zero_division=0))
    # the absent F scores 0 in the macro average: it is 3/4 of the mean over the present classes
    present = np.mean([rep["per_class"][c]["f1"] for c in ("N", "S", "V")])
    assert rep["macro_f1"] == pytest.approx(0.75 * present)
    m = metrics_json(t, p, ["a"] * 6)
    json.dumps(m, allow_nan=False)  # would raise on NaN
    assert m["per_class"]["F"]["se"] is None and m["per_class"]["F"]["support"] == 0
    assert m["per_record_average"]["F"] == {"se": None, "ppv": None, "n_records_se": 0, "n_records_ppv": 0}


def test_kappa_undefined_when_everything_is_one_class():
    rep = classification_report([N, N, N], [N, N, N])
    assert rep["accuracy"] == 100.0 and math.isnan(rep["kappa"]) and math.isnan(rep["jk_index"])
    assert metrics_json([N, N, N], [N, N, N])["kappa"] is None


def test_per_record_averages_on_two_records():
    # record A: V Se 1/2, V +P 1/2; an N labelled S -> S +P 0 (S absent from A's truth)
    # record B: V Se 1/1, V +P 1/2; S Se 1/1, S +P 1/1
    recs = ["A"] * 5 + ["B"] * 5
    t = [N, N, V, V, N, N, N, N, V, S]
    p = [N, V, V, N, S, N, N, V, V, S]
    tab = per_record_table(t, p, recs)
    assert list(tab["record"]) == ["A", "B"]
    assert list(tab["n_beats"]) == [5, 5]
    a, b = tab.iloc[0], tab.iloc[1]
    assert (a["V_n"], a["V_pred"], a["V_tp"], a["V_se"], a["V_ppv"]) == (2, 2, 1, 50.0, 50.0)
    assert (b["V_se"], b["V_ppv"]) == (100.0, 50.0)
    assert math.isnan(a["S_se"]) and a["S_ppv"] == 0.0 and (b["S_se"], b["S_ppv"]) == (100.0, 100.0)
    avg = per_record_average(tab)
    assert avg["V"] == {"se": 75.0, "ppv": 50.0, "n_records_se": 2, "n_records_ppv": 2}
    assert avg["S"] == {"se": 100.0, "ppv": 50.0, "n_records_se": 1, "n_records_ppv": 2}
    # gross differs from the average: V Se pooled = 2/3
    m = metrics_json(t, p, recs)
    assert m["per_class"]["V"]["se"] == pytest.approx(200 / 3)
    assert m["per_record_average"]["V"]["se"] == pytest.approx(75.0)
    assert m["n_records"] == 2 and m["n_beats"] == 10


def test_metrics_json_keys_and_units():
    m = metrics_json(HAND_TRUE, HAND_PRED, ["r1"] * 10)
    for key in ("accuracy", "macro_f1", "macro_f1_5", "kappa", "jk_index", "per_class", "per_record_average",
                "ec57", "confusion", "n_beats"):
        assert key in m
    assert set(m["per_class"]) == set(CLASSES)
    assert set(m["per_class"]["N"]) == {"se", "ppv", "fpr", "sp", "f1", "support"}
    assert m["accuracy"] == pytest.approx(60.0)  # percent, not a fraction
    assert m["confusion"] == confusion(HAND_TRUE, HAND_PRED).tolist()
    assert json.loads(json.dumps(m, allow_nan=False)) == m


def test_bad_input_raises_user_error():
    with pytest.raises(UserError, match="y_pred has 2"):
        confusion([0, 1, 2], [0, 1])
    with pytest.raises(UserError, match="out of range"):
        confusion([0, 7], [0, 1])
    with pytest.raises(UserError, match="unknown class label"):
        as_labels(["N", "X"])
    with pytest.raises(UserError, match="empty"):
        classification_report([], [])
    with pytest.raises(UserError, match="records"):
        per_record_table([0, 1], [0, 1], ["a"])
    assert confusion(["N", "V"], [0, 2]).trace() == 2  # letters and indices mix freely


def test_write_evaluation_roundtrip(tmp_path):
    rng = np.random.default_rng(7)
    n = 400
    t = rng.choice(5, size=n, p=[0.7, 0.1, 0.1, 0.07, 0.03])
    p = np.where(rng.random(n) < 0.7, t, rng.integers(0, 5, n))
    recs = rng.choice(["100", "101", "203"], size=n)
    samples = rng.integers(0, 650000, n)
    out = tmp_path / "eval"
    m = write_evaluation(out, t, p, recs, samples, "unit test")
    assert sorted(x.name for x in out.iterdir()) == ["confusion.png", "metrics.json", "per_record.csv",
                                                     "predictions.csv"]  # no temp files left
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == m and m["title"] == "unit test"
    df = read_predictions_csv(out / "predictions.csv")
    assert list(df.columns) == ["record", "sample", "true", "pred"]
    assert set(df["true"]) <= set(CLASSES)
    assert df["sample"].tolist() == samples.tolist() and df["record"].tolist() == recs.tolist()
    again = metrics_json(df["true"].to_numpy(dtype=object), df["pred"].to_numpy(dtype=object), df["record"])
    assert {k: v for k, v in m.items() if k != "title"} == again
    per_rec = pd.read_csv(out / "per_record.csv", dtype={"record": str})
    assert sorted(per_rec["record"]) == ["100", "101", "203"]
    assert per_rec["n_beats"].sum() == n
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_writers_reject_bad_input(tmp_path):
    with pytest.raises(UserError, match="samples"):
        write_predictions_csv(tmp_path / "p.csv", ["a", "b"], [1], [0, 1], [0, 1])
    with pytest.raises(UserError, match="5x5"):
        save_confusion_png(np.zeros((3, 3)), tmp_path / "c.png", "x")
    bad = tmp_path / "bad.csv"
    bad.write_text("record,sample,true,pred\n100,5,N,Z\n")
    with pytest.raises(UserError, match="bad.csv"):
        read_predictions_csv(bad)
    bad.write_text("record,sample,true\n100,5,N\n")
    with pytest.raises(UserError, match="missing column"):
        read_predictions_csv(bad)
    assert not (tmp_path / "p.csv").exists()


def test_probability_scores_skip_absent_classes_and_reward_ranking():
    from ecgnas.metrics import probability_scores

    y = np.array([0, 0, 0, 2, 2])
    good = np.eye(5)[[0, 0, 0, 2, 2]] * 0.9 + 0.02
    s = probability_scores(y, good)
    assert s["macro_auc"] == 100.0 and s["balanced_accuracy"] == 100.0  # S, F absent: N and V only
    bad = good[:, [2, 1, 0, 3, 4]]  # N and V swapped: every decision wrong, ranking reversed
    b = probability_scores(y, bad)
    assert b["macro_auc"] == 0.0 and b["balanced_accuracy"] == 0.0 and b["balanced_nll"] > s["balanced_nll"]
    assert np.isnan(probability_scores([4, 4], good[:2])["macro_auc"])  # only Q: nothing to score
    with pytest.raises(UserError, match="proba: expected shape"):
        probability_scores(y, good[:, :4])

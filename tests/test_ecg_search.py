"""End-to-end ECG search (ecgnas.search, ecgnas.evaluator, the hand-designed space, the CLI), on
small synthetic beats (tests/ecg_fakes.py) so that it runs in seconds on a CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecg_fakes import install_fake_loader
from ecgnas.cli import main as cli
from ecgnas.data import DataSpec, PrepConfig
from ecgnas.evaluator import ECGEvaluator, candidate_of, candidate_seed, default_fidelity
from ecgnas.search import ecg_search, final_schedule, get_search_space
from ecgnas.search_report import pareto_front
from ecgnas.spaces.handdesigned import HandDesignedSpace
from nascore.errors import UserError
from nascore.io import read_jsonl

PREP = PrepConfig(before_s=0.1, after_s=0.2)  # 54 samples at 180 Hz
SPEC = DataSpec(prep=PREP)
FID = default_fidelity(epochs=1, samples_per_epoch=256, batch_size=64)
FINAL = final_schedule(epochs=2, samples_per_epoch=256, batch_size=64)
TINY = dict(budget=4, fidelity=FID, final=FINAL, prep=PREP, progress=False)


@pytest.fixture
def fake(monkeypatch):
    return install_fake_loader(monkeypatch, per_record=40)


def _strip(res: dict) -> dict:
    """A result.json without wall-clock figures."""
    drop = ("wall_seconds_this_call", "search_cost_seconds", "final_train_seconds", "latency_ms", "baseline")
    return {k: v for k, v in res.items() if k not in drop}


# --------------------------------------------------------------------------- hand-designed space

def test_hand_designed_space_round_trip_mutation_and_candidate():
    s = HandDesignedSpace()
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = s.sample(rng)
        assert s.is_valid(a) and s.from_string(s.to_string(a)) == a
        m = s.mutate(a, rng)
        diff = sum(x != y for x, y in zip(s.values(a).values(), s.values(m).values()))
        assert diff == 1
        c = s.crossover(a, m, rng)
        assert all(v in (s.values(a)[f], s.values(m)[f]) for f, v in s.values(c).items())
    assert s.size == 432_000 and len(s.node_labels) == 2 + sum(len(c) for c in s.choices.values())
    cand = s.candidate(s.from_string("depth=2,width=8,kernel_size=3,dropout=0.1,use_rr=0,lr=0.001,"
                                     "weight_decay=0.0001,window=0.3:0.6,imbalance=sqrt_balanced"))
    assert cand == {"model": "resnet", "hparams": {"depth": 2, "width": 8, "kernel_size": 3, "dropout": 0.1,
                                                   "use_rr": False},
                    "train": {"lr": 0.001, "weight_decay": 0.0001, "sampler": "sqrt_balanced", "class_weight": "none"},
                    "prep": {"before_s": 0.3, "after_s": 0.6}}
    with pytest.raises(UserError, match="depth=7 is not a choice"):
        s.from_string(s.to_string(s.sample(rng)).replace("depth=", "depth=7,x=").split(",x=")[0] + ",width=8,"
                      "kernel_size=3,dropout=0.1,use_rr=0,lr=0.001,weight_decay=0.0001,window=0.3:0.6,imbalance=inverse")
    with pytest.raises(UserError, match="missing"):
        s.from_string("depth=2,width=8")
    with pytest.raises(UserError, match="unknown field 'colour'"):
        HandDesignedSpace(colour=("red",))
    small = HandDesignedSpace(depth=(2,), width=(8, 16))
    assert small.size == 432_000 // 5 // 2


# --------------------------------------------------------------------------- evaluator

def test_cv_selection_trains_once_per_record_fold_and_scores_pooled_ds1(fake, monkeypatch):
    import ecgnas.spaces  # noqa: F401
    import ecgnas.train as T
    from ecgnas.aami import DS1, DS2
    from ecgnas.metrics import classification_report
    from nascore.spaces import get_space

    space = get_space("ecg-cell")
    arch = space.sample(np.random.default_rng(1))
    seen, real_fit, real_proba, preds = [], T.fit, T.predict_proba, []
    monkeypatch.setattr(T, "fit", lambda net, beats, split, cfg, **kw: (
        seen.append((split["train"], split["val"], cfg.seed, beats)), real_fit(net, beats, split, cfg, **kw))[1])
    monkeypatch.setattr(T, "predict_proba", lambda net, beats, idx, bs: (
        preds.append((idx, real_proba(net, beats, idx, bs))), preds[-1][1])[1])
    ev = ECGEvaluator(space, FID, spec=SPEC, seed=3, latency=False, selection="cv")
    res = ev(arch)
    assert len(seen) == 4 and len({s[2] for s in seen}) == 4  # four trainings, four seeds
    beats = seen[0][3]
    vals = [s[1] for s in seen]
    assert sorted(np.concatenate(vals).tolist()) == np.flatnonzero(np.isin(beats.record, DS1)).tolist()
    for tr, va, _, _ in seen:
        assert set(beats.record[tr]).isdisjoint(beats.record[va])  # no record in its own training
        assert set(beats.record[tr]).isdisjoint(DS2) and set(beats.record[va]).isdisjoint(DS2)
    y = np.concatenate([beats.y[i] for i, _ in preds])
    proba = np.concatenate([p for _, p in preds])
    pooled = classification_report(y, proba.argmax(1))["macro_f1"]
    assert res.score == pytest.approx(pooled) and res.metrics["selection"] == "cv4"
    # the threshold-free scores are of the same pooled out-of-fold probabilities
    from ecgnas.metrics import probability_scores

    smooth = probability_scores(y, proba)
    assert res.metrics["val_macro_auc"] == pytest.approx(smooth["macro_auc"])
    assert res.metrics["val_balanced_nll"] == pytest.approx(smooth["balanced_nll"])
    assert len(res.metrics["fold_macro_f1"]) == 4
    hold = ECGEvaluator(space, FID, spec=SPEC, seed=3, latency=False)
    assert "selection" not in hold.identity() and ev.identity()["selection"] == "cv4"
    with pytest.raises(UserError, match="selection: 'kfold' is not one of holdout, cv"):
        ECGEvaluator(space, FID, selection="kfold")
    with pytest.raises(UserError, match="needs the inter-patient split"):
        ECGEvaluator(space, FID, selection="cv", spec=DataSpec(split="intra"))
    with pytest.raises(UserError, match="eg-nas .* --selection holdout only"):
        ecg_search("unused", method="eg-nas", selection="cv", **TINY)


def test_evaluator_scores_on_holdout_only_caches_and_is_order_independent(fake, tmp_path):
    import ecgnas.spaces  # noqa: F401
    from nascore.spaces import get_space

    space = get_space("ecg-cell")
    a, b = space.sample(np.random.default_rng(1)), space.sample(np.random.default_rng(2))
    ev = ECGEvaluator(space, FID, spec=SPEC, seed=3, cache_dir=tmp_path / "cache")
    ra = ev(a)
    m = ra.metrics
    assert 0 <= ra.score <= 100 and ra.score == m["val_macro_f1"] and ra.cost > 0
    assert m["params"] > 0 and m["flops"] > 0 and m["latency_ms"] > 0 and m["candidate"]["model"] == "ecg-cell"
    assert m["seed"] == candidate_seed(3, space.to_string(a))
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1  # one entry (beside the write lock)
    again = ev(a)  # from the cache: same numbers, flagged, nothing trained
    assert again.metrics.pop("cached") is True and again.score == ra.score and again.metrics == m
    # another evaluator (another order of asks) gets the same result for `a` without a cache
    other = ECGEvaluator(space, FID, spec=SPEC, seed=3, latency=False)
    other(b)
    assert other(a).score == ra.score
    # the evaluator pickles without its beats (Ray ships settings, not data)
    import pickle

    assert len(pickle.dumps(ev)) < 20_000
    # a space without a candidate() uses the model registered under its name
    assert candidate_of(space, a) == {"model": "ecg-cell", "hparams": {"arch": space.to_string(a)}, "train": {},
                                      "prep": {}}


def test_repeats_train_as_the_next_seeds_would_and_score_their_mean(fake, tmp_path, capsys):
    import ecgnas.spaces  # noqa: F401
    from nascore.spaces import get_space

    space = get_space("ecg-cell")
    arch = space.sample(np.random.default_rng(5))
    key = space.to_string(arch)
    twice = ECGEvaluator(space, FID, spec=SPEC, seed=3, latency=False, repeats=2)
    r = twice(arch)
    one, nxt = (ECGEvaluator(space, FID, spec=SPEC, seed=s, latency=False)(arch) for s in (3, 4))
    # repeat 0 is the seed-3 training, repeat 1 the seed-4 one; the score is their mean
    assert r.metrics["repeat_seeds"] == [candidate_seed(3, key), candidate_seed(4, key)]
    assert r.metrics["repeat_macro_f1"] == pytest.approx([one.score, nxt.score])
    assert r.score == pytest.approx((one.score + nxt.score) / 2)
    assert twice.identity()["repeats"] == 2 and "repeats" not in ECGEvaluator(space, FID, spec=SPEC).identity()
    cv = ECGEvaluator(space, FID, spec=SPEC, seed=3, latency=False, selection="cv", repeats=2)(arch)
    assert len(cv.metrics["fold_macro_f1"]) == 8 and len(cv.metrics["repeat_macro_f1"]) == 2
    assert cv.score == pytest.approx(np.mean(cv.metrics["repeat_macro_f1"]))
    for bad in (0, 1.5, True):
        with pytest.raises(UserError, match="--search-repeats: need an integer >= 1"):
            ECGEvaluator(space, FID, repeats=bad)
    with pytest.raises(UserError, match="--search-repeats: eg-nas scores architectures inside one supernet"):
        ecg_search("unused", method="eg-nas", repeats=2, **TINY)
    out = tmp_path / "rep"
    assert cli(["search", "--method", "random", "--baseline", "none", "--output", str(out), "--budget", "2",
                "--search-epochs", "1", "--search-samples", "128", "--epochs", "1", "--samples-per-epoch", "128",
                "--search-repeats", "2", "--no-latency", "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["search_repeats"] == 2
    assert all(len(h["metrics"]["repeat_macro_f1"]) == 2 for h in read_jsonl(out / "search" / "history.jsonl"))
    assert "of 2 1-epoch trainings with different seeds (their mean)" in (out / "report.md").read_text()


def test_evaluator_never_touches_ds2(fake, monkeypatch):
    import ecgnas.train as T
    from ecgnas.data.splits import inter_patient_split

    seen = []
    real_fit = T.fit

    def spy(model, beats, split, *a, **k):
        seen.append(set(beats.record[np.concatenate([split["train"], split["val"]])].tolist()))
        return real_fit(model, beats, split, *a, **k)

    monkeypatch.setattr(T, "fit", spy)
    space = HandDesignedSpace(depth=(2,), width=(8,), kernel_size=(3,))
    ev = ECGEvaluator(space, FID, spec=SPEC, latency=False)
    ev(space.sample(np.random.default_rng(0)))
    from ecg_fakes import TEST_RECS

    assert seen and not (seen[0] & set(TEST_RECS))
    assert inter_patient_split  # the evaluator uses the real inter-patient split


# --------------------------------------------------------------------------- end to end

def test_search_end_to_end_writes_everything_and_resumes_without_repeating(fake, tmp_path, monkeypatch):
    import ecgnas.evaluator as E

    full = ecg_search(tmp_path / "full", method="evolution", seed=1, **TINY)
    for name in ("config.json", "result.json", "report.md", "pareto.png", "pareto.csv", "search.png",
                 "search/history.jsonl", "final/checkpoint.pt", "final/metrics.json", "final/predictions.csv",
                 "final/per_record.csv", "final/confusion.png", "baseline/result.json", "baseline/final/metrics.json"):
        assert (tmp_path / "full" / name).is_file(), name
    res = json.loads((tmp_path / "full" / "result.json").read_text())
    for key in ("method", "best_arch", "search_cost_seconds", "params", "ds2", "baseline_ds2"):
        assert key in res, key
    metrics = json.loads((tmp_path / "full" / "final" / "metrics.json").read_text())
    assert res["ds2"] == metrics and set(res["baseline_ds2"]) == set(metrics)
    assert res["method"] == "evolution" and res["evaluations"] == 4 and res["ds2"]["n_beats"] == 2 * 40
    pred = (tmp_path / "full" / "final" / "predictions.csv").read_text().splitlines()
    assert pred[0] == "record,sample,true,pred" and len(pred) == 1 + 80

    # kill after two evaluations, resume: each architecture is trained once, same result
    calls = []
    real = E.ECGEvaluator.evaluate

    def counting(self, arch_key, cand):
        calls.append(arch_key)
        if len(calls) == 3 and not (tmp_path / "killed").exists():
            (tmp_path / "killed").touch()
            raise KeyboardInterrupt
        return real(self, arch_key, cand)

    monkeypatch.setattr(E.ECGEvaluator, "evaluate", counting)
    with pytest.raises(KeyboardInterrupt):
        ecg_search(tmp_path / "part", method="evolution", seed=1, **TINY)
    assert len(read_jsonl(tmp_path / "part" / "search" / "history.jsonl")) == 2
    resumed = ecg_search(tmp_path / "part", method="evolution", seed=1, **TINY)
    searched = [c for c in calls if "|" in c]  # ecg-cell strings (the baseline's contain no '|')
    assert len(searched) == len(set(searched)) + 1  # only the interrupted one ran twice
    assert _strip(resumed) | {"config": None} == _strip(full) | {"config": None}
    # a finished run asked again evaluates and trains nothing
    calls.clear()
    ecg_search(tmp_path / "part", method="evolution", seed=1, **TINY)
    assert calls == []


def test_retrain_final_repeats_the_searchs_final_model_and_trains_fold_ensembles(fake, tmp_path):
    from ecgnas.search import chosen_candidate, retrain_final

    res = ecg_search(tmp_path / "s", method="random", seed=2, baseline="none", **TINY)
    cand = chosen_candidate("random", res["best_arch"])
    assert cand["model"] == "ecg-cell" and cand["hparams"] == {"arch": res["best_arch"]}
    again = retrain_final(tmp_path / "again", cand, seed=2, final=FINAL, spec=SPEC)
    final = json.loads((tmp_path / "s" / "final" / "metrics.json").read_text())
    assert again["test"]["macro_f1"] == pytest.approx(final["macro_f1"])  # the same call, the same model
    seeds = [json.loads((tmp_path / d / "config.json").read_text())["train"]["seed"] for d in ("s/final", "again")]
    assert seeds == [2, 2]  # seeded with the search seed, whatever seed FINAL carries
    ens = retrain_final(tmp_path / "ens", cand, seed=2, final=FINAL, spec=SPEC, ensemble=2)
    assert ens["ensemble"]["k"] == 2 and ens["members"] == 2 and 0 <= ens["cv"]["macro_f1"] <= 100  # DS1 OOF
    with pytest.raises(UserError, match="--ensemble"):
        retrain_final(tmp_path / "bad", cand, seed=2, final=FINAL, spec=SPEC, ensemble=0)
    hand = chosen_candidate("random", "depth=2,width=8,kernel_size=3,dropout=0.1,use_rr=0,lr=0.001,"
                            "weight_decay=0.0001,window=0.3:0.6,imbalance=sqrt_balanced", space="resnet-family")
    assert hand["model"] == "resnet" and hand["prep"] == {"before_s": 0.3, "after_s": 0.6}
    assert chosen_candidate("eg-nas", "Genotype(x)")["hparams"] == {"genotype": "Genotype(x)"}


def test_baseline_folder_is_shared_and_other_configurations_are_refused(fake, tmp_path):
    base = tmp_path / "baseline-s0"
    a = ecg_search(tmp_path / "a", method="random", seed=0, baseline=base, **TINY)
    stamp = (base / "result.json").stat().st_mtime_ns
    b = ecg_search(tmp_path / "b", method="evolution", seed=0, baseline=base, **TINY)
    assert a["baseline_ds2"] == b["baseline_ds2"]
    assert (base / "final" / "train_summary.json").is_file()
    assert (base / "result.json").stat().st_mtime_ns >= stamp
    with pytest.raises(UserError, match="different configuration"):
        ecg_search(tmp_path / "a", method="random", seed=1, baseline=base, **TINY)
    with pytest.raises(UserError, match="different configuration"):  # the baseline of seed 0 is not seed 1's
        ecg_search(tmp_path / "c", method="random", seed=1, baseline=base, **TINY)


def test_bad_methods_constraints_and_budgets_are_one_line_errors(fake, tmp_path, capsys):
    with pytest.raises(UserError, match="unknown method 'nsga'"):
        ecg_search(tmp_path / "x", method="nsga", **TINY)
    with pytest.raises(UserError, match="eg-nas searches 1D DARTS cells"):
        ecg_search(tmp_path / "x", method="eg-nas", space="ecg-cell", **TINY)
    with pytest.raises(UserError, match="unknown constraint 'max_watts'"):
        get_search_space("ecg-cell", {"max_watts": 3})
    with pytest.raises(UserError, match="admits no ecg-cell architecture"):
        ecg_search(tmp_path / "x", method="random", constraints={"max_params": 10}, **TINY)
    with pytest.raises(UserError, match="no cost model"):
        get_search_space("resnet-family", {"max_params": 1e5})
    assert not (tmp_path / "x").exists()
    assert cli(["search", "--method", "random", "--budget", "0", "--output", str(tmp_path / "y"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--budget" in err
    assert cli(["search", "--method", "random", "--workers", "2", "--output", str(tmp_path / "y"), "--quiet"]) == 2
    assert "--executor ray" in capsys.readouterr().err


def test_hardware_constraint_is_respected_and_pareto_marks_the_front(fake, tmp_path):
    space = get_search_space("ecg-cell", None, PREP)
    in_ch, window, n_rr = PREP.input_shape()
    params, _ = space.cost_arrays(in_channels=in_ch, window=window, n_rr=n_rr)
    limit = float(np.quantile(params, 0.2))
    res = ecg_search(tmp_path / "hw", method="random", seed=0, constraints={"max_params": limit}, baseline="none",
                     **TINY)
    hist = read_jsonl(tmp_path / "hw" / "search" / "history.jsonl")
    assert all(h["metrics"]["params"] <= limit for h in hist)
    assert res["params"] <= limit and res["baseline_ds2"] is None
    import pandas as pd

    df = pd.read_csv(tmp_path / "hw" / "pareto.csv")
    assert df["front_params"].tolist() == pareto_front(df["val_macro_f1"], df["params"]).tolist()
    assert df.loc[df["val_macro_f1"].idxmax(), "front_params"]


def test_pareto_front_rules():
    assert pareto_front([1, 2, 3], [3, 2, 1]).tolist() == [False, False, True]
    assert pareto_front([1, 1], [5, 5]).tolist() == [True, False]  # duplicates: the first is kept
    assert pareto_front([3, np.nan], [1, 1]).tolist() == [True, False]


def test_cli_search_report_and_baseline_command(fake, tmp_path, capsys):
    args = ["--budget", "3", "--search-epochs", "1", "--search-samples", "128", "--epochs", "1",
            "--samples-per-epoch", "128", "--quiet"]
    out = tmp_path / "cli"
    assert cli(["search", "--method", "random", "--baseline", "none", "--output", str(out)] + args) == 0
    line = capsys.readouterr().out
    assert "DS2 macro-F1" in line and "report.md" in line
    (out / "report.md").unlink()
    assert cli(["report", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## DS2" in text and "pareto.png" in text and "random" in text
    # the DS1 objective is reported apart from DS2, with the chosen candidate's own score
    res = json.loads((out / "result.json").read_text())
    objective = text.split("## Search objective", 1)[1].split("## DS2", 1)[0]
    assert "DS1 hold-out macro-F1** of a 1-epoch training (128 beats per epoch)" in objective
    final_holdout = "–" if res["final_val_macro_f1"] is None else f"{res['final_val_macro_f1']:.2f}"
    assert f"| random (searched) | {res['search_val_macro_f1']:.2f} | {final_holdout} | " \
           "not trained as an ensemble |" in objective
    assert "DS2" not in objective.replace("None of these figures looks at DS2", "")
    assert cli(["report", str(tmp_path / "nothing")]) == 2
    rs = tmp_path / "rs"
    assert cli(["baseline", "random-search", "--trials", "2", "--search-epochs", "1", "--search-samples", "128",
                "--epochs", "1", "--samples-per-epoch", "128", "--output", str(rs), "--quiet"]) == 0
    res = json.loads((rs / "result.json").read_text())
    assert res["space"] == "resnet-family" and res["method"] == "random" and res["baseline_ds2"] is None
    assert cli(["evaluate", str(rs / "final"), "--quiet", "--device", "cpu"]) == 0
    cv = tmp_path / "rs-cv"
    assert cli(["baseline", "random-search", "--trials", "1", "--search-epochs", "1", "--search-samples", "128",
                "--epochs", "1", "--samples-per-epoch", "128", "--selection", "cv", "--output", str(cv), "--quiet"]) == 0
    res = json.loads((cv / "result.json").read_text())
    assert res["config"]["selection"] == "cv"
    assert "DS1 grouped 4-fold cross-validation macro-F1" in (cv / "report.md").read_text()
    assert read_jsonl(cv / "search" / "history.jsonl")[0]["metrics"]["selection"] == "cv4"


# --------------------------------------------------------------------------- Ray

def test_ray_executor_matches_local_and_retries_a_dead_worker(tmp_path):
    """The Ray path on a local two-CPU cluster: same history as the local executor, and a worker that
    dies mid-evaluation is retried (no evaluation lost or duplicated)."""
    ray = pytest.importorskip("ray")
    import sys

    import ecg_fakes
    import ecgnas.spaces  # noqa: F401
    from nascore.executors import get_executor
    from nascore.run import Budget, run_search
    from nascore.spaces import get_space
    from nascore.strategies import get_strategy

    ray.cloudpickle.register_pickle_by_value(ecg_fakes)  # workers cannot import the tests folder
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    space = get_space("ecg-cell")

    def evaluator():
        return ECGEvaluator(space, FID, spec=SPEC, seed=2, latency=False, loader=ecg_fakes.FakeLoader())

    kw = dict(space=space, budget=Budget(queries=6), config={"seed": 2}, batch_size=2)
    local = run_search(strategy=get_strategy("evolution", space, seed=2, population=4), evaluator=evaluator(),
                       out_dir=tmp_path / "local", **kw)
    ex = get_executor("ray", num_cpus=2)
    try:
        par = run_search(strategy=get_strategy("evolution", space, seed=2, population=4), evaluator=evaluator(),
                         out_dir=tmp_path / "ray", executor=ex, **kw)
        strip = lambda h: sorted((r["i"], r["arch"], round(r["score"], 6), r["metrics"].get("error")) for r in h)  # noqa: E731
        assert strip(read_jsonl(tmp_path / "ray" / "history.jsonl")) == strip(read_jsonl(tmp_path / "local" /
                                                                                         "history.jsonl"))
        assert par["best"]["arch"] == local["best"]["arch"] and par["queries"] == local["queries"] == 6
        target = read_jsonl(tmp_path / "local" / "history.jsonl")[3]["arch"]
        dying = ecg_fakes.DiesOnce(evaluator(), str(tmp_path / "died"), target)
        again = run_search(strategy=get_strategy("evolution", space, seed=2, population=4), evaluator=dying,
                           out_dir=tmp_path / "ray2", executor=ex, **kw)
        assert (tmp_path / "died").exists()  # the worker really died once
        hist = read_jsonl(tmp_path / "ray2" / "history.jsonl")
        assert sorted(h["i"] for h in hist) == list(range(6))
        assert again["best"]["arch"] == local["best"]["arch"]
    finally:
        ex.close()


def test_eg_nas_end_to_end_on_darts1d(fake, tmp_path):
    sn = dict(epochs=2, warmup=1, samples_per_epoch=128, batch_size=64, C=8, layers=3, es={"population": 4})
    res = ecg_search(tmp_path / "eg", method="eg-nas", seed=0, supernet=sn, baseline="none", **TINY)
    assert res["space"] == "darts1d" and res["best_arch"].startswith("Genotype(")
    assert res["best_candidate"]["model"] == "darts1d" and res["flops"] > 0 and res["search_cost_seconds"] > 0
    for name in ("search/log.jsonl", "search/alpha.png", "search.png", "final/predictions.csv", "report.md"):
        assert (tmp_path / "eg" / name).is_file(), name
    ckpt = __import__("torch").load(tmp_path / "eg" / "final" / "checkpoint.pt", weights_only=True)
    assert ckpt["model"] == "darts1d" and ckpt["hparams"]["genotype"] == res["best_arch"]
    # the objective is the supernet's score after its own schedule, not the candidates' fidelity
    objective = (tmp_path / "eg" / "report.md").read_text().split("## Search objective", 1)[1].split("## DS2")[0]
    assert "supernet DS1 hold-out macro-F1** of a 2-epoch supernet search (1 of warm-up) (128 beats per epoch)" \
        in objective, objective


# --------------------------------------------------------------------------- eg-nas: released EG-NAS choices

def _egnas_supernet(monkeypatch, argv):
    """The ``supernet`` settings ``ecgnas search`` passes to ecg_search for ``argv`` (not run)."""
    import ecgnas.search

    seen = {}

    def fake_search(output, **kw):
        seen.update(kw)
        raise UserError("stop here")

    monkeypatch.setattr(ecgnas.search, "ecg_search", fake_search)
    assert cli(["search", "--output", "unused", "--quiet"] + argv) == 2
    return seen.get("supernet")


def test_eg_nas_released_options_parse_like_nascore_egnas(monkeypatch, capsys):
    from nascore.egnas import RELEASED_ES
    from ecgnas.supernet import ecg_search_config

    # defaults: nothing recorded, so run folders written before these options keep resuming
    assert _egnas_supernet(monkeypatch, ["--method", "eg-nas", "--supernet-epochs", "3"]) == {"epochs": 3}
    assert _egnas_supernet(monkeypatch, ["--method", "eg-nas", "--sigma-schedule", "paper", "--op-set", "released",
                                         "--pool-bn", "--no-bn-running-stats", "--mean-noise", "0"]) == {}
    released = _egnas_supernet(monkeypatch, ["--method", "eg-nas", "--released"])
    assert released == {"es": RELEASED_ES, "pool_bn": False, "bn_running_stats": True}
    cfg = ecg_search_config(**released)  # what the supernet search runs with
    assert len(cfg["primitives"]) == 7 and "none" not in cfg["primitives"]
    assert cfg["es"]["sigma_schedule"] == "released" and cfg["es"]["batch_fraction"] == 0.5
    # an explicit option overrides --released
    sn = _egnas_supernet(monkeypatch, ["--method", "eg-nas", "--released", "--sigma-schedule", "paper",
                                       "--op-set", "darts", "--pool-bn"])
    assert sn == {"es": {k: v for k, v in RELEASED_ES.items() if k != "sigma_schedule"}, "op_set": "darts",
                  "bn_running_stats": True}
    assert ecg_search_config(**sn)["primitives"][0] == "none" and len(ecg_search_config(**sn)["primitives"]) == 8
    assert _egnas_supernet(monkeypatch, ["--method", "eg-nas", "--sigma-schedule", "released",
                                         "--es-batch-fraction", "0.25"]) == {"es": {"sigma_schedule": "released",
                                                                                    "batch_fraction": 0.25}}
    capsys.readouterr()
    # other methods refuse them; bad values name the flag
    for argv, msg in ((["--method", "random", "--released"], "--released: an eg-nas option"),
                      (["--method", "evolution", "--no-pool-bn"], "--pool-bn: an eg-nas option"),
                      (["--method", "eg-nas", "--es-batch-fraction", "0"], "--es-batch-fraction"),
                      (["--method", "eg-nas", "--mean-noise", "-1"], "--mean-noise"),
                      (["--method", "eg-nas", "--sigma-schedule", "fast"], "--sigma-schedule")):
        with pytest.raises(SystemExit) if "fast" in argv else _nothing():
            assert cli(["search", "--output", "unused", "--quiet"] + argv) == 2
        err = capsys.readouterr().err
        assert msg in err and len([ln for ln in err.splitlines() if "error" in ln]) == 1, err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_eg_nas_released_choices_reach_the_supernet_search(fake, tmp_path, monkeypatch):
    sn = _egnas_supernet(monkeypatch, ["--method", "eg-nas", "--released", "--op-set", "darts"])
    monkeypatch.undo()
    install_fake_loader(monkeypatch, per_record=40)
    sn.update(epochs=2, warmup=1, samples_per_epoch=128, batch_size=64, C=8, layers=3)
    sn["es"] = {**sn["es"], "population": 4}
    res = ecg_search(tmp_path / "eg", method="eg-nas", seed=0, supernet=sn, baseline="none", **TINY)
    outer = json.loads((tmp_path / "eg" / "config.json").read_text())
    assert outer["supernet"]["es"]["sigma_schedule"] == "released" and outer["supernet"]["op_set"] == "darts"
    inner = json.loads((tmp_path / "eg" / "search" / "config.json").read_text())
    assert inner["primitives"][0] == "none" and len(inner["primitives"]) == 8
    assert inner["pool_bn"] is False and inner["bn_running_stats"] is True
    assert inner["es"]["sigma_schedule"] == "released" and inner["es"]["double_softmax"] is True
    es_log = [g for rec in read_jsonl(tmp_path / "eg" / "search" / "log.jsonl") for g in rec.get("es", [])]
    # epoch 1 (after the 1-epoch warm-up): σ0 = 1 under the released schedule (paper: 1/2), half the batch
    assert es_log and all(g["sigma"] == 1.0 and g["batch"] == 32 for g in es_log)
    assert res["best_arch"].startswith("Genotype(")


# --------------------------------------------------------------------------- measured (onnxruntime) latency

def test_onnxruntime_latency_is_measured_on_the_candidate_and_not_the_table(fake, tmp_path):
    pytest.importorskip("onnxruntime")
    import ecgnas.spaces  # noqa: F401
    from nascore.spaces import get_space

    space = get_space("ecg-cell")
    a = space.sample(np.random.default_rng(1))
    ev = ECGEvaluator(space, FID, spec=SPEC, seed=3, latency_source="onnxruntime")
    m = ev(a).metrics
    assert m["latency_source"] == "onnxruntime" and 0 < m["latency_ms"] < 1000
    assert ev.identity()["latency_source"] == "onnxruntime"
    assert "latency_source" not in ECGEvaluator(space, FID, spec=SPEC, seed=3).identity()  # old caches stay valid
    with pytest.raises(UserError, match="--latency-source: 'eager' is not one of table, onnxruntime"):
        ECGEvaluator(space, FID, spec=SPEC, latency_source="eager")


def test_measured_latency_limit_rejects_slow_candidates(fake, tmp_path, monkeypatch):
    import ecgnas.evaluator

    calls = []

    def fake_ms(net, in_channels, window, n_rr):  # the first candidate is "slow", the rest fast
        calls.append((in_channels, window, n_rr))
        return 5.0 if len(calls) == 1 else 0.5

    monkeypatch.setattr(ecgnas.evaluator, "onnxruntime_latency_ms", fake_ms)
    res = ecg_search(tmp_path / "ort", method="random", seed=0, constraints={"max_latency_ms": 1.0},
                     latency_source="onnxruntime", baseline="none", **{**TINY, "budget": 3})
    hist = read_jsonl(tmp_path / "ort" / "search" / "history.jsonl")
    assert len(hist) == 3 and calls[0] == (2, 54, 5)  # the beats' shape: 2 channels, 54 samples, 5 RR
    slow = hist[0]
    assert slow["score"] is None and slow["metrics"]["infeasible"] is True and slow["metrics"]["latency_ms"] == 5.0
    assert "exceeds max_latency_ms=1" in slow["metrics"]["error"] and "val_macro_f1" not in slow["metrics"]
    assert all(h["score"] is not None and h["metrics"]["latency_ms"] == 0.5 for h in hist[1:])
    assert res["latency_ms"] == 0.5  # the final model is measured the same way
    cfg = json.loads((tmp_path / "ort" / "config.json").read_text())
    assert cfg["latency_source"] == "onnxruntime" and cfg["constraints"] == {"max_latency_ms": 1.0}
    assert json.loads((tmp_path / "ort" / "search" / "config.json").read_text())["latency_source"] == "onnxruntime"


def test_latency_source_option_and_missing_onnxruntime(monkeypatch, capsys, tmp_path):
    import sys

    import ecgnas.search

    seen = {}

    def fake_search(output, **kw):
        seen.update(kw)
        raise UserError("stop here")

    monkeypatch.setattr(ecgnas.search, "ecg_search", fake_search)
    base = ["search", "--method", "random", "--output", "unused", "--quiet"]
    assert cli(base) == 2 and seen["latency_source"] == "table"
    assert cli(base + ["--latency-source", "onnxruntime", "--max-latency-ms", "2"]) == 2
    assert seen["latency_source"] == "onnxruntime" and seen["constraints"]["max_latency_ms"] == 2.0
    with pytest.raises(SystemExit):
        cli(base + ["--latency-source", "tflite"])
    assert "--latency-source" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(UserError, match=r"^--latency-source onnxruntime needs the 'onnxruntime' package.*pip install"):
        ecg_search(tmp_path / "none", method="random", latency_source="onnxruntime", baseline="none", **TINY)
    assert not (tmp_path / "none").exists()

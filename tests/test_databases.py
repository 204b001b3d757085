"""Databases as descriptions (issue 17), tested on small synthetic WFDB databases written here with
``wfdb.wrsamp`` / ``wfdb.wrann`` -- no real files needed.

Three toy databases are registered **in this file only** (nothing else in the repository knows
them): ``toyarr`` (360 Hz, MLII + V1, MIT-BIH symbols, 4 records of 3 patients), ``toysv`` (128 Hz,
ECG1 + ECG2, supraventricular beats marked ``S``, first-signal lead fallback) and ``toyinc``
(257 Hz, leads I / II / V1 with ``MLII -> II``, its own symbol ``B`` for normal beats). They go
through prepare -> train (1 epoch, 1 thread) -> cross-database evaluate end to end, which shows
that adding a database is one description (plus its card), nothing else.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgnas.aami import SYMBOL_TO_CLASS
from ecgnas.datasets import DATABASES, Database, get_database, parse_dataset, register, unregister
from nascore.errors import UserError

wfdb = pytest.importorskip("wfdb")

TOYARR = Database(name="toyarr", title="toy arrhythmia db", fs=360, leads=("MLII", "V1"),
                  patients={"a1": "p1", "a2": "p1", "a3": "p2", "a4": "p3"})
TOYSV = Database(name="toysv", title="toy supraventricular db", fs=128, leads=("ECG1", "ECG2"),
                 lead_fallback="first")
TOYINC = Database(name="toyinc", title="toy 12-lead db", fs=257, leads=("I", "II", "V1"),
                  lead_map={"MLII": ("II",)}, symbols={**SYMBOL_TO_CLASS, "B": "N"},
                  patients={"i1": "q1", "i2": "q1", "i3": "q2"})
TOYS = (TOYARR, TOYSV, TOYINC)
#: the records of each toy database: name -> symbol used for S beats
RECORDS = {"toyarr": ("a1", "a2", "a3", "a4"), "toysv": ("s1", "s2"), "toyinc": ("i1", "i2", "i3")}


@pytest.fixture(autouse=True)
def toy_registry():
    for db in TOYS:
        register(db, replace=True)
    yield
    for db in TOYS:
        unregister(db.name)


def _beats_plan(rng, n: int, s_symbol: str, n_symbol: str):
    """(symbols, R-peak times in s): regular ~0.8 s rhythm with premature S beats and wide V beats."""
    symbols, times, t = [], [], 0.6
    for i in range(n):
        r = rng.random()
        sym = s_symbol if r < 0.15 else ("V" if r < 0.3 else n_symbol)
        t += 0.5 if sym == s_symbol else 0.8
        symbols.append(sym)
        times.append(t)
    return symbols, np.asarray(times)


def write_record(folder, name: str, fs: float, leads: tuple[str, ...], main_lead: int, s_symbol="A",
                 n_symbol="N", n_beats=60, seed=0, extra_ann=True):
    """One synthetic record: every beat a bump on the ``main_lead`` signal (other leads: noise and a
    smaller inverted copy), V beats wide and negative; annotations at the R peaks."""
    rng = np.random.default_rng(seed)
    symbols, times = _beats_plan(rng, n_beats, s_symbol, n_symbol)
    n = int((times[-1] + 1.0) * fs)
    t = np.arange(n) / fs
    sig = rng.normal(0, 0.02, n)
    for sym, tr in zip(symbols, times):
        width, amp = (0.04, -1.2) if sym == "V" else (0.012, 1.0)
        sig += amp * np.exp(-0.5 * ((t - tr) / width) ** 2)
    p = np.stack([sig if k == main_lead else -0.3 * sig + rng.normal(0, 0.02, n) for k in range(len(leads))], axis=1)
    wfdb.wrsamp(name, fs=fs, units=["mV"] * len(leads), sig_name=list(leads), p_signal=p, fmt=["16"] * len(leads),
                adc_gain=[1000.0] * len(leads), baseline=[0] * len(leads), write_dir=str(folder))
    samples = np.round(times * fs).astype(int)
    syms = list(symbols)
    if extra_ann:  # a rhythm annotation: not a beat, skipped and counted
        samples = np.concatenate([[5], samples])
        syms = ["+"] + syms
    aux = ["(N" if s == "+" else "" for s in syms]
    wfdb.wrann(name, "atr", samples, symbol=syms, aux_note=aux, write_dir=str(folder))
    return symbols


def make_databases(root):
    """The three toy databases under ``root/<name>``; returns {name: folder}."""
    dirs = {}
    for db in TOYS:
        d = root / db.name
        d.mkdir(parents=True)
        dirs[db.name] = d
        for k, rec in enumerate(RECORDS[db.name]):
            if db.name == "toyarr":
                write_record(d, rec, 360, ("MLII", "V1"), 0, "A", seed=k)
            elif db.name == "toysv":
                write_record(d, rec, 128, ("ECG1", "ECG2"), 0, "S", seed=10 + k)
            else:
                write_record(d, rec, 257, ("I", "II", "V1"), 1, "A", n_symbol="B", seed=20 + k)
    return dirs


@pytest.fixture
def dbs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # beat cache and hash cache stay in tmp
    import ecgnas.data.pipeline as pipeline

    monkeypatch.setattr(pipeline, "_default_jobs", lambda n: 1)  # in-process: no worker start-up on 2 cores
    return make_databases(tmp_path / "data")


# ------------------------------------------------------------------------------------ descriptions

def test_registry_and_builtin_descriptions():
    assert [d.name for d in parse_dataset("mitdb+svdb")] == ["mitdb", "svdb"]
    mit = get_database("mitdb")
    from ecgnas.aami import DS1, DS2, PACED_RECORDS, PUBLISHED_COUNTS
    from ecgnas.data import DEFAULT_HOLDOUT

    assert tuple(mit.excluded) == PACED_RECORDS and mit.splits["DS1"] == DS1 and mit.splits["DS2"] == DS2
    assert mit.holdout == DEFAULT_HOLDOUT and dict(mit.published_counts["DS1"]) == PUBLISHED_COUNTS["DS1"]
    inc, sv, edb = get_database("incartdb"), get_database("svdb"), get_database("edb")
    assert (inc.fs, len(inc.leads), inc.signal_candidates("MLII")) == (257, 12, ("II",))
    assert (sv.fs, edb.fs) == (128, 250)
    for db in (inc, sv, edb):  # unknown facts stay unknown, never invented
        assert db.checksums is None and db.published_counts is None
    assert inc.patients is None and edb.patients is None
    assert mit.patient_of("201") == mit.patient_of("202") != mit.patient_of("203") == "203"  # 47 subjects
    assert sv.symbols["S"] == "S" and mit.symbols["A"] == "S"  # merged on the AAMI class
    for bad, msg in (("nope", "unknown database 'nope'"), ("mitdb+", "cannot read"), ("svdb+svdb", "named twice")):
        with pytest.raises(UserError, match=msg):
            parse_dataset(bad)
    with pytest.raises(UserError, match="not AAMI classes"):
        Database(name="x", title="x", fs=100, symbols={"N": "Z"})
    with pytest.raises(UserError, match="cannot be removed"):
        unregister("mitdb")


def test_dataspec_records_database_and_old_configs_read_as_mitdb():
    from ecgnas.data import DataSpec, PrepConfig
    from ecgnas.run import run_identity

    assert DataSpec.from_config({"prep": PrepConfig().to_dict(), "split": "inter"}).database == "mitdb"
    old = {"model": "linear", "hparams": {}, "split": "inter", "prep": {}, "train": {}, "ensemble": {}}
    assert run_identity(old) == run_identity({**old, "dataset": "mitdb"})
    assert run_identity(old) != run_identity({**old, "dataset": "mitdb+svdb"})
    spec = DataSpec("toyarr+toysv")
    assert spec.extra_training_note() == "extra training data: toysv (every record, training only)"
    with pytest.raises(UserError, match="split"):
        DataSpec("mitdb", PrepConfig(), "random")


def test_dataspec_carries_the_data_folder_outside_its_identity():
    import pickle
    from pathlib import Path

    from ecgnas.data import DataSpec, PrepConfig

    a, b = DataSpec("toyarr", data=Path("/x/toyarr")), DataSpec("toyarr", data="/y")
    assert a.data == "/x/toyarr" and a == b and hash(a) == hash(b) and a.to_dict() == DataSpec("toyarr").to_dict()
    assert pickle.loads(pickle.dumps(a)).data == "/x/toyarr"  # travels to worker processes whole
    assert DataSpec("toyarr+toysv", data="toysv=/s").dirs == {"toyarr": None, "toysv": "/s"}
    with pytest.raises(UserError, match="--data: svdb is not one of the databases used"):
        DataSpec("toyarr", data="svdb=/s")
    # the one place the separate keywords become a spec
    assert DataSpec.of() == DataSpec() and DataSpec.of(dataset="toyarr", split="intra") == DataSpec("toyarr", split="intra")
    assert DataSpec.of(a) is a and DataSpec.of(DataSpec("toyarr"), data="/z").data == "/z"
    with pytest.raises(UserError, match="give a DataSpec or prep, split, not both"):
        DataSpec.of(a, prep=PrepConfig(), split="inter")
    with pytest.raises(UserError, match="spec's folder"):
        DataSpec.of(a, data="/other")
    assert DataSpec().with_prep(PrepConfig(before_s=0.1)).prep.before_s == 0.1


def test_mitdb_cache_key_unchanged():
    """Pinned from the code before databases existed (git HEAD de6b758): MIT-BIH keys are identical."""
    from ecgnas.data.cache import cache_key
    from ecgnas.data.preprocess import PrepConfig

    assert PrepConfig().key() == "d965ab52c7a58cc531d58e5b85938a07b65b564d1f2049f43bf2d3c0859a1145"
    assert cache_key(PrepConfig(), {"100.dat": "ab"}) == \
        "7ee87aaa9cfdb34910a1747edffd4d8b52d6ca60f85feb12a44c6627dc7e35a7"


# ------------------------------------------------------------------------------------ preparation

def test_symbol_maps_lead_selection_and_resampling(dbs):
    from ecgnas.data import PrepConfig
    from ecgnas.data.pipeline import prepare_record

    cfg = PrepConfig()
    window = sum(cfg.window_samples())
    r_arr = prepare_record(str(dbs["toyarr"]), "a1", cfg, "toyarr")
    r_sv = prepare_record(str(dbs["toysv"]), "s1", cfg, "toysv")
    r_inc = prepare_record(str(dbs["toyinc"]), "i1", cfg, "toyinc")
    for r in (r_arr, r_sv, r_inc):
        assert r["x"].shape[1:] == (2, window)            # 360, 128 and 257 Hz all resampled to 180 Hz
        assert r["skipped"] == {"+": 1}                   # the rhythm annotation: skipped and counted
        assert r["counts"]["S"] > 0 and r["counts"]["V"] > 0 and r["counts"]["N"] > 0
        before = cfg.window_samples()[0]
        mean_n = r["x"][np.asarray(r["y"]) == 0, 0].mean(0)
        assert abs(int(np.argmax(mean_n)) - before) <= 2   # the R peak stays at its place after resampling
    # symbol maps: SVDB-style 'S', MIT-style 'A', and the toy INCART's own 'B' are all merged on the AAMI class
    for r, db, s_sym, n_sym, seed in ((r_sv, "toysv", "S", "N", 10), (r_arr, "toyarr", "A", "N", 0),
                                      (r_inc, "toyinc", "A", "B", 20)):
        syms, _ = _beats_plan(np.random.default_rng(seed), 60, s_sym, n_sym)
        assert r["counts"]["S"] == syms.count(s_sym) and r["counts"]["N"] == syms.count(n_sym)
    # sample stays the annotation's index in the file, at the file's own rate
    assert r_sv["sample"].max() < 128 * 60 and r_arr["sample"].max() > 128 * 60
    # lead selection: the toy INCART's MLII is its lead II (signal 1), said in the notes; toysv falls back
    assert any("read from signal 'II'" in n for n in r_inc["notes"])
    assert any("used its first signal 'ECG1'" in n for n in r_sv["notes"])
    assert any("resampled 257 Hz -> 180 Hz" in n for n in r_inc["notes"])
    # the lead map picks the right signal: lead II carries the positive beats
    assert r_inc["x"][np.asarray(r_inc["y"]) == 0, 0].mean(0).max() > 0.5
    # no lead and no fallback: a one-line error naming the record and the leads it has
    with pytest.raises(UserError, match=r"record a1: no lead 'V5' \(it has MLII, V1\)"):
        prepare_record(str(dbs["toyarr"]), "a1", PrepConfig(lead="V5"), "toyarr")


def test_load_beats_cache_keys_differ_per_database_and_patient_split(dbs, tmp_path):
    from ecgnas.data import PrepConfig, load_beats, patient_split

    b = load_beats(dbs["toyarr"], PrepConfig(), cache_dir=tmp_path / "c", progress=False, database="toyarr")
    assert sorted(set(b.record.tolist())) == ["a1", "a2", "a3", "a4"] and b.report["database"] == "toyarr"
    again = load_beats(dbs["toyarr"], PrepConfig(), cache_dir=tmp_path / "c", progress=False, database="toyarr")
    assert again.report["cache"]["hit"] and np.array_equal(again.x, b.x)
    # the same files described with another symbol map are other beats: another cache key
    other = Database(name="toyarr2", title="t", fs=360, symbols={"N": "N", "V": "V"})
    register(other)
    try:
        b2 = load_beats(dbs["toyarr"], PrepConfig(), cache_dir=tmp_path / "c", progress=False, database=other)
        assert b2.report["cache"]["key"] != b.report["cache"]["key"] and b2.class_counts()["S"] == 0
    finally:
        unregister("toyarr2")
    # patient-grouped split: a1 and a2 are one patient and land on the same side
    for seed in range(6):
        parts = patient_split(b, TOYARR, seed=seed)
        sides = {k: set(b.record[v].tolist()) for k, v in parts.items()}
        assert all(sides[k] for k in sides) and not (sides["train"] & sides["val"]) and not (sides["train"] & sides["test"])
        assert any({"a1", "a2"} <= s for s in sides.values())
    with pytest.raises(UserError, match="no record -> patient map"):
        patient_split(b, get_database("incartdb"))


# ------------------------------------------------------------------------ prepare -> train -> evaluate

def test_prepare_train_cross_database_evaluate_end_to_end(dbs, tmp_path, capsys):
    import torch

    from ecgnas.cli import main as ecgnas_main

    rc = ecgnas_main(["prepare", "--dataset", "toyinc", "--data", str(dbs["toyinc"]), "--output",
                      str(tmp_path / "prep"), "--quiet"])
    assert rc == 0
    summ = json.loads((tmp_path / "prep" / "summary.json").read_text())
    assert summ["database"] == "toyinc" and summ["patients"] == ["q1", "q2"] and summ["all"]["S"] > 0
    assert summ["skipped_symbols"] == {"+": 3} and summ["description"]["lead_map"] == {"MLII": ["II"]}

    run = tmp_path / "run"
    rc = ecgnas_main(["train", "--dataset", "toyarr+toysv", "--data", f"toyarr={dbs['toyarr']},toysv={dbs['toysv']}",
                      "--model", "linear", "--epochs", "1", "--samples-per-epoch", "64", "--batch-size", "32",
                      "--threads", "1", "--device", "cpu", "--output", str(run), "--quiet"])
    assert rc == 0
    cfg = json.loads((run / "config.json").read_text())
    note = "extra training data: toysv (every record, training only)"
    assert cfg["dataset"] == "toyarr+toysv" and cfg["extra_training_data"] == note
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["extra_training_data"] == note and summary["extra_training_beats"]["toysv"]["records"] == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["extra_training_data"] == note and note in metrics["title"]
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["dataset"] == "toyarr+toysv" and ckpt["extra_training_data"] == note
    # the model card and the deployment contract say so too
    from ecgnas.evaluate import load_checkpoint
    from ecgnas.export.card import model_card
    from ecgnas.export.contract import build_contract

    assert f"**{note}**" in model_card(run)
    assert build_contract(load_checkpoint(run / "checkpoint.pt"), export_format="onnx")["training"][
        "extra_training_data"] == note
    # the test beats are the toy arrhythmia db's test patient only, never the extra database
    test_recs = {line.split(",")[0] for line in (run / "predictions.csv").read_text().splitlines()[1:]}
    assert test_recs and all(r.startswith("a") for r in test_recs)

    # cross-database: the toy 12-lead db (257 Hz, lead II standing in for MLII), per record and per patient
    capsys.readouterr()
    rc = ecgnas_main(["evaluate", str(run), "--dataset", "toyinc", "--data", str(dbs["toyinc"]), "--quiet",
                      "--device", "cpu"])
    assert rc == 0 and "eval-toyinc" in capsys.readouterr().out
    out = run / "eval-toyinc"
    for f in ("metrics.json", "per_record.csv", "predictions.csv", "confusion.png", "per_patient.csv"):
        assert (out / f).is_file(), f
    m = json.loads((out / "metrics.json").read_text())
    assert m["cross_database"] and m["dataset"] == "toyinc" and m["trained_on"] == "toyarr+toysv"
    assert m["extra_training_data"] == note and m["patients"] == 2 and m["records"] == 3
    per_patient = (out / "per_patient.csv").read_text().splitlines()
    assert per_patient[0].startswith("patient,") and [r.split(",")[0] for r in per_patient[1:]] == ["q1", "q2"]
    per_record = (out / "per_record.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in per_record[1:]] == ["i1", "i2", "i3"]
    # a database the run trained on is not a cross-database test
    with pytest.raises(UserError, match="not an unseen database"):
        from ecgnas.evaluate import evaluate_run

        evaluate_run(run, dataset="toysv", data=str(dbs["toysv"]), progress=False, device="cpu")
    # the run's own database: the usual evaluation into eval-test/, labelled
    from ecgnas.evaluate import evaluate_run

    m2 = evaluate_run(run, "test", data=f"toyarr={dbs['toyarr']},toysv={dbs['toysv']}", progress=False,
                      device="cpu")
    assert m2["extra_training_data"] == note and (run / "eval-test" / "metrics.json").is_file()


def test_a_database_without_patient_map_is_refused_as_a_training_database(dbs, tmp_path):
    from ecgnas.run import train_run
    from ecgnas.train import TrainConfig

    with pytest.raises(UserError, match="no record -> patient map"):
        train_run(tmp_path / "r", "linear", train=TrainConfig(epochs=1, num_threads=1, device="cpu"),
                  dataset="toysv", data=str(dbs["toysv"]), progress=False)


def test_bad_data_option_is_one_line(dbs):
    from ecgnas.data import data_dirs

    with pytest.raises(UserError, match=r"--data: cannot read 'toyarr'"):
        data_dirs("toysv=/x,toyarr", parse_dataset("toyarr+toysv"))
    with pytest.raises(UserError, match="--data: svdb is not one of the databases used"):
        data_dirs("svdb=/x", parse_dataset("toyarr"))
    assert "toyarr" in DATABASES


def test_every_command_takes_dataset(capsys):
    from ecgnas.cli import main as ecgnas_main

    for argv in (["prepare"], ["train"], ["evaluate"], ["search"], ["baseline", "random-search"]):
        with pytest.raises(SystemExit):
            ecgnas_main([*argv, "--help"])
        assert "--dataset" in capsys.readouterr().out, argv


def test_search_evaluator_loads_the_named_database_and_keys_its_cache_on_it():
    from ecgnas.data import DataSpec
    from ecgnas.evaluator import ECGEvaluator
    from ecgnas.search import get_search_space

    calls = []

    def loader(spec, progress=False):
        calls.append(spec)
        raise UserError("stop here")

    space = get_search_space("resnet-family")
    ev = ECGEvaluator(space, spec=DataSpec("toyarr+toysv"), latency=False, loader=loader)
    mit = ECGEvaluator(space, latency=False, loader=loader)
    assert ev.dataset == "toyarr+toysv" and mit.dataset == "mitdb"
    assert ev.identity()["dataset"] == "toyarr+toysv" and "dataset" not in mit.identity()  # old caches stay valid
    with pytest.raises(UserError, match="stop here"):
        ev.data_for(ev.prep)
    with pytest.raises(UserError, match="stop here"):
        mit.data_for(mit.prep)
    assert calls == [DataSpec("toyarr+toysv"), DataSpec()]  # the whole spec reaches the loader
    with pytest.raises(UserError, match="selection 'cv'"):
        ECGEvaluator(space, spec=DataSpec("toyarr"), latency=False, loader=loader, selection="cv")


def test_train_run_takes_a_dataspec(dbs, tmp_path):
    from ecgnas.data import DataSpec, PrepConfig
    from ecgnas.run import train_run
    from ecgnas.train import TrainConfig

    spec = DataSpec("toyarr", PrepConfig(), "inter")
    s = train_run(tmp_path / "r", "linear", train=TrainConfig(epochs=1, num_threads=1, device="cpu", batch_size=32,
                                                            samples_per_epoch=64),
                  spec=spec, data=str(dbs["toyarr"]), progress=False)
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["dataset"] == "toyarr" and "extra_training_data" not in cfg and s["dataset"] == "toyarr"
    with pytest.raises(UserError, match="spec: expected a DataSpec"):
        train_run(tmp_path / "r2", "linear", spec={"database": "toyarr"}, progress=False)
    with pytest.raises(UserError, match="give a DataSpec or dataset, not both"):
        train_run(tmp_path / "r2", "linear", spec=spec, dataset="mitdb", progress=False)
    assert not (tmp_path / "r2").exists()


def _spy_cross_validate(monkeypatch) -> list:
    """Record what :func:`ecgnas.ensemble.cross_validate` is given (folds, extra_train) and what each
    fold model trains on (a fit_fn spy); returns the list of calls."""
    import ecgnas.ensemble as ensemble_mod
    from ecgnas.train import fit

    real, calls = ensemble_mod.cross_validate, []

    def spy(build, beats, folds, config, fit_fn=None, **kw):
        call = {"records": np.asarray(beats.record).astype(str), "folds": [np.asarray(f) for f in folds],
                "extra_train": kw.get("extra_train"), "trains": []}
        calls.append(call)

        def fit_spy(model, b, parts, cfg, **k):
            call["trains"].append(np.asarray(parts["train"]).copy())
            return fit(model, b, parts, cfg, **k)

        return real(build, beats, folds, config, fit_fn=fit_spy, **kw)

    monkeypatch.setattr(ensemble_mod, "cross_validate", spy)
    return calls


def _check_folds_over_main_only(call, n_main_pool: int):
    """Extra rows: in every fold's training set, in no fold; the folds cover the main pool."""
    recs = call["records"]
    extra = np.flatnonzero(np.char.startswith(recs, "toysv:"))
    assert len(extra) > 0
    folds = call["folds"]
    assert all(not np.isin(f, extra).any() for f in folds)  # never held out, never scored
    assert sum(len(f) for f in folds) == n_main_pool
    assert len(call["trains"]) == len(folds)
    for k, tr in enumerate(call["trains"]):
        others = np.concatenate([f for j, f in enumerate(folds) if j != k])
        assert sorted(tr.tolist()) == sorted(np.concatenate([others, extra]).tolist())  # all extra, no held fold
    assert sorted(np.asarray(call["extra_train"]).tolist()) == extra.tolist()


def test_cross_validation_with_extra_training_data_folds_the_main_database_only(dbs, tmp_path, monkeypatch):
    """--cv and fold ensembles with --dataset a+b: folds over a's training patients, every b beat in each
    fold's training set, out-of-fold scores over a's beats only (was refused before)."""
    import torch

    from ecgnas.data import DataSpec, extra_rows
    from ecgnas.evaluate import load_data
    from ecgnas.run import train_run
    from ecgnas.train import TrainConfig

    calls = _spy_cross_validate(monkeypatch)
    data = f"toyarr={dbs['toyarr']},toysv={dbs['toysv']}"
    spec = DataSpec("toyarr+toysv", data=data)
    beats, parts = load_data(spec, progress=False)
    extra = extra_rows(beats)
    main_pool = np.setdiff1d(np.concatenate([parts["train"], parts["val"]]), extra)  # toyarr train + val beats
    assert len(extra) == int(np.char.startswith(beats.record.astype(str), "toysv:").sum()) > 0
    cfg = TrainConfig(epochs=1, num_threads=1, device="cpu", batch_size=32, samples_per_epoch=64)
    note = "extra training data: toysv (every record, training only)"

    s = train_run(tmp_path / "cv", "linear", train=cfg, spec=spec, cv=True, folds=2, progress=False)
    assert len(calls) == 1
    _check_folds_over_main_only(calls[0], len(main_pool))
    oof = np.load(tmp_path / "cv" / "oof.npz")
    assert sorted(oof["index"].tolist()) == main_pool.tolist()  # OOF = the main database's train + val beats
    assert not np.isin(oof["index"], extra).any()
    cvm = json.loads((tmp_path / "cv" / "cv_metrics.json").read_text())
    assert cvm["extra_training_data"] == note and note in cvm["title"] and cvm["dataset"] == "toyarr+toysv"
    assert cvm["extra_training_beats"] == len(extra)
    assert s["extra_training_data"] == note and "cv" in s and "cv_ensemble_test" in s
    assert torch.load(tmp_path / "cv" / "cv_ensemble.pt", weights_only=True)["extra_training_data"] == note

    s2 = train_run(tmp_path / "ens", "linear", train=cfg, spec=spec, ensemble=2, progress=False)
    assert len(calls) == 2
    _check_folds_over_main_only(calls[1], len(main_pool))
    cfg2 = json.loads((tmp_path / "ens" / "config.json").read_text())
    assert cfg2["ensemble"]["folds"] == 2 and cfg2["extra_training_data"] == note
    assert s2["extra_training_data"] == note and s2["members"] == 2 and "cv" in s2
    assert torch.load(tmp_path / "ens" / "checkpoint.pt", weights_only=True)["extra_training_data"] == note
    assert sorted(np.load(tmp_path / "ens" / "oof.npz")["index"].tolist()) == main_pool.tolist()


def test_cross_validate_refuses_extra_rows_inside_the_folds():
    from ecgnas.ensemble import cross_validate
    from ecgnas.train import TrainConfig

    with pytest.raises(UserError, match="extra training beats are also in the folds"):
        cross_validate(lambda k: None, None, [np.array([0, 1]), np.array([2, 3])], TrainConfig(),
                       extra_train=np.array([3, 4]))


def _install_mitdb_plus_extra_fakes(monkeypatch):
    """Fake MIT-BIH beats (tests/ecg_fakes.py, real DS1 / DS2 record names) and a fake extra database
    (records ``s1`` / ``s2``) behind :func:`ecgnas.data.load_beats`."""
    from ecg_fakes import make_beats

    from ecgnas import data as ecgdata

    def fake_load_beats(data=None, config=None, cache_dir=None, progress=True, jobs=None, database=None):
        cfg = config or ecgdata.PrepConfig()
        b = make_beats(window=sum(cfg.window_samples()), per_record=20, seed=0 if database is None else 7)
        if database is not None:  # the extra database: its own record names
            b.record = np.where(np.arange(len(b)) % 2 == 0, "s1", "s2")
        b.config = cfg
        return b

    monkeypatch.setattr(ecgdata, "load_beats", fake_load_beats)


def test_mitdb_plus_extra_cv_folds_ds1_records_and_search_selection_cv(monkeypatch, tmp_path):
    """MIT-BIH as the main database: record folds over DS1 only (train_run and the search evaluator's
    selection='cv'); the extra beats train every fold and are never scored."""
    import ecgnas.train as train_mod
    from ecg_fakes import TEST_RECS
    from ecgnas.data import DataSpec, extra_rows
    from ecgnas.evaluate import load_data
    from ecgnas.evaluator import ECGEvaluator
    from ecgnas.run import train_run
    from ecgnas.search import get_search_space
    from ecgnas.train import TrainConfig

    _install_mitdb_plus_extra_fakes(monkeypatch)
    spec = DataSpec("mitdb+toysv")
    beats, parts = load_data(spec, progress=False)
    extra = extra_rows(beats)
    ds1 = np.flatnonzero(~np.isin(beats.record, TEST_RECS) & ~np.char.startswith(beats.record.astype(str), "toysv:"))
    assert len(extra) == 160 and len(ds1) == 120

    calls = _spy_cross_validate(monkeypatch)
    cfg = TrainConfig(epochs=1, num_threads=1, device="cpu", batch_size=32, samples_per_epoch=64)
    s = train_run(tmp_path / "r", "linear", train=cfg, spec=spec, decision="cv", folds=2, progress=False)
    _check_folds_over_main_only(calls[0], len(ds1))
    assert sorted(np.load(tmp_path / "r" / "oof.npz")["index"].tolist()) == ds1.tolist()
    assert s["offsets"] is not None and s["extra_training_data"].startswith("extra training data: toysv")

    # the search evaluator: selection 'cv' with MIT-BIH + extra data (another main database stays refused)
    with pytest.raises(UserError, match="selection 'cv' folds the MIT-BIH DS1 records.*toyarr"):
        ECGEvaluator(get_search_space("resnet-family"), spec=DataSpec("toyarr+toysv"), latency=False,
                     selection="cv")
    seen = []
    real_fit = train_mod.fit

    def fit_spy(model, b, split, config=None, **kw):
        seen.append((np.asarray(split["train"]).copy(), np.asarray(split["val"]).copy()))
        return real_fit(model, b, split, config, **kw)

    monkeypatch.setattr(train_mod, "fit", fit_spy)
    space = get_search_space("resnet-family")
    ev = ECGEvaluator(space, TrainConfig(epochs=1, samples_per_epoch=64, batch_size=32, num_threads=1, device="cpu"),
                      spec=spec, latency=False, beats=(beats, parts), selection="cv", folds=2)
    arch = space.sample(np.random.default_rng(0))
    res = ev(arch)
    assert res.metrics["selection"] == "cv2" and len(seen) == 2
    assert sorted(np.concatenate([va for _, va in seen]).tolist()) == ds1.tolist()  # only DS1 is scored
    for tr, va in seen:
        assert np.isin(extra, tr).all() and not np.isin(va, extra).any()


TOYNEW_PY = '''"""A database added as one file (written by tests/test_databases.py into a temporary folder)."""
from ecgnas.datasets.base import Database

DATABASE = Database(name="toynew", title="toy one-lead db", fs=250, leads=("ECG",), lead_map={"MLII": ("ECG",)},
                    patients={"n1": "m1", "n2": "m1", "n3": "m2", "n4": "m3"}, card="datasets/toynew.md")
'''


def test_a_new_database_is_one_file_plus_its_card(dbs, tmp_path, monkeypatch, capsys):
    """Every built-in database is its module in ecgnas/datasets/ plus its card, and the registry has
    no list of its own: a module file dropped into the package's path is found as it is, then
    prepared, trained on and tested across databases with nothing else edited."""
    import sys
    from pathlib import Path

    import ecgnas.datasets as registry
    from ecgnas.cli import main as ecgnas_main
    from ecgnas.data import DataSpec, PrepConfig
    from ecgnas.evaluate import evaluate_run
    from ecgnas.run import train_run
    from ecgnas.train import TrainConfig

    root = Path(registry.__file__).resolve().parents[2]
    modules = sorted(f.stem for f in Path(registry.__file__).parent.glob("*.py") if f.stem not in ("__init__", "base"))
    assert sorted(d.name for d in registry.BUILTIN) == modules and registry.BUILTIN[0].name == "mitdb"
    for db in registry.BUILTIN:
        assert db.card == f"datasets/{db.name}.md" and (root / db.card).is_file(), db.name

    pkg = tmp_path / "more"
    pkg.mkdir()
    (pkg / "toynew.py").write_text(TOYNEW_PY)
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(pkg)])
    found = {d.name: d for d in registry._builtin()}
    assert set(found) == {*modules, "toynew"}
    registry.register(found["toynew"])
    try:
        data = tmp_path / "data" / "toynew"
        data.mkdir()
        for k, rec in enumerate(("n1", "n2", "n3", "n4")):
            write_record(data, rec, 250, ("ECG",), 0, "A", seed=30 + k)
        assert ecgnas_main(["prepare", "--dataset", "toynew", "--data", str(data), "--output", str(tmp_path / "prep"),
                            "--quiet"]) == 0
        assert json.loads((tmp_path / "prep" / "summary.json").read_text())["database"] == "toynew"
        run = tmp_path / "run"
        s = train_run(run, "linear", train=TrainConfig(epochs=1, num_threads=1, device="cpu", batch_size=32,
                                                       samples_per_epoch=64),
                      spec=DataSpec("toynew", PrepConfig(), "inter", data=data), progress=False)
        assert s["dataset"] == "toynew" and json.loads((run / "config.json").read_text())["dataset"] == "toynew"
        m = evaluate_run(run, dataset="toyinc", data=str(dbs["toyinc"]), progress=False, device="cpu")
        assert m["cross_database"] and m["trained_on"] == "toynew" and m["records"] == 3
    finally:
        registry.unregister("toynew")
        sys.modules.pop("ecgnas.datasets.toynew", None)
        registry.__dict__.pop("toynew", None)


def test_an_old_checkpoint_and_run_folder_without_dataset_read_as_mitdb(tmp_path, monkeypatch):
    """Checkpoints and config.json written before databases existed have no ``dataset``: they are
    MIT-BIH runs, evaluated and resumed as before (synthetic MIT-BIH-named beats, no real data)."""
    import torch

    from ecg_fakes import install_fake_loader
    from ecgnas.evaluate import evaluate_run
    from ecgnas.run import train_run
    from ecgnas.train import TrainConfig

    install_fake_loader(monkeypatch, per_record=30)
    cfg = TrainConfig(epochs=1, num_threads=1, device="cpu", batch_size=32)
    run = tmp_path / "old"
    train_run(run, "linear", train=cfg, progress=False)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["dataset"] == "mitdb"
    del ckpt["dataset"]  # as written before issue 17
    torch.save(ckpt, run / "checkpoint.pt")
    conf = json.loads((run / "config.json").read_text())
    del conf["dataset"]
    (run / "config.json").write_text(json.dumps(conf))
    m = evaluate_run(run, "test", progress=False, device="cpu")
    assert "DS2" in m["title"] and "extra" not in json.dumps(m)
    again = train_run(run, "linear", train=cfg, progress=False)  # the same run: recognised as finished
    assert again == json.loads((run / "train_summary.json").read_text())


def test_search_on_a_toy_database_with_extra_training_data(dbs, tmp_path, capsys):
    from ecgnas.cli import main as ecgnas_main

    rc = ecgnas_main(["search", "--method", "random", "--space", "resnet-family", "--budget", "2",
                      "--dataset", "toyarr+toysv", "--data", f"toyarr={dbs['toyarr']},toysv={dbs['toysv']}",
                      "--search-epochs", "1", "--search-samples", "64", "--epochs", "1", "--baseline", "none",
                      "--no-latency", "--threads", "1", "--device", "cpu", "--quiet", "--output", str(tmp_path / "s")])
    assert rc == 0
    line = capsys.readouterr().out
    note = "extra training data: toysv (every record, training only)"
    assert "toyarr test patients macro-F1" in line and note in line
    res = json.loads((tmp_path / "s" / "result.json").read_text())
    assert res["dataset"] == "toyarr+toysv" and res["extra_training_data"] == note and note in res["ds2"]["title"]
    assert json.loads((tmp_path / "s" / "config.json").read_text())["dataset"] == "toyarr+toysv"
    assert json.loads((tmp_path / "s" / "final" / "config.json").read_text())["extra_training_data"] == note
    report = (tmp_path / "s" / "report.md").read_text()
    assert "**Extra training data: toysv (every record, training only)**" in report

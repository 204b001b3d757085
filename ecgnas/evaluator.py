"""Candidate evaluation for ECG architecture search: short training on DS1, score on the DS1 hold-out.

:class:`ECGEvaluator` is a :mod:`nascore` evaluator (``evaluator(arch) -> Result``) for any space
whose architectures the ECG models can build:

1. :func:`candidate_of` turns ``arch`` into ``{"model", "hparams", "train", "prep"}``: a model of
   :data:`ecgnas.models.MODELS` with its hyperparameters (spaces with a ``candidate`` method say
   so themselves, e.g. the hand-designed family; otherwise the model registered under the
   space's name is built from the canonical string, ``hparams={"arch": ...}``), training
   overrides and data-preparation overrides (the hand-designed family samples the window);
2. the model is trained with :func:`ecgnas.train.fit` on DS1 minus the hold-out records for the
   *fidelity* (a short :class:`~ecgnas.train.TrainConfig`, 3 epochs of 8,192 class-balanced beats
   by default), early-stopped / scored on the DS1 hold-out; **DS2 is never loaded into a
   candidate's training or scoring** (only the hold-out and training indices are used);
   With ``selection="cv"`` the candidate is instead trained ``folds`` times, once per group of
   DS1 records of :func:`ecgnas.data.record_folds` (grouped cross-validation, the hold-out
   records included), each model predicting the records it never saw; the score is the macro-F1
   of the pooled out-of-fold predictions over all of DS1. It costs ``folds`` trainings and scores
   far more beats (the 5-record hold-out holds 247 S and 36 F beats, DS1 944 and 415). Measured
   (``benchmarks/RESULTS.md``): it ranks varied models closer to their DS2 order (Spearman 0.45
   vs 0.23 on 33 models), but in a 30-candidate random search it did not pick better models;
3. ``Result.score`` = the best hold-out macro-F1 (percent, N/S/V/F); ``metrics`` record the
   hold-out accuracy and S/V F1, the parameters, FLOPs (``torch.utils.flop_counter`` on one beat),
   the measured CPU latency of one beat (ms, one thread, median), training seconds, epochs and the
   candidate description; ``cost`` = wall seconds of the evaluation.

Reproducible and cached: a candidate's training seed is derived from the evaluator's ``seed``
and the architecture's canonical string (not from the order in which a strategy asks), so the
same architecture under the same evaluator settings gets the same result whichever method
proposes it. Results are cached as JSON under ``cache_dir`` keyed by a hash of (space, canonical
string, candidate, fidelity, data key, split, seed); a cached result keeps its original cost and
says ``cached: true``. Search methods of one benchmark seed can share one cache, also while they
run at the same time (entries are write-once under a short write lock, see
:meth:`ECGEvaluator.cached`).

Data are loaded lazily (from the beat cache of :mod:`ecgnas.data`) and dropped when the evaluator
is pickled, so shipping it to Ray workers sends a few kilobytes, not the beats.

>>> # ev = ECGEvaluator(get_space("ecg-cell"), fidelity=TrainConfig(epochs=3, samples_per_epoch=8192))
>>> # res = ev(arch); res.score, res.metrics["params"], res.metrics["latency_ms"]
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nascore.errors import UserError
from nascore.evaluation import Result

from ecgnas.train import TrainConfig

#: how a candidate is scored: on the DS1 hold-out records, or by grouped cross-validation over DS1
SELECTIONS = ("holdout", "cv")

#: the default search fidelity: short, but long enough for the hold-out score to rank candidates
DEFAULT_FIDELITY = dict(epochs=3, samples_per_epoch=8192, patience=None, num_threads=1, device="cpu")


def default_fidelity(**overrides) -> TrainConfig:
    """The search fidelity (``DEFAULT_FIDELITY`` over the :class:`TrainConfig` defaults).

    >>> default_fidelity().epochs, default_fidelity(epochs=5).samples_per_epoch
    (3, 8192)
    """
    return dataclasses.replace(TrainConfig(), **{**DEFAULT_FIDELITY, **overrides})


def candidate_of(space, arch) -> dict:
    """``{"model", "hparams", "train", "prep"}`` of ``arch`` (see the module docstring)."""
    inner = getattr(space, "inner", space)  # constrained wrappers delegate
    if hasattr(inner, "candidate"):
        c = dict(inner.candidate(arch))
    else:
        c = {"model": inner.name, "hparams": {"arch": space.to_string(arch)}}
    c.setdefault("train", {})
    c.setdefault("prep", {})
    return c


def candidate_seed(seed: int, key: str) -> int:
    """Training seed of one candidate: a function of the evaluator seed and the canonical string.

    >>> candidate_seed(0, "a") == candidate_seed(0, "a") != candidate_seed(1, "a")
    True
    """
    h = hashlib.sha256(f"{int(seed)}|{key}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def _headline_val(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    from ecgnas.metrics import classification_report

    r = classification_report(y_true, y_pred)
    pc = r["per_class"]
    return {"val_accuracy": r["accuracy"], "val_S_f1": pc["S"]["f1"], "val_V_f1": pc["V"]["f1"],
            "val_F_f1": pc["F"]["f1"]}


#: how a candidate's ``latency_ms`` is measured (``ecgnas search --latency-source``)
LATENCY_SOURCES = ("table", "onnxruntime")


def require_onnxruntime() -> None:
    """Refuse (one-line UserError with the install command) ``--latency-source onnxruntime``
    without the onnx / onnxruntime packages."""
    from ecgnas.export import deps

    deps.require("onnx", "--latency-source onnxruntime")
    deps.require("onnxruntime", "--latency-source onnxruntime")


def onnxruntime_latency_ms(net, in_channels: int, window: int, n_rr: int) -> float:
    """Median onnxruntime latency (ms, batch 1, 1 thread) of ``net``
    (:func:`ecgnas.export.latency.model_latency_ms`), rounded to 4 decimals; the global torch RNG
    and the model's training flag are left as they were (the export must not change the training
    that follows)."""
    import torch

    from ecgnas.export.latency import model_latency_ms

    was_training = net.training
    try:
        with torch.random.fork_rng(devices=[]):
            return round(float(model_latency_ms(net, in_channels=int(in_channels), window=int(window),
                                                n_rr=int(n_rr), batch=1, threads=1)), 4)
    finally:
        net.train(was_training)


class ECGEvaluator:
    """Train-and-score evaluator for ECG search (see the module docstring).

    ``space``: the search space (``arch`` objects come from it); ``fidelity``: the short
    :class:`TrainConfig` each candidate trains with (its ``seed`` is replaced per candidate);
    ``spec``: the :class:`~ecgnas.data.DataSpec` -- database(s), base
    :class:`~ecgnas.data.PrepConfig` (a candidate may override its window), split (``"inter"``, or
    ``"intra"``, optimistic) and data folder (default ``DataSpec()``: MIT-BIH, ``PrepConfig()``,
    inter-patient, ``$NASCORE_DATA/mitdb`` ...); ``seed``: the evaluation seed; ``cache_dir``:
    where results are cached (``None``: no cache); ``latency``: measure CPU latency per candidate
    (a few hundred ms each); ``beats``: optional ``(beats, split_dict)`` to use instead of loading
    (tests, notebooks); ``loader``: optional picklable ``loader(spec, progress=False) ->
    (beats, split_dict)`` replacing :func:`ecgnas.evaluate.load_data` (it travels to Ray workers
    with the evaluator);
    ``selection``: ``"holdout"`` (default) or ``"cv"`` (grouped ``folds``-fold cross-validation
    over the DS1 records, inter-patient split and MIT-BIH as the main database only; with extra
    training data, ``"mitdb+svdb"``, every extra beat is in each fold's training set and in no
    fold, so only DS1 beats are scored); ``latency_source``: how ``latency_ms`` is
    measured, ``"table"`` (eager torch on the trained model, the unit of the lookup table the
    space's ``max_latency_ms`` is estimated with) or ``"onnxruntime"`` (the built model exported to
    ONNX and timed by onnxruntime at batch 1 on 1 thread,
    :func:`ecgnas.export.latency.model_latency_ms`, before training); ``max_latency_ms``
    (onnxruntime only): a candidate measured slower than this is rejected untrained -- a failed
    evaluation (NaN score, ``metrics["error"]`` says why, ``metrics["infeasible"]`` is true);
    ``repeats``: train each candidate this many times, the r-th as the evaluator of seed
    ``seed + r`` would, and score the mean macro-F1 (each repeat's pooled out-of-fold score under
    ``"cv"``), at R times the cost. One training's score is mostly seed noise in ``ecg-cell``
    (benchmarks/RESULTS.md, "how noisy is the search objective"); there even the mean of two
    trainings ranks 30 cells like the mean of two others at only Kendall τ 0.12, so the option
    is for spaces and recipes where one training is steadier.
    """

    def __init__(self, space, fidelity: TrainConfig | None = None, *, spec=None, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, latency: bool = True, beats=None,
                 loader=None, selection: str = "holdout", folds: int = 4, latency_source: str = "table",
                 max_latency_ms: float | None = None, repeats: int = 1):
        from ecgnas.data import DataSpec

        self.space = space
        self.fidelity = fidelity if fidelity is not None else default_fidelity()
        if not isinstance(self.fidelity, TrainConfig):
            raise UserError(f"fidelity: expected a TrainConfig, got {type(self.fidelity).__name__}")
        self.spec = DataSpec.of(spec)
        self.seed, self.latency = int(seed), bool(latency)
        if selection not in SELECTIONS:
            raise UserError(f"selection: {selection!r} is not one of {', '.join(SELECTIONS)}")
        if selection == "cv" and self.split != "inter":
            raise UserError("selection 'cv' folds the DS1 records, so it needs the inter-patient split")
        if selection == "cv" and self.spec.main.name != "mitdb":  # mitdb+<extra>: folds over DS1 only
            raise UserError(f"selection 'cv' folds the MIT-BIH DS1 records, and --dataset {self.dataset} trains and "
                            f"scores on {self.spec.main.name}'s patients; use --selection holdout")
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise UserError(f"folds: need an integer >= 2, got {folds!r}")
        self.selection, self.folds = selection, int(folds)
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise UserError(f"--search-repeats: need an integer >= 1, got {repeats!r}")
        self.repeats = int(repeats)
        if latency_source not in LATENCY_SOURCES:
            raise UserError(f"--latency-source: {latency_source!r} is not one of {', '.join(LATENCY_SOURCES)}")
        if max_latency_ms is not None:
            if latency_source != "onnxruntime":
                raise UserError("max_latency_ms: the evaluator rejects measured latencies with --latency-source "
                                "onnxruntime only (the table limit restricts the space)")
            if isinstance(max_latency_ms, bool) or not isinstance(max_latency_ms, (int, float)) or \
                    not 0 < max_latency_ms < float("inf"):
                raise UserError(f"--max-latency-ms: expected a positive number, got {max_latency_ms!r}")
        if latency_source == "onnxruntime":
            require_onnxruntime()
        self.latency_source, self.max_latency_ms = latency_source, max_latency_ms
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.loader = loader
        self._loaded: dict = {}
        if beats is not None:
            self._loaded[self.prep.key()] = beats

    # --- the spec's parts, read-only ---------------------------------------------------------------
    @property
    def prep(self):
        """The base :class:`~ecgnas.data.PrepConfig` (``spec.prep``)."""
        return self.spec.prep

    @property
    def split(self) -> str:
        return self.spec.split

    @property
    def dataset(self) -> str:
        """The database string (``spec.database``)."""
        return self.spec.database

    # --- pickling: ship settings, not beats --------------------------------------------------------
    def __getstate__(self):
        d = dict(self.__dict__)
        d["_loaded"] = {}
        return d

    # --- identity --------------------------------------------------------------------------------------
    def identity(self) -> dict:
        """What determines a result besides the architecture (written to the search's config)."""
        ident = {"fidelity": self.fidelity.identity(), "prep_key": self.prep.key(), "split": self.split,
                 "seed": self.seed}
        if self.dataset != "mitdb":  # absent for MIT-BIH, so earlier runs and caches stay valid
            ident["dataset"] = self.dataset
        if self.selection != "holdout":  # absent for the hold-out, so earlier runs and caches stay valid
            ident["selection"] = f"{self.selection}{self.folds}"
        if self.repeats != 1:  # absent for one training, so earlier runs and caches stay valid
            ident["repeats"] = self.repeats
        if self.latency_source != "table":  # absent for the table: earlier runs and caches stay valid
            ident["latency_source"] = self.latency_source
            if self.max_latency_ms is not None:  # a rejection depends on the limit
                ident["max_latency_ms"] = self.max_latency_ms
        return ident

    def _key(self, arch_key: str, cand: Mapping[str, Any]) -> str:
        blob = json.dumps({"space": getattr(self.space, "name", ""), "arch": arch_key, "candidate": cand,
                           **self.identity(), "data_version": 1}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    # --- data --------------------------------------------------------------------------------------
    def prep_for(self, cand: Mapping[str, Any]):
        if not cand.get("prep"):
            return self.prep
        from ecgnas.evaluate import make_prep

        return make_prep(self.prep.to_dict(), **cand["prep"])

    def data_for(self, prep):
        key = prep.key()
        if key not in self._loaded:
            from ecgnas.evaluate import load_data

            self._loaded[key] = (self.loader or load_data)(self.spec.with_prep(prep), progress=False)
        return self._loaded[key]

    # --- evaluation --------------------------------------------------------------------------------------
    def __call__(self, arch, fidelity: int | None = None) -> Result:
        """Train and score ``arch`` (through the cache); ``fidelity``: train it for this many
        epochs instead of the fidelity's (a rung of a multi-fidelity search,
        :mod:`nascore.multifidelity`; the beats per epoch stay the fidelity's, so a rung's
        training scales with its epochs)."""
        ev = self if fidelity is None or int(fidelity) == self.fidelity.epochs else self.at_epochs(fidelity)
        return ev.cached(self.space.to_string(arch), candidate_of(self.space, arch))

    def at_epochs(self, epochs: int) -> "ECGEvaluator":
        """This evaluator with ``epochs`` training epochs per candidate (sharing its loaded data;
        its results are cached under their own key, since the fidelity is part of it)."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise UserError(f"fidelity: need a whole number of epochs >= 1, got {epochs!r}")
        ev = copy.copy(self)
        ev.fidelity = dataclasses.replace(self.fidelity, epochs=int(epochs))
        return ev

    def cached(self, arch_key: str, cand: Mapping[str, Any]) -> Result:
        """:meth:`evaluate` through the result cache (``cache_dir``), for a canonical string and
        its candidate description (no architecture object needed). The cache may be shared by
        several runs at once (``--eval-cache``, Ray workers): entries are write-once and the first
        one wins (:class:`nascore.evalcache.ResultCache`), so every run that asks agrees on one
        result per candidate."""
        from nascore.evalcache import ResultCache

        return ResultCache(self.cache_dir).get_or_compute(self._key(arch_key, cand),
                                                          lambda: self.evaluate(arch_key, cand), arch=arch_key)

    def evaluate(self, arch_key: str, cand: Mapping[str, Any]) -> Result:
        """Train and score one candidate (no cache)."""
        import torch

        from ecgnas.evaluate import build
        from ecgnas.models import count_parameters
        from ecgnas.hardware import count_flops, measure_latency_ms
        from ecgnas.train import fit, predict_proba, seed_everything

        t0 = time.perf_counter()
        prep = self.prep_for(cand)
        beats, parts = self.data_for(prep)
        tcfg = dataclasses.replace(self.fidelity, **dict(cand.get("train", {})), seed=candidate_seed(self.seed, arch_key))
        seed_everything(tcfg.seed)
        net = build(cand["model"], beats.window, beats.n_rr, 5, cand["hparams"], in_channels=beats.in_channels)
        n_params = count_parameters(net)
        metrics: dict[str, Any] = {"candidate": json.loads(json.dumps(cand, default=str)), "params": n_params}
        if self.latency_source == "onnxruntime" and (self.latency or self.max_latency_ms is not None):
            ms = onnxruntime_latency_ms(net, beats.in_channels, beats.window, beats.n_rr)
            metrics.update({"latency_ms": ms, "latency_source": "onnxruntime"})
            if self.max_latency_ms is not None and ms > self.max_latency_ms:
                from ecgnas.metrics import json_clean

                metrics.update({"error": f"measured onnxruntime latency {ms:.4f} ms exceeds max_latency_ms="
                                         f"{self.max_latency_ms:g}", "infeasible": True})
                return Result(score=math.nan, metrics=json_clean(metrics), cost=round(time.perf_counter() - t0, 3))
        # repeat r trains as the evaluator of seed ``self.seed + r`` would (repeat 0 is today's training)
        repeat_seeds = [tcfg.seed] + [candidate_seed(self.seed + r, arch_key) for r in range(1, self.repeats)]
        if self.selection == "cv":
            from ecgnas.data import extra_rows, record_folds

            folds = record_folds(beats, self.folds)  # DS1 records: never an extra one (``svdb:800``)
            extra = [extra_rows(beats)] if self.spec.extra else []  # in every fold's training, never scored
            tasks = [(np.concatenate([f for j, f in enumerate(folds) if j != i] + extra), folds[i], s + i)
                     for s in repeat_seeds for i in range(len(folds))]
        else:
            tasks = [(parts["train"], parts["val"], s) for s in repeat_seeds]
        y = np.asarray(beats.y)
        truth, preds, probs, fold_f1, best_epochs, epochs_run, secs, thr = [], [], [], [], [], [], 0.0, []
        for i, (tr, va, fold_seed) in enumerate(tasks):
            if i:  # trainings after the first: a fresh initialisation from their own seed
                seed_everything(fold_seed)
                net = build(cand["model"], beats.window, beats.n_rr, 5, cand["hparams"],
                            in_channels=beats.in_channels)
            try:
                res = fit(net, beats, {"train": tr, "val": va}, dataclasses.replace(tcfg, seed=fold_seed),
                          progress=False)
            except FloatingPointError as e:  # a diverging candidate is a bad candidate, not a crashed search
                metrics.update({"error": str(e), "val_macro_f1": 0.0})
                return Result(score=0.0, metrics=metrics, cost=time.perf_counter() - t0)
            net.cpu().eval()
            truth.append(y[va])
            probs.append(predict_proba(net, beats, va, tcfg.eval_batch_size))
            preds.append(probs[-1].argmax(1).astype(np.int64))
            fold_f1.append(res.best_val_macro_f1)
            best_epochs.append(res.best_epoch)
            epochs_run.append(res.epochs_run)
            secs += res.train_seconds
            thr.append(res.throughput)
        head = _headline_val(np.concatenate(truth), np.concatenate(preds))
        from ecgnas.metrics import probability_scores

        # threshold-free scores of the same predictions (recorded beside the score, not the score)
        head.update({f"val_{k}": v for k, v in probability_scores(np.concatenate(truth),
                                                                   np.concatenate(probs)).items()})
        if self.selection == "cv":
            from ecgnas.metrics import classification_report

            k = len(tasks) // self.repeats  # each repeat's pooled out-of-fold macro-F1, then their mean
            per_repeat = [classification_report(np.concatenate(truth[r * k:(r + 1) * k]),
                                                np.concatenate(preds[r * k:(r + 1) * k]))["macro_f1"]
                          for r in range(self.repeats)]
            metrics.update({"val_macro_f1": float(np.mean(per_repeat)), "selection": f"cv{self.folds}",
                            "fold_macro_f1": fold_f1, "best_epoch": best_epochs, "epochs_run": epochs_run})
        else:
            per_repeat = fold_f1
            metrics.update({"val_macro_f1": float(np.mean(fold_f1)), "best_epoch": best_epochs[0],
                            "epochs_run": epochs_run[0]})
        if self.repeats > 1:
            metrics.update({"repeats": self.repeats, "repeat_macro_f1": per_repeat, "repeat_seeds": repeat_seeds})
        metrics.update({**head, "train_seconds": round(secs, 3), "throughput": round(float(np.mean(thr)), 1),
                        "device": res.device, "seed": tcfg.seed})
        with torch.no_grad():
            x1 = torch.zeros(1, beats.in_channels, beats.window)
            r1 = torch.zeros(1, beats.n_rr)
            metrics["flops"] = count_flops(net, x1, r1)
        if self.latency and self.latency_source == "table":
            metrics["latency_ms"] = round(measure_latency_ms(net, beats.in_channels, beats.window, beats.n_rr,
                                                             threads=1, repeats=20, warmup=3), 4)
        score = float(metrics["val_macro_f1"])
        if not math.isfinite(score):
            score = 0.0
        # an undefined statistic (0/0, e.g. the F1 of a class absent from the hold-out) is None in
        # the history and the cache, as in every ecgnas metrics file: strict JSON refuses NaN
        from ecgnas.metrics import json_clean

        return Result(score=score, metrics=json_clean(metrics), cost=round(time.perf_counter() - t0, 3))

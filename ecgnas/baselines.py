"""The hand-designed baseline found by random search (Bergstra & Bengio, JMLR 13, 2012).

This is the "manually designed model obtained via random search" the NAS results are compared
to: the 1D ResNet with RR features (:mod:`ecgnas.models.resnet_rr`) and its training recipe are
sampled at random (:class:`SearchSpace`), each trial is trained on DS1-train with early stopping on
the DS1 hold-out records, the trial with the best hold-out macro-F1 (N, S, V, F) is kept, and only
that one is evaluated on DS2. DS2 never influences any choice.

Run folder (``DIR``)::

    search.json            the search definition (seed, space, base training config) + all trial configs
    history.jsonl          one line per finished trial (appended, fsynced, before the next starts)
    trials/trial-007.pt    each trial's best weights (an ``ecgnas evaluate``-able checkpoint)
    best/                  the winner: checkpoint.pt, config.json, val_metrics.json and the DS2
                           evaluation (metrics.json, per_record.csv, confusion.png, predictions.csv)
    result.json            best config, its hold-out macro-F1, its DS2 metrics, all trials' scores

Reproducible and resumable: all trial configurations (and each trial's training seed) are drawn
up front from ``seed``, each trial re-seeds everything, so a killed search re-run with the same
arguments skips the finished trials (read from history.jsonl) and ends with the same result as an
uninterrupted run. Asking for more trials later extends the same sequence.

>>> cfgs = sample_trials(3, seed=0)
>>> [c["trial"] for c in cfgs], cfgs[0]["model"], sorted(cfgs[0]["hparams"])
([0, 1, 2], 'resnet', ['depth', 'dropout', 'kernel_size', 'use_rr', 'width'])
>>> sample_trials(5, seed=0)[:3] == cfgs       # more trials extend the same sequence
True
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nascore.errors import UserError
from nascore.io import append_jsonl, atomic_write_json, read_json, read_jsonl

from ecgnas.train import TrainConfig

# Training fields each trial samples; the rest come from the base TrainConfig of the search.
SAMPLED_TRAIN_FIELDS = ("lr", "weight_decay", "class_weight", "sampler", "seed")


@dataclass(frozen=True)
class SearchSpace:
    """Distributions of the hand-designed family (all JSON-serialisable).

    Categorical choices are uniform; ``lr`` and ``weight_decay`` are log-uniform in their ranges,
    ``dropout`` uniform. ``windows`` are (seconds before, seconds after) the R peak: at 360 Hz
    (0.25, 0.45) -> 252 samples (the data pipeline's default), (0.2, 0.3) -> 180, (0.3, 0.6) -> 324.
    The ranges keep every trial trainable in minutes on a CPU (width <= 32, depth <= 6).

    >>> SearchSpace().depth
    (2, 3, 4, 5, 6)
    """

    model: str = "resnet"
    depth: tuple[int, ...] = (2, 3, 4, 5, 6)
    width: tuple[int, ...] = (8, 16, 24, 32)
    kernel_size: tuple[int, ...] = (3, 5, 7, 9, 11, 15)
    dropout: tuple[float, float] = (0.0, 0.5)
    use_rr: tuple[bool, ...] = (True, False)
    lr: tuple[float, float] = (3e-4, 3e-3)
    weight_decay: tuple[float, float] = (1e-5, 1e-1)
    windows: tuple[tuple[float, float], ...] = ((0.25, 0.45), (0.2, 0.3), (0.3, 0.6))
    class_weight: tuple[str, ...] = ("none", "sqrt_inverse", "inverse")
    sampler: tuple[str, ...] = ("shuffle", "sqrt_balanced", "balanced")

    def to_dict(self) -> dict:
        return json_ready(dataclasses.asdict(self))


def json_ready(obj):
    """Tuples -> lists, recursively (what a JSON round trip gives back)."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj


def trial_seed(seed: int, trial: int) -> int:
    """Training seed of trial ``trial`` of a search seeded ``seed`` (independent streams).

    >>> trial_seed(0, 1) != trial_seed(0, 2) and trial_seed(0, 1) == trial_seed(0, 1)
    True
    """
    return int(np.random.SeedSequence([int(seed), int(trial)]).generate_state(1)[0] & 0x7FFFFFFF)


def sample_trials(n_trials: int, seed: int = 0, space: SearchSpace | None = None) -> list[dict]:
    """Draw ``n_trials`` trial configurations from ``space``, reproducibly from ``seed``.

    Each trial uses exactly the same number of draws, so the first k configurations do not
    depend on ``n_trials``. A configuration is ``{"trial", "model", "hparams", "window":
    [before_s, after_s], "train": {lr, weight_decay, class_weight, sampler, seed}}``.
    """
    if not isinstance(n_trials, int) or n_trials < 1:
        raise UserError(f"--trials: must be an integer >= 1, got {n_trials!r}")
    sp = space or SearchSpace()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EA4C4]))

    def pick(options):
        return options[int(rng.integers(len(options)))]

    def log_uniform(lo_hi):
        lo, hi = lo_hi
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    out = []
    for i in range(n_trials):
        hp = {"depth": int(pick(sp.depth)), "width": int(pick(sp.width)), "kernel_size": int(pick(sp.kernel_size)),
              "dropout": round(float(rng.uniform(*sp.dropout)), 3), "use_rr": bool(pick(sp.use_rr))}
        window = [float(v) for v in pick(sp.windows)]
        train = {"lr": float(f"{log_uniform(sp.lr):.3g}"), "weight_decay": float(f"{log_uniform(sp.weight_decay):.3g}"),
                 "class_weight": str(pick(sp.class_weight)), "sampler": str(pick(sp.sampler)),
                 "seed": trial_seed(seed, i)}
        out.append({"trial": i, "model": sp.model, "hparams": hp, "window": window, "train": train})
    return out


@dataclass
class _DataCache:
    """Beats and splits per window, loaded once per search (the data pipeline caches on disk too)."""

    data: Any
    split: str
    progress: bool
    loaded: dict = field(default_factory=dict)

    def get(self, window):
        from ecgnas.evaluate import load_data, make_prep

        key = tuple(window)
        if key not in self.loaded:
            prep = make_prep(before_s=key[0], after_s=key[1])
            beats, parts = load_data(self.data, prep, self.split, progress=self.progress)
            self.loaded[key] = (prep, beats, parts)
        return self.loaded[key]


def _search_identity(seed: int, space: SearchSpace, split: str, base: TrainConfig) -> dict:
    ident = {k: v for k, v in base.identity().items() if k not in SAMPLED_TRAIN_FIELDS}
    return {"seed": int(seed), "split": split, "space": space.to_dict(), "train_base": ident}


def _trial_path(out: Path, trial: int) -> Path:
    return out / "trials" / f"trial-{trial:03d}.pt"


def run_trial(cfg: Mapping[str, Any], base: TrainConfig, data: _DataCache, ckpt_path: Path,
              progress: bool = False) -> dict:
    """Train one sampled configuration; save its checkpoint; return its history.jsonl record."""
    from ecgnas.evaluate import build, save_checkpoint
    from ecgnas.models import count_parameters
    from ecgnas.train import fit, seed_everything

    prep, beats, parts = data.get(cfg["window"])
    tcfg = dataclasses.replace(base, **cfg["train"])
    seed_everything(tcfg.seed)
    window, n_rr = int(beats.x.shape[1]), int(beats.rr.shape[1])
    net = build(cfg["model"], window, n_rr, 5, cfg["hparams"])
    res = fit(net, beats, {"train": parts["train"], "val": parts["val"]}, tcfg, progress=progress)
    save_checkpoint(ckpt_path, net, name=cfg["model"], hparams=cfg["hparams"], window=window, n_rr=n_rr, n_classes=5,
                    prep=prep, split=data.split,
                    extra={"train": tcfg.to_dict(), "best_epoch": res.best_epoch, "val_macro_f1": res.best_val_macro_f1,
                           "trial": cfg["trial"]})
    return {"trial": cfg["trial"], "config": json_ready(dict(cfg)), "val_macro_f1": res.best_val_macro_f1,
            "best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "stopped_early": res.stopped_early,
            "params": count_parameters(net), "window_samples": window, "train_seconds": res.train_seconds,
            "throughput": res.throughput, "device": res.device,
            "history": [{k: h[k] for k in ("epoch", "train_loss", "val_macro_f1", "seconds")} for h in res.history]}


def best_trial(records: list[dict]) -> dict:
    """Highest hold-out macro-F1; ties go to the earliest trial.

    >>> best_trial([{"trial": 0, "val_macro_f1": 50.0}, {"trial": 1, "val_macro_f1": 60.0},
    ...             {"trial": 2, "val_macro_f1": 60.0}])["trial"]
    1
    """
    if not records:
        raise UserError("random search: no finished trial to choose from")
    return min(records, key=lambda r: (-r["val_macro_f1"], r["trial"]))


def random_search(output: str | os.PathLike, n_trials: int, *, seed: int = 0, base: TrainConfig | None = None,
                  space: SearchSpace | None = None, split: str = "inter", data=None, progress: bool = True,
                  max_new_trials: int | None = None) -> dict:
    """Run (or resume) a random search into ``output``; returns result.json's dict.

    ``base``: the training settings every trial shares (epochs, batch size, patience, schedule,
    samples per epoch, device, threads); each trial overrides lr, weight decay, class weighting,
    sampler and seed with its sampled values. ``max_new_trials``: run at most this many trials in
    this call, then return ``{"complete": False, ...}`` without choosing a winner (a time box; the
    next call resumes).

    >>> # res = random_search("runs/rs", 16, seed=0, base=TrainConfig(epochs=8, num_threads=1))
    >>> # res["best"]["val_macro_f1"], res["test"]["macro_f1"]
    """
    out = Path(output)
    sp = space or SearchSpace()
    base = base or TrainConfig()
    configs = sample_trials(n_trials, seed, sp)
    ident = _search_identity(seed, sp, split, base)
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {out}: exists and is not a folder")
    search_file = out / "search.json"
    if search_file.is_file():
        old = read_json(search_file)
        if old.get("identity") != ident:
            raise UserError(f"--output {out}: holds a random search of a different configuration "
                            "(seed, space, split or base training settings differ); choose another --output")
    elif out.is_dir() and any(out.iterdir()):
        raise UserError(f"--output {out}: folder is not empty and holds no search.json; choose another --output")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(search_file, {"identity": ident, "n_trials": n_trials, "trials": configs,
                                    "base_train": base.to_dict()})

    hist_path = out / "history.jsonl"
    done = {r["trial"]: r for r in read_jsonl(hist_path, repair=True)}
    for t, rec in done.items():
        if t < len(configs) and rec.get("config") != json_ready(configs[t]):
            raise UserError(f"{hist_path}: trial {t} was run with another configuration than this search draws "
                            "(edited file?); choose another --output")
    todo = [c for c in configs if c["trial"] not in done]
    if done and todo:
        _say(progress, f"{out}: resuming, {len(done)} trial(s) done, {len(todo)} to go")
    cache = _DataCache(data, split, progress)
    ran = 0
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc="random search", unit="trial",
                   dynamic_ncols=True)
    try:
        for cfg in todo:
            if max_new_trials is not None and ran >= max_new_trials:
                break
            rec = run_trial(cfg, base, cache, _trial_path(out, cfg["trial"]), progress=progress)
            append_jsonl(hist_path, [rec])
            done[cfg["trial"]] = rec
            ran += 1
            if bar is not None:
                best = best_trial([done[c["trial"]] for c in configs if c["trial"] in done])
                bar.set_postfix(last=f"{rec['val_macro_f1']:.1f}", best=f"{best['val_macro_f1']:.1f}#{best['trial']}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    finished = [done[c["trial"]] for c in configs if c["trial"] in done]
    if len(finished) < len(configs):
        return {"complete": False, "n_trials": len(configs), "n_done": len(finished),
                "best_so_far": _brief(best_trial(finished)) if finished else None}
    result_path = out / "result.json"
    if result_path.is_file():
        prev = read_json(result_path)
        if prev.get("n_trials") == len(configs) and (out / "best" / "metrics.json").is_file():
            return prev
    return _finish(out, configs, finished, cache, base, progress)


def _brief(rec: Mapping[str, Any]) -> dict:
    return {k: rec[k] for k in ("trial", "config", "val_macro_f1", "best_epoch", "epochs_run", "params",
                                "train_seconds", "throughput")}


def _finish(out: Path, configs: list[dict], finished: list[dict], cache: _DataCache, base: TrainConfig,
            progress: bool) -> dict:
    """Evaluate the winner on the hold-out and DS2 into ``out/best`` and write result.json."""
    from ecgnas.evaluate import evaluate_indices, headline, load_checkpoint, model_from_checkpoint
    from ecgnas.metrics import metrics_json
    from ecgnas.train import predict

    best = best_trial(finished)
    cfg = configs[best["trial"]]
    _, beats, parts = cache.get(cfg["window"])
    src = _trial_path(out, best["trial"])
    net = model_from_checkpoint(load_checkpoint(src), src)
    best_dir = out / "best"
    best_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, best_dir / ".checkpoint.pt.tmp")
    os.replace(best_dir / ".checkpoint.pt.tmp", best_dir / "checkpoint.pt")
    atomic_write_json(best_dir / "config.json", {"source": "random search", "trial": best["trial"], **cfg})
    va = parts["val"]
    val_m = metrics_json(beats.y[va], predict(net, beats, va, base.eval_batch_size), beats.record[va])
    atomic_write_json(best_dir / "val_metrics.json", {"title": f"random-search best (trial {best['trial']}), "
                                                               "DS1 hold-out", **val_m})
    test_m = evaluate_indices(best_dir, net, beats, parts["test"],
                              f"random-search best (trial {best['trial']}), {cache.split}-patient, DS2",
                              base.eval_batch_size)
    result = {"complete": True, "n_trials": len(configs), "best": _brief(best), "val": headline(val_m),
              "test": headline(test_m), "test_metrics": test_m,
              "trials": [{"trial": r["trial"], "val_macro_f1": r["val_macro_f1"], "params": r["params"],
                          "train_seconds": r["train_seconds"], "epochs_run": r["epochs_run"]} for r in finished],
              "search_seconds": float(sum(r["train_seconds"] for r in finished))}
    atomic_write_json(out / "result.json", result)
    _say(progress, f"{out}: best trial {best['trial']} (hold-out macro-F1 {best['val_macro_f1']:.2f}); "
                   f"DS2 macro-F1 {test_m['macro_f1']:.2f}, accuracy {test_m['accuracy']:.2f}")
    return result


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)

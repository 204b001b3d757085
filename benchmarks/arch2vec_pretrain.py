"""arch2vec pretraining on NB201 / NB101 / DARTS: quality (Yan et al. 2020, Table 1), time, scale, latent checks.

For each space, trains the variational autoencoder (arch2vec) and a plain GAE with the same code
and the released settings (batch 32, lr 1e-3, gradient clipping 5, released loss normalisation,
published epochs; no decoder dropout -- see ``nascore.arch2vec.vgae``), holds out 10 % of the
architectures and reports reconstruction accuracy on them, and validity / uniqueness of 10,000
decoded latent samples drawn from the fitted per-slot prior (the released scripts' protocol) and
from N(0, I), each judged by the strict rule (``space.is_valid``) and by the released scripts'
rules (``nascore.arch2vec.metrics.ARCH2VEC_RULES``).

* NB201: all 15,625 cells, ``--nb201-seeds`` seeds (spread of the figures); one epoch's step time
  of the dense and torch-geometric encoder paths, latent-distance / edit-distance correlation and a
  t-SNE of all embeddings coloured by valid_acc_200 (seed-0 VGAE).
* NB101: all 423,624 cells (or ``--nb101-max``); embedding-extraction speed for all cells.
* DARTS: ``--darts-samples`` distinct random single cells (released: 600,000).
* ``diagnosis``: NB201 seed-0 VGAE under other settings, to locate the validity / uniqueness gap:
  the settings of this package's first version (softmax CE + mean BCE, KL weight 0.005, no
  clipping), the released settings with their decoder dropout 0.3 (under our schedule, training
  mode in every epoch -- the released scripts switch to eval mode after epoch 1, see
  ``benchmarks/arch2vec_schedule.py``), dropout 0.1, and a KL weight of a quarter of the released
  one.
* ``scale``: a synthetic finite space of 470,000 10-node architectures (the size of the ECG cell
  space): dataset streaming, pretraining on a ``max_archs`` sample, embeddings for all, and the
  per-query cost of arch2vec-BO and -RL on it.

The seed-0 models go to the user cache (``nascore.arch2vec.pretrain.default_model_dir``), where
the search strategies find them. Finished parts are kept in ``--work`` (default
/tmp/arch2vec-pretrain) and skipped on a rerun; ``--only`` runs a subset of parts.

    python benchmarks/arch2vec_pretrain.py [--parts nb201,nb101,darts,scale] [--kinds vgae,gae]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nascore.arch import Arch  # noqa: E402
from nascore.arch2vec import metrics as M  # noqa: E402
from nascore.arch2vec.pretrain import (_str_keys, default_model_dir, embed_all, load_model, pretrain,  # noqa: E402
                                       space_dataset)
from nascore.io import atomic_write_json, read_json  # noqa: E402
from nascore.report import save_figure  # noqa: E402
from nascore.spaces import get_space  # noqa: E402
from nascore.spaces.base import SearchSpace  # noqa: E402

DIAGNOSIS = {
    "first version (mean loss, KL 0.005, no clip, no dropout)": dict(loss_form="mean", kl_weight=0.005, clip=None),
    "released incl. decoder dropout 0.3": dict(dropout=0.3),
    "released, decoder dropout 0.1": dict(dropout=0.1),
    "released, KL weight 1/(4 B M)": dict(kl_weight=1 / (4 * 32 * 8)),
}
PUBLISHED = {"nb101": {"reconstruction": 100.0, "validity": 44.97, "uniqueness": 99.69},
             "nb201": {"reconstruction": 100.0, "validity": 79.41, "uniqueness": 98.72},
             "darts": {"reconstruction": 99.79, "validity": 33.36, "uniqueness": 100.0}}


def time_paths(space, steps: int = 200) -> dict:
    """Seconds per training step (batch 32) of the dense and the torch_geometric encoder paths."""
    from nascore.arch2vec.vgae import VGAE, dense_tensors
    from nascore.encoders.gin import to_batch

    archs = list(itertools.islice(space.enumerate(), 32 * steps))
    ops, adj = dense_tensors(space, archs)
    out = {}
    for path in ("dense", "torch_geometric"):
        torch.manual_seed(0)
        model = VGAE(len(space.node_labels), space.max_nodes)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        t = time.perf_counter()
        for s in range(0, len(archs), 32):
            if path == "dense":
                mu, _ = model.encode(ops[s:s + 32], adj[s:s + 32])
            else:  # batching included: it is part of every step of this path
                mu, _ = model.encode_graph(to_batch(space, archs[s:s + 32]))
            loss = mu.pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        out[path] = (time.perf_counter() - t) / steps
    out["note"] = "encoder forward+backward+Adam step, batch 32, 1 thread; torch_geometric time includes Batch building"
    return out


def tsne_plot(space, emb: np.ndarray, keys, path: Path, seed: int = 0) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    from nascore.benchmarks.nb201 import NB201Table

    table = NB201Table.load("cifar10")
    acc = np.array([table.query(k, 200)["valid_accuracy"] for k in keys])
    t = time.perf_counter()
    xy = TSNE(n_components=2, random_state=seed, init="pca", perplexity=30).fit_transform(emb)
    secs = time.perf_counter() - t
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=120)
    order = np.argsort(acc)
    sc = ax.scatter(xy[order, 0], xy[order, 1], c=np.clip(acc[order], 60, None), s=1.5, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="valid_acc_200 (%), clipped at 60")
    ax.set_title(f"arch2vec NB201 embeddings, t-SNE of all {len(keys)} cells")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, path)  # atomic, unique temporary name
    return {"png": str(path.relative_to(RESULTS.parent.parent)), "tsne_seconds": secs}


# --- a synthetic finite space of 470,000 ten-node cells (scale check) ------------------------------
class ChainSpace(SearchSpace):
    """input -> 8 labelled nodes -> output: a chain plus the skip edges of a 3-bit pattern;
    5 labels per interior node. 5**8 * 8 = 3,125,000 cells, of which the first ``size`` are used."""

    name = "synthetic-chain10"
    node_labels = ("input", "a", "b", "c", "d", "e", "output")
    max_nodes = 10
    SKIPS = ((0, 5), (2, 7), (4, 9))

    def __init__(self, size: int = 470_000):
        self._size = int(size)

    def _arch(self, code: int) -> Arch:
        ops, skips = [], code % 8
        code //= 8
        for _ in range(8):
            ops.append(self.node_labels[1 + code % 5])
            code //= 5
        m = np.eye(10, k=1, dtype=np.int64)
        for b, (i, j) in enumerate(self.SKIPS):
            if skips >> b & 1:
                m[i, j] = 1
        return Arch.from_numpy(m, ["input"] + ops + ["output"])

    def _code(self, arch: Arch) -> int:
        code = 0
        for op in reversed(arch.ops[1:-1]):
            code = code * 5 + self.node_labels.index(op) - 1
        skips = sum(1 << b for b, (i, j) in enumerate(self.SKIPS) if arch.matrix[i][j])
        return code * 8 + skips

    def sample(self, rng):
        return self._arch(int(rng.integers(self._size)))

    def mutate(self, arch, rng):
        return self._arch((self._code(arch) + 1 + int(rng.integers(self._size - 1))) % self._size)

    def crossover(self, a, b, rng):
        return a

    def is_valid(self, arch):
        try:
            return arch.n_nodes == 10 and self._code(arch) < self._size and self._arch(self._code(arch)) == arch
        except ValueError:
            return False

    def to_string(self, arch):
        self.validate(arch)
        return str(self._code(arch))

    def from_string(self, text):
        return self._arch(int(text))

    @property
    def size(self):
        return self._size

    def enumerate(self):
        for c in range(self._size):
            yield self._arch(c)


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale_check(work: Path, n: int = 470_000, sample: int = 20_000) -> dict:
    from nascore.evaluation import Result
    from nascore.strategies import get_strategy

    space = ChainSpace(n)
    out = {"space": f"{space.name}: {n} finite 10-node architectures (synthetic, for scale only)",
           "maxrss_mib_start": _maxrss_mib()}
    t, c = time.perf_counter(), time.process_time()
    keys, ops, adj = space_dataset(space)
    out["dataset_seconds"] = time.perf_counter() - t
    out["dataset_cpu_seconds"] = time.process_time() - c
    out["dataset_bytes"] = int(ops.numel() * ops.element_size() + adj.numel() * adj.element_size())
    out["maxrss_mib_after_dataset"] = _maxrss_mib()
    c = time.process_time()
    res = pretrain(space, output=work / "scale-model", epochs=1, max_archs=sample, data=(keys, ops, adj),
                   progress=False, quality_samples=1000)
    out["pretrain"] = {"max_archs": sample, "n_train": res["train"]["n_train"], "n_embedded": res["train"]["n_embedded"],
                       "seconds": res["seconds"], "cpu_seconds": time.process_time() - c,
                       "heldout_reconstruction": res["metrics"]["heldout"]["accuracy"],
                       "note": "1 epoch on a 20,000 sample: a scale check, not a quality figure"}
    model, _ = load_model(work / "scale-model" / "model.pt")
    t, c = time.perf_counter(), time.process_time()
    embed_all(model, ops, adj)
    out["embed_all"] = {"seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - c,
                        "cells_per_cpu_second": n / (time.process_time() - c)}
    del keys, ops, adj
    model = str(work / "scale-model" / "model.pt")
    for name, params in (("arch2vec-bo", {"epochs": 100}), ("arch2vec-rl", {})):
        t = time.perf_counter()
        s = get_strategy(name, space, seed=0, model=model, **params)
        t_init = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        asked = 0
        while asked < 40:
            archs = s.ask(1)
            s.tell(archs, [Result(score=float(int(space.to_string(a)) % 97)) for a in archs])
            asked += 1
        out[name] = {"construct_seconds_incl_embedding_load": t_init, "seconds_per_query": (time.perf_counter() - t) / 40,
                     "cpu_seconds_per_query": (time.process_time() - c) / 40, "queries": 40}
    out["maxrss_mib_end"] = _maxrss_mib()
    return out


def nb101_embed_speed(model_path: Path) -> dict:
    space = get_space("nb101")
    model, _ = load_model(model_path)
    t = time.perf_counter()
    keys, ops, adj = space_dataset(space)
    t_data = time.perf_counter() - t
    t = time.perf_counter()
    emb = embed_all(model, ops, adj)
    t_emb = time.perf_counter() - t
    return {"cells": len(keys), "dataset_seconds": t_data, "embed_seconds": t_emb,
            "cells_per_second_embed": len(keys) / t_emb, "emb_shape": list(emb.shape), "batch_size": 8192,
            "torch_threads": torch.get_num_threads()}


def summary_line(name: str, res: dict) -> str:
    q = res["metrics"]
    f = q["prior_fitted"]
    return (f"{name}: held-out recon {q['heldout']['accuracy']:.2f}%  fitted prior validity/uniqueness: strict "
            f"{f['strict']['validity']:.2f}/{f['strict']['uniqueness']:.2f}%, released rule "
            f"{f['arch2vec']['validity']:.2f}/{f['arch2vec']['uniqueness']:.2f}%  train {res['seconds']['train']:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="nb201,diagnosis,nb101,darts,scale")
    ap.add_argument("--kinds", default="vgae,gae")
    ap.add_argument("--nb201-seeds", default="0,1,2")
    ap.add_argument("--nb101-max", type=int, default=None, help="pretrain NB101 on a random subset of this size")
    ap.add_argument("--darts-samples", type=int, default=600_000)
    ap.add_argument("--epochs", type=int, default=None, help="override the published epochs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/arch2vec-pretrain")
    ap.add_argument("--aggregate-only", action="store_true", help="train nothing: collect the finished parts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / "arch2vec_pretrain.json"
    out = {**header(), "published_arch2vec": PUBLISHED, "load_average_at_start": list(os.getloadavg()),
           "results": {}}
    parts = args.parts.split(",")

    def finished(tag: str, fn):
        done = work / f"{tag}.json"
        if not done.exists() and not args.aggregate_only:
            atomic_write_json(done, fn())
        if done.exists():
            out["results"][tag] = read_json(done)
            return out["results"][tag]
        out["results"][tag] = {"not_run": "not run in this session"}
        return None

    for name in ("nb201", "nb101", "darts"):
        if name not in parts:
            continue
        if name == "darts":
            from nascore.arch2vec.cells import DartsCellSpace

            space = DartsCellSpace()
        else:
            space = get_space(name)
        seeds = [int(s) for s in args.nb201_seeds.split(",")] if name == "nb201" else [0]
        cache = {}

        def data():
            if "d" not in cache:
                max_archs = args.nb101_max if name == "nb101" else None
                cache["d"] = space_dataset(space, max_archs, samples=args.darts_samples, seed=0)
            return cache["d"]

        for kind in args.kinds.split(","):
            for seed in seeds:
                tag = f"{name}-{kind}" + (f"-seed{seed}" if name == "nb201" else "")
                default = seed == 0 and (name != "nb101" or args.nb101_max is None)
                folder = default_model_dir(name, kind == "vgae") if default else work / f"{tag}-model"
                res = finished(tag, lambda: pretrain(space, output=folder, epochs=args.epochs, seed=seed,
                                                     variational=kind == "vgae", data=data(), progress=True))
                if res is not None and "metrics" in res:
                    print(summary_line(tag, res), flush=True)
                atomic_write_json(out_path, out)
        if name == "nb201" and (work / "nb201-vgae-seed0.json").exists():
            def latent():
                with np.load(default_model_dir("nb201") / "embeddings.npz") as z:
                    keys, emb = _str_keys(z["keys"]), z["emb"]
                _, ops, adj = space_dataset(space)
                return {"paths_seconds_per_step": time_paths(space),
                        "distance_vs_edit": M.distance_correlation(emb, ops.numpy(), adj.numpy().astype(np.int64)),
                        "tsne": tsne_plot(space, emb, keys, RESULTS / "arch2vec_tsne_nb201.png")}
            finished("nb201-latent", latent)
        if name == "nb101" and (work / "nb101-vgae.json").exists():
            finished("nb101-embed-speed",
                     lambda: nb101_embed_speed(Path(read_json(work / "nb101-vgae.json")["output"]) / "model.pt"))
        cache.clear()
        atomic_write_json(out_path, out)
    if "diagnosis" in parts:
        space = get_space("nb201")
        diag = {}

        def one(kw):
            r = pretrain(space, output=work / "diagnosis-model", data=diag.setdefault("d", space_dataset(space)),
                         progress=False, **kw)
            return {"settings": kw, "train": r["train"], "metrics": r["metrics"], "seconds": r["seconds"],
                    "curve": r["curve"]}

        for k, (label, kw) in enumerate(DIAGNOSIS.items()):
            res = finished(f"nb201-diagnosis-{k}", lambda: {"label": label, **one(kw)})
            if res is not None and "metrics" in res:
                print(summary_line(label, res), flush=True)
        atomic_write_json(out_path, out)
    if "scale" in parts:
        finished("scale", lambda: scale_check(work))
    out["load_average_at_end"] = list(os.getloadavg())
    atomic_write_json(out_path, out)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

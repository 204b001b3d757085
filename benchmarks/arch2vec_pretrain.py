"""arch2vec pretraining on NB201 / NB101 / DARTS: quality (Yan et al. 2020, Table 1), time, latent checks.

For each space, trains the variational autoencoder (arch2vec) and a plain GAE with the same code
and settings (batch 32, lr 1e-3, published epochs), holds out 10 % of the architectures and
reports reconstruction accuracy on them, and validity / uniqueness of 10,000 decoded latent
samples (z ~ N(0, I), and z from the fitted per-slot Gaussian as in arch2vec's scripts). The
arch2vec models go to the user cache (``nascore.arch2vec.pretrain.default_model_dir``), where the
search strategies find them. On NB201 it also measures one training epoch with the dense and the
torch-geometric encoder paths, the latent-distance / edit-distance correlation, and draws a t-SNE
of all 15,625 embeddings coloured by valid_acc_200.

Finished parts are kept in ``--work`` (default /tmp/arch2vec-pretrain) and skipped on a rerun.

    python benchmarks/arch2vec_pretrain.py [--spaces nb201,nb101,darts] [--nb101-max N] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nascore.arch2vec import metrics as M  # noqa: E402
from nascore.arch2vec.pretrain import _str_keys, default_model_dir, pretrain, space_dataset  # noqa: E402
from nascore.io import atomic_write_json, read_json  # noqa: E402
from nascore.spaces import SPACES, get_space  # noqa: E402

PUBLISHED = {"nb101": {"reconstruction": 100.0, "validity": 44.97, "uniqueness": 99.69},
             "nb201": {"reconstruction": 100.0, "validity": 79.41, "uniqueness": 98.72},
             "darts": {"reconstruction": 99.79, "validity": 33.36, "uniqueness": 100.0}}


def time_paths(space, epochs_steps: int = 200) -> dict:
    """Seconds per training step (batch 32) of the dense and the torch_geometric encoder paths."""
    from nascore.arch2vec.vgae import VGAE, dense_tensors
    from nascore.encoders.gin import to_batch

    archs = list(space.enumerate())[: 32 * epochs_steps]
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
        out[path] = (time.perf_counter() - t) / epochs_steps
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
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return {"png": str(path.relative_to(RESULTS.parent.parent)), "tsne_seconds": secs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default="nb201,nb101,darts")
    ap.add_argument("--kinds", default="vgae,gae")
    ap.add_argument("--nb101-max", type=int, default=None, help="pretrain NB101 on a random subset of this size")
    ap.add_argument("--darts-samples", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=None, help="override the published epochs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/arch2vec-pretrain")
    ap.add_argument("--aggregate-only", action="store_true", help="train nothing: collect the finished parts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = {**header(), "published_arch2vec": PUBLISHED, "results": {}}
    for name in args.spaces.split(","):
        if name not in SPACES:
            print(f"skip {name}: unknown space")
            continue
        try:
            space = get_space(name)
        except (ImportError, AttributeError) as e:
            print(f"skip {name}: space not available ({e})")
            out["results"][name] = {"skipped": f"space not available: {e}"}
            continue
        data = None
        for kind in args.kinds.split(","):
            done = work / f"{name}-{kind}.json"
            if not done.exists() and args.aggregate_only:
                out["results"][f"{name}/{kind}"] = {"not_run": "no CPU time left in this session"}
                continue
            if not done.exists():
                if data is None:
                    data = space_dataset(space, args.nb101_max if name == "nb101" else None,
                                         samples=args.darts_samples, seed=0, progress=True)
                folder = default_model_dir(name, kind == "vgae") if args.nb101_max is None or name != "nb101" \
                    else work / f"{name}-{kind}-model"
                res = pretrain(space, output=folder, epochs=args.epochs, variational=kind == "vgae", data=data,
                               progress=True)
                atomic_write_json(done, res)
            res = read_json(done)
            out["results"][f"{name}/{kind}"] = res
            q = res["metrics"]
            print(f"{name} {kind}: held-out recon {q['heldout']['accuracy']:.2f}%  "
                  f"validity {q['prior_standard']['validity']:.2f}/{q['prior_fitted']['validity']:.2f}%  "
                  f"uniqueness {q['prior_standard']['uniqueness']:.2f}/{q['prior_fitted']['uniqueness']:.2f}%  "
                  f"train {res['seconds']['train']:.0f} s")
        if name == "nb201":
            extra = work / "nb201-latent.json"
            if not extra.exists() and not args.aggregate_only:
                with np.load(default_model_dir("nb201") / "embeddings.npz") as z:
                    keys, emb = _str_keys(z["keys"]), z["emb"]
                _, ops, adj = space_dataset(space)
                info = {"paths_seconds_per_step": time_paths(space),
                        "distance_vs_edit": M.distance_correlation(emb, ops.numpy(), adj.numpy().astype(np.int64)),
                        "tsne": tsne_plot(space, emb, keys, RESULTS / "arch2vec_tsne_nb201.png")}
                atomic_write_json(extra, info)
            if extra.exists():
                out["results"]["nb201/latent"] = read_json(extra)
        atomic_write_json(RESULTS / "arch2vec_pretrain.json", out)
    atomic_write_json(RESULTS / "arch2vec_pretrain.json", out)
    print(f"wrote {RESULTS / 'arch2vec_pretrain.json'}")


if __name__ == "__main__":
    main()

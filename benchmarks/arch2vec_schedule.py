"""arch2vec on NB201: our training schedule vs the released one, and the WL ceiling of exact reconstruction.

Issue 15, arch2vec items 1-3. Parts (``--parts``):

* ``ceiling``: :func:`nascore.arch2vec.metrics.wl_ceiling` -- cells that no 1-WL-bounded encoder
  with an inner-product decoder can reconstruct exactly -- on all 15,625 NB201 cells, all 423,624
  NB101 cells and a seeded 20,000 subset of them, and 20,000 and 300,000 distinct sampled DARTS
  cells, with stable WL colours and with 4 rounds (the depth of our and the released encoder).
* ``schedule``: NB201 VGAE pretraining (released settings otherwise: batch 32, lr 1e-3, clip 5,
  released loss normalisation, 10 epochs unless ``--epochs``), per seed in ``--seeds``:

  - ``ours``: training mode every epoch, decoder dropout 0 (the package default);
  - ``released``: eval mode from epoch 2 on (``schedule="released"``), decoder dropout 0.3;
  - ``released+logstd``: the same with the released sigma = exp(head);

  and, seed 0 only, ``ours+dropout0.3`` (dropout 0.3 in every epoch, the setting that did not
  train before) and ``released+dropout0`` (the schedule alone).
* ``layout``: the released GIN layout (BatchNorm + ReLU after every GIN layer, the last included,
  as ``models/model.py`` of the release) with dropout 0.3 under both schedules, seed 0 -- a
  throwaway subclass patched into the pretraining function; its checkpoints are not loadable
  with :func:`nascore.arch2vec.pretrain.load_model` and stay in ``--work``.

Reported per run: held-out whole-graph exact reconstruction, per-node label and per-entry
adjacency accuracy (the released scripts' measures) per epoch and at the end, and validity /
uniqueness of 10,000 samples from the fitted prior (released and strict rules). Finished runs are
kept in ``--work`` and skipped on a rerun. Writes ``results/arch2vec_schedule.json``.

    python benchmarks/arch2vec_schedule.py [--parts ceiling,schedule,layout] [--seeds 0,1] [--epochs 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

import nascore.arch2vec.pretrain as P  # noqa: E402
from nascore.arch2vec import metrics as M  # noqa: E402
from nascore.arch2vec.cells import DartsCellSpace  # noqa: E402
from nascore.arch2vec.vgae import VGAE  # noqa: E402
from nascore.io import atomic_write_json, read_json  # noqa: E402
from nascore.spaces import get_space  # noqa: E402

RUNS = {
    "ours": dict(schedule="ours"),
    "released": dict(schedule="released"),
    "released+logstd": dict(schedule="released", sigma_head="logstd"),
}
SEED0_RUNS = {
    "ours+dropout0.3": dict(schedule="ours", dropout=0.3),
    "released+dropout0": dict(schedule="released", dropout=0.0),
}


class ReleasedLayoutVGAE(VGAE):
    """The released encoder layout: after each GIN layer's MLP (Linear-BN-ReLU-Linear) another
    BatchNorm and a ReLU, the last layer included (``Model._encoder`` of the release)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.post_bn = nn.ModuleList(nn.BatchNorm1d(self.config["hidden"]) for _ in self.gin.convs)

    def _node_states_dense(self, ops, adj):
        b, m = ops.shape
        x = torch.nn.functional.one_hot(ops, self.n_labels + 1)[..., : self.n_labels].float()
        a = adj + adj.transpose(1, 2)
        for conv, bn in zip(self.gin.convs, self.post_bn):
            h = (1 + conv.eps) * x + torch.bmm(a, x)
            x = torch.relu(bn(conv.nn(h.reshape(b * m, -1)))).reshape(b, m, -1)
        return x


def ceiling_part() -> dict:
    out = {}
    nb201, nb101, darts = get_space("nb201"), get_space("nb101"), DartsCellSpace()
    sets = [("nb201 all 15,625", lambda: P.space_dataset(nb201)),
            ("nb101 all 423,624", lambda: P.space_dataset(nb101)),
            ("nb101 20,000 (seeded subset of all cells)", lambda: P.space_dataset(nb101, 20_000, seed=0)),
            ("darts 20,000 distinct sampled cells", lambda: P.space_dataset(darts, samples=20_000, seed=0)),
            ("darts 300,000 distinct sampled cells", lambda: P.space_dataset(darts, samples=300_000, seed=0))]
    for label, data in sets:
        _, ops, adj = data()
        o, a = ops.numpy(), adj.numpy()
        t = time.perf_counter()
        out[label] = {"stable": M.wl_ceiling(o, a), "rounds4": M.wl_ceiling(o, a, rounds=4),
                      "seconds": time.perf_counter() - t}
        r = out[label]["stable"]
        print(f"{label}: unreconstructable {r['unreconstructable']} ({100 - r['ceiling']:.2f} %), same colour "
              f"non-adjacent {r['same_colour_nonadjacent']}, ceiling {r['ceiling']:.2f} % "
              f"(4 rounds {out[label]['rounds4']['ceiling']:.2f} %)", flush=True)
    return out


def one_run(work: Path, tag: str, kw: dict, seed: int, epochs: int | None, data) -> dict:
    r = P.pretrain(get_space("nb201"), output=work / "model", seed=seed, epochs=epochs, data=data,
                   progress=False, **kw)
    q = r["metrics"]
    res = {"tag": tag, "settings": kw, "seed": seed, "train": r["train"], "config": r["config"],
           "curve": r["curve"], "heldout": q["heldout"], "train_subset": q["train"],
           "prior_fitted": q["prior_fitted"], "prior_standard_validity": q["prior_standard"]["arch2vec"]["validity"],
           "seconds": r["seconds"]}
    h, f = q["heldout"], q["prior_fitted"]
    print(f"{tag} seed {seed}: exact {h['accuracy']:.2f} %, labels {h['ops_accuracy']:.2f} %, adjacency "
          f"{h['adj_accuracy']:.3f} %; validity/uniqueness released rule {f['arch2vec']['validity']:.2f}/"
          f"{f['arch2vec']['uniqueness']:.2f} %, strict {f['strict']['validity']:.2f}/{f['strict']['uniqueness']:.2f} %;"
          f" exact per epoch {[round(c['heldout_accuracy'], 1) for c in r['curve']]}; "
          f"train {r['seconds']['train']:.0f} s", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="ceiling,schedule,layout")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--epochs", type=int, default=None, help="default: the published 10 for NB201")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/arch2vec-schedule")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / "arch2vec_schedule.json"
    out = {**header(), "load_average_at_start": list(os.getloadavg()), "epochs": args.epochs or 10,
           "results": {}}
    parts = args.parts.split(",")
    cache = {}

    def data():
        if "d" not in cache:
            cache["d"] = P.space_dataset(get_space("nb201"))
        return cache["d"]

    def finished(tag: str, fn):
        done = work / f"{tag}.json"
        if not done.exists():
            atomic_write_json(done, fn())
        out["results"][tag] = read_json(done)
        atomic_write_json(out_path, out)

    if "ceiling" in parts:
        finished("ceiling", ceiling_part)
    ep = f"-e{args.epochs}" if args.epochs else ""
    if "schedule" in parts:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for tag, kw in {**RUNS, **(SEED0_RUNS if seed == 0 else {})}.items():
                finished(f"nb201-{tag}-seed{seed}{ep}", lambda: one_run(work, tag, kw, seed, args.epochs, data()))
    if "layout" in parts:
        real = P.VGAE
        P.VGAE = ReleasedLayoutVGAE
        try:
            for tag, kw in (("layout-released-gin+ours+dropout0.3", dict(schedule="ours", dropout=0.3)),
                            ("layout-released-gin+released", dict(schedule="released"))):
                finished(f"nb201-{tag}-seed0{ep}", lambda: one_run(work, tag, kw, 0, args.epochs, data()))
        finally:
            P.VGAE = real
    out["load_average_at_end"] = list(os.getloadavg())
    atomic_write_json(out_path, out)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

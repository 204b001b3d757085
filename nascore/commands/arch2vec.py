"""``nascore arch2vec pretrain``: pretrain arch2vec on a space and cache the model and embeddings.

The strategies ``arch2vec-bo`` / ``arch2vec-rl`` read ``~/.cache/nascore/arch2vec/<space>/model.pt``
by default (``--param model=PATH`` for another file) and pretrain it there with these defaults on
first use when it is missing.
"""

from __future__ import annotations

from nascore.cliutil import check_options
from nascore.validate import MAX_SEED, integer, number

#: ranges of the numeric options of ``arch2vec pretrain`` (checked before anything runs)
PRETRAIN_BOUNDS = {"epochs": integer(1, 100_000), "seed": integer(0, MAX_SEED), "batch_size": integer(1, 65_536),
                   "lr": number(0, 10, lo_open=True), "kl_weight": number(0, 1e6), "dropout": number(0, 1, hi_open=True),
                   "clip": number(0, 1e6), "hidden": integer(1, 4096), "layers": integer(1, 64),
                   "latent": integer(1, 1024), "max_archs": integer(2, 100_000_000),
                   "samples": integer(1, 100_000_000), "threads": integer(1, 1024)}


def register(sub) -> None:
    from nascore.paths import user_cache_root

    p = sub.add_parser("arch2vec", help="arch2vec: pretrain unsupervised architecture embeddings")
    asub = p.add_subparsers(dest="arch2vec_command", metavar="ACTION")
    asub.required = True
    t = asub.add_parser("pretrain", help="pretrain the variational graph autoencoder on a space",
                        description="Pretrain arch2vec (Yan et al. 2020) on every architecture of a space (nb201, "
                                    "nb101, any finite space) or on sampled single cells (darts), and write model.pt, "
                                    "gin_encoder.pt, metrics.json and embeddings.npz (every architecture of a finite "
                                    "space, also with --max-archs). "
                                    "Example: nascore arch2vec pretrain --space nb201")
    t.add_argument("--space", default="nb201", help="nb201, nb101 or darts (single cells)")
    t.add_argument("--epochs", type=int, default=None, help="default: published (nb101 8, nb201 10, darts 10)")
    t.add_argument("--output", default=None, help=f"folder (default {user_cache_root() / 'arch2vec'}/<space>, "
                                                  "where the search strategies look)")
    t.add_argument("--gae", action="store_true", help="plain graph autoencoder instead (no KL, z = mu)")
    t.add_argument("--seed", type=int, default=0,
                   help="seed of the training sample, hold-out split, weights and batch order (default 0)")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--kl-weight", type=float, default=None,
                   help="weight of the KL term (default: 1/(batch x nodes), as the released code)")
    t.add_argument("--loss-form", choices=("arch2vec", "mean"), default="arch2vec",
                   help="arch2vec: the released loss normalisation (default); mean: softmax CE + mean BCE")
    t.add_argument("--schedule", choices=("ours", "released"), default="ours",
                   help="ours (default): training mode every epoch; released: as the released scripts, "
                        "model.eval() after epoch 1 and never model.train() again (from epoch 2 on z = mu, "
                        "no decoder dropout, frozen BatchNorm statistics)")
    t.add_argument("--dropout", type=float, default=None,
                   help="decoder dropout on z (default: 0.3 with --schedule released, as released; 0 with "
                        "--schedule ours, where 0.3 in every epoch keeps the labels from training)")
    t.add_argument("--sigma-head", choices=("logvar", "logstd"), default="logvar",
                   help="logvar (default): sigma = exp(head/2); logstd: sigma = exp(head), as released")
    t.add_argument("--clip", type=float, default=5.0, help="gradient-norm clipping (released 5; 0 = none)")
    t.add_argument("--hidden", type=int, default=128, help="GIN width (published 128)")
    t.add_argument("--layers", type=int, default=4, help="GIN layers (published 4)")
    t.add_argument("--latent", type=int, default=16, help="latent size per node (published 16)")
    t.add_argument("--max-archs", type=int, default=None,
                   help="pretrain on a seeded random sample of this size (a finite space is still embedded whole)")
    t.add_argument("--samples", type=int, default=600_000, help="distinct cells drawn for darts (default 600000, "
                                                               "as released)")
    t.add_argument("--threads", type=int, default=1, help="torch threads for the pretraining (default 1: fastest for these tiny graphs, and the model of a given seed is then the same on every machine; other counts give other weights)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=pretrain_main)


def pretrain_main(args) -> int:
    import torch

    from nascore.arch2vec.pretrain import default_model_dir, pretrain
    from nascore.spaces import get_space

    check_options(args, PRETRAIN_BOUNDS)
    torch.set_num_threads(args.threads)
    if args.space == "darts":
        from nascore.arch2vec.cells import DartsCellSpace

        space = DartsCellSpace()
    else:
        space = get_space(args.space)
    output = args.output or default_model_dir(args.space, not args.gae)
    r = pretrain(space, output=output, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                 kl_weight=args.kl_weight, hidden=args.hidden, layers=args.layers, latent=args.latent,
                 variational=not args.gae, dropout=args.dropout, clip=args.clip or None, loss_form=args.loss_form,
                 seed=args.seed, max_archs=args.max_archs, samples=args.samples, progress=not args.quiet,
                 schedule=args.schedule, sigma_head=args.sigma_head, threads=args.threads)
    q = r["metrics"]
    t = r["train"]
    print(f"arch2vec{' (GAE)' if args.gae else ''} on {args.space}: trained on {t['n_architectures']} architectures "
          f"({t['n_embedded']} embedded), {t['epochs']} epochs, {t['schedule']} schedule, decoder dropout "
          f"{t['dropout']:g}, {r['seconds']['train']:.0f} s of training")
    h = q["heldout"]
    print(f"  held-out reconstruction: whole graph exact {h['accuracy']:.2f} %, per node label "
          f"{h['ops_accuracy']:.2f} %, per adjacency entry {h['adj_accuracy']:.2f} % (the released scripts' measures)")
    for prior, label in (("prior_fitted", "fitted prior (released protocol)"), ("prior_standard", "z ~ N(0, I)")):
        v = q[prior]
        print(f"  validity / uniqueness, {label}: strict {v['strict']['validity']:.2f} / "
              f"{v['strict']['uniqueness']:.2f} %, released rule {v['arch2vec']['validity']:.2f} / "
              f"{v['arch2vec']['uniqueness']:.2f} %")
    print(f"  wrote {output}/ (model.pt, gin_encoder.pt, metrics.json, embeddings.npz)")
    return 0

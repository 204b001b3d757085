"""``nascore darts``: first-order DARTS search, evaluation-network training, α-checkpoint derivation.

    nascore darts search --space nb201 --epochs 50 --output runs/darts-nb201
    nascore darts train --genotype runs/darts-s/result.json --epochs 600 --output runs/train
    nascore darts derive --checkpoint runs/darts-nb201/checkpoint.pt --space nb201
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nascore.cliutil import check_options
from nascore.errors import UserError
from nascore.validate import MAX_SEED, integer, number

#: ranges of the numeric options of ``darts search`` / ``egnas search`` (checked before anything runs)
SEARCH_BOUNDS = {"epochs": integer(1, 100_000), "warmup": integer(0, 100_000), "subset": integer(1, 100_000_000),
                 "batch_size": integer(1, 65_536), "lr": number(0, 10, lo_open=True), "C": integer(1, 4096),
                 "layers": integer(1, 1000), "K": integer(1, 4096), "eval_images": integer(0, 100_000_000),
                 "seed": integer(0, MAX_SEED)}
#: ranges of the numeric options of ``darts train``
TRAIN_BOUNDS = {"epochs": integer(1, 100_000), "subset": integer(1, 100_000_000),
                "test_subset": integer(1, 100_000_000), "batch_size": integer(1, 65_536),
                "lr": number(0, 10, lo_open=True), "C": integer(1, 4096), "layers": integer(1, 1000),
                "auxiliary_weight": number(0, 100), "drop_path": number(0, 1, hi_open=True),
                "cutout": integer(0, 4096), "seed": integer(0, MAX_SEED)}


def add_search_args(p) -> None:
    """Arguments shared by ``nascore darts search`` and ``nascore egnas search``."""
    p.add_argument("--space", choices=("darts", "nb201"), default="nb201", help="cell space (default nb201)")
    p.add_argument("--dataset", choices=("cifar10", "cifar100"), default="cifar10")
    p.add_argument("--data", default=None, help="CIFAR folder (default $NASCORE_DATA/cifar10-jpeg or cifar10)")
    p.add_argument("--bench-data", default=None, help="NAS-Bench-201 table folder (default $NASCORE_DATA/nasbench201)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=None, help="epochs before α moves (default: egnas 30%% of --epochs, 15 of 50 as in the paper; darts 0)")
    p.add_argument("--subset", type=int, default=None, help="use only the first N training images (smoke runs)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=None, help="weight learning rate (default: egnas 0.1, darts 0.025)")
    p.add_argument("--init-channels", "-C", dest="C", type=int, default=16)
    p.add_argument("--layers", type=int, default=None, help="cells (darts, default 8) / cells per stage (nb201, default 5)")
    p.add_argument("--partial-channels", "-K", dest="K", type=int, default=4, help="PC-DARTS K (1 = plain DARTS)")
    p.add_argument("--eval-images", type=int, default=10000, help="held-out images scored each epoch")
    p.add_argument("--amp", choices=("auto", "bf16", "off"), default="auto", help="bf16 autocast (auto: on CUDA)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, α, batch order, augmentation and ES noise (default 0)")
    p.add_argument("--output", default=None, help="run folder (default runs/<method>-<space>-seed<seed>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_supernet_options(p)


def add_supernet_options(p) -> None:
    """``--op-set``, ``--pool-bn``, ``--bn-running-stats``: the supernet choices of
    :func:`nascore.darts.train.supernet_config` (also on ``ecgnas search --method eg-nas``)."""
    p.add_argument("--op-set", choices=("released", "darts"), default=None,
                   help="DARTS-cell operations: released = the 7 of the released EG-NAS code (no 'none'), darts = "
                        "the 8 with 'none' (default: egnas released, darts darts; the NB-201 cell has its own 5)")
    p.add_argument("--pool-bn", action=argparse.BooleanOptionalAction, default=None,
                   help="a BN after the pooling operations, as DARTS (default on; the released EG-NAS has none)")
    p.add_argument("--bn-running-stats", action=argparse.BooleanOptionalAction, default=None,
                   help="supernet BNs keep running statistics, used in eval mode (ES scoring, held-out "
                        "accuracy) as in the released EG-NAS (default off: batch statistics)")


def search_kwargs(args) -> dict:
    return dict(space=args.space, dataset=args.dataset, epochs=args.epochs, warmup=args.warmup, subset=args.subset,
                seed=args.seed, batch_size=args.batch_size, lr=args.lr, C=args.C, layers=args.layers, K=args.K,
                eval_images=args.eval_images, amp=args.amp, channels_last=args.channels_last, op_set=args.op_set,
                pool_bn=True if args.pool_bn is None else args.pool_bn,
                bn_running_stats=False if args.bn_running_stats is None else args.bn_running_stats)


def run_and_print(cfg: dict, args) -> int:
    from nascore.darts.train import run_supernet_search
    out = args.output or f"runs/{cfg['method']}-{cfg['space']}-seed{cfg['seed']}"
    res = run_supernet_search(cfg, out, data=args.data, device=args.device, progress=not args.quiet,
                              bench_data=args.bench_data)
    if cfg["space"] == "darts":
        print(f"genotype: {res['genotype']}")
    else:
        extra = f"   NB-201 test accuracy {res['test_accuracy']:.2f} %" if res.get("test_accuracy") is not None else ""
        print(f"arch: {res['arch']}{extra}")
        if res.get("lookup_error"):
            print(f"  (no NB-201 lookup: {res['lookup_error']})")
    print(f"  supernet held-out accuracy {res['valid_accuracy_supernet']:.2f} %; results in {out}/ "
          f"(result.json, log.jsonl, alpha.png, checkpoint.pt)")
    return 0


def read_genotype_arg(text: str) -> str:
    """``--genotype``: the genotype text, a file holding it, or a search ``result.json``."""
    p = Path(text)
    if text.lstrip().startswith("Genotype("):
        return text
    if not p.is_file():
        raise UserError(f"--genotype {text!r}: neither Genotype(...) text nor an existing file")
    body = p.read_text(encoding="utf-8").strip()
    if p.suffix == ".json":
        try:
            g = json.loads(body).get("genotype")
        except (json.JSONDecodeError, AttributeError):
            g = None
        if not isinstance(g, str):
            raise UserError(f"{p}: JSON file without a 'genotype' string (a darts-space search result.json is needed)")
        return g
    return body


def register(sub) -> None:
    p = sub.add_parser("darts", help="first-order DARTS search, evaluation training, α derivation",
                       description="DARTS (Liu et al. 2019) with PC-DARTS partial channels. Example: "
                                   "nascore darts search --space nb201 --epochs 50 --subset 5000")
    dsub = p.add_subparsers(dest="darts_command", metavar="ACTION")
    dsub.required = True
    s = dsub.add_parser("search", help="first-order DARTS search (gradient on α)")
    add_search_args(s)
    s.add_argument("--arch-lr", type=float, default=6e-4)
    s.add_argument("--arch-wd", type=float, default=1e-3)
    s.set_defaults(func=search_main)
    t = dsub.add_parser("train", help="train the evaluation network of a genotype (20 cells, C=36, aux, drop-path, cutout)")
    t.add_argument("--genotype", required=True, help="Genotype(...) text, a file with it, or a search result.json")
    t.add_argument("--dataset", choices=("cifar10", "cifar100"), default="cifar10")
    t.add_argument("--data", default=None)
    t.add_argument("--epochs", type=int, default=600)
    t.add_argument("--subset", type=int, default=None, help="first N training images only")
    t.add_argument("--test-subset", type=int, default=None, help="first N test images only")
    t.add_argument("--batch-size", type=int, default=96)
    t.add_argument("--lr", type=float, default=0.025)
    t.add_argument("--init-channels", "-C", dest="C", type=int, default=36)
    t.add_argument("--layers", type=int, default=20)
    t.add_argument("--auxiliary-weight", type=float, default=0.4, help="0 disables the auxiliary head")
    t.add_argument("--drop-path", type=float, default=0.2)
    t.add_argument("--cutout", type=int, default=16, help="cutout length in pixels (0 = off)")
    t.add_argument("--amp", choices=("auto", "bf16", "off"), default="auto")
    t.add_argument("--channels-last", action="store_true")
    t.add_argument("--device", default="cpu")
    t.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, batch order, augmentation and drop-path (default 0)")
    t.add_argument("--output", default=None, help="run folder (default runs/darts-train-seed<seed>)")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=train_main)
    d = dsub.add_parser("derive", help="print the architecture a search checkpoint's α derives")
    d.add_argument("--checkpoint", required=True)
    d.add_argument("--space", choices=("darts", "darts1d", "nb201"), required=True,
                   help="darts1d: a 1D DARTS supernet search (the ECG search of ecgnas.supernet)")
    d.set_defaults(func=derive_main)


def search_main(args) -> int:
    from nascore.darts.train import search_config
    check_options(args, {**SEARCH_BOUNDS, "arch_lr": number(0, 10, lo_open=True), "arch_wd": number(0, 10)})
    cfg = search_config(method="darts", arch_lr=args.arch_lr, arch_wd=args.arch_wd, **search_kwargs(args))
    return run_and_print(cfg, args)


def train_main(args) -> int:
    from nascore.darts.train import train_config, train_genotype
    check_options(args, TRAIN_BOUNDS)
    cfg = train_config(genotype=read_genotype_arg(args.genotype), dataset=args.dataset, epochs=args.epochs,
                       subset=args.subset, test_subset=args.test_subset, seed=args.seed, batch_size=args.batch_size,
                       lr=args.lr, C=args.C, layers=args.layers, auxiliary_weight=args.auxiliary_weight,
                       drop_path_prob=args.drop_path, cutout=args.cutout, amp=args.amp,
                       channels_last=args.channels_last)
    out = args.output or f"runs/darts-train-seed{args.seed}"
    res = train_genotype(cfg, out, data=args.data, device=args.device, progress=not args.quiet)
    print(f"test accuracy {res['test_accuracy']:.2f} % after {res['epochs_done']} epochs "
          f"({res['params'] / 1e6:.2f} M parameters); results in {out}/")
    return 0


def derive_main(args) -> int:
    import torch
    from nascore.darts.ops import DARTS_PRIMITIVES
    from nascore.darts.supernet import derive_darts, derive_nb201
    from nascore.darts.train import load_checkpoint
    from nascore.spaces.darts import genotype_to_string
    from nascore.spaces.nb201 import OPS as NB201_OPS
    path = Path(args.checkpoint)
    if not path.is_file():
        raise UserError(f"--checkpoint {path}: no such file")
    darts_like = args.space in ("darts", "darts1d")   # same cell, same α layout; darts1d = its 1D op set
    st = load_checkpoint(path, args.space, None)
    # the α columns: the checkpoint's list (EG-NAS searches of DARTS cells: the released 7, no 'none')
    prims = st.get("primitives") or (DARTS_PRIMITIVES if darts_like else NB201_OPS)
    shape = (2, 14, len(prims)) if darts_like else (1, 6, len(prims))
    if list(st["alpha"].shape) != list(shape):
        raise UserError(f"{path}: α has shape {list(st['alpha'].shape)}; a {args.space} search over "
                        f"{len(prims)} operations has {list(shape)}")
    w = torch.softmax(st["alpha"].float(), dim=-1)
    if darts_like:
        print(genotype_to_string(derive_darts(w, prims)))
    else:
        print(derive_nb201(w, prims))
    return 0

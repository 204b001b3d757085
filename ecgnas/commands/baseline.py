"""``ecgnas baseline random-search``: the hand-designed baseline (1D ResNet + RR) tuned by random search.

Samples depth, width, kernel size, dropout, RR features on/off, learning rate, weight decay, beat
window, class weighting and sampler (:class:`ecgnas.baselines.SearchSpace`), trains each trial on
DS1-train with early stopping on the DS1 hold-out, keeps the best by hold-out macro-F1 and
evaluates it on DS2 into ``DIR/best/``. Resumable: re-run the same command after a kill.

Example::

    ecgnas baseline random-search --trials 16 --epochs 8 --seed 0 --threads 1 --output runs/rs0
"""

from __future__ import annotations

import sys

from ecgnas.commands.train import add_train_options, train_config_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser("baseline", help="hand-designed baselines (random search over the ResNet family)",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="baseline", metavar="KIND", parser_class=type(p))
    sub.required = True
    rs = sub.add_parser("random-search", help="random search over the 1D ResNet + RR family and its training recipe",
                        description=__doc__.split("\n\n")[1])
    rs.add_argument("--trials", type=int, required=True, help="number of sampled configurations")
    rs.add_argument("--seed", type=int, default=0, help="draws all trial configurations and their seeds")
    rs.add_argument("--split", choices=("inter", "intra"), default="inter")
    rs.add_argument("--max-new-trials", type=int, default=None,
                    help="run at most this many trials now, then stop (resume later with the same command)")
    rs.add_argument("--output", required=True, help="search folder")
    add_train_options(rs, epochs_default=12)
    rs.set_defaults(func=main)


def main(args) -> int:
    from ecgnas.baselines import random_search

    base = train_config_from_args(args)
    res = random_search(args.output, args.trials, seed=args.seed, base=base, split=args.split, data=args.data,
                        progress=not args.quiet, max_new_trials=args.max_new_trials)
    if not res["complete"]:
        print(f"{args.output}: {res['n_done']}/{res['n_trials']} trials done; run the same command to continue",
              file=sys.stdout)
        return 0
    b, t = res["best"], res["test"]
    print(f"{args.output}: best trial {b['trial']} (hold-out macro-F1 {b['val_macro_f1']:.2f}, {b['params']} params); "
          f"DS2 macro-F1 {t['macro_f1']:.2f}, accuracy {t['accuracy']:.2f} -> {args.output.rstrip('/')}/result.json",
          file=sys.stdout)
    return 0

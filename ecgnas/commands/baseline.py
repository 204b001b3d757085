"""``ecgnas baseline random-search``: the hand-designed baseline (1D ResNet + RR) tuned by random search.

Random search over the hand-designed family (:mod:`ecgnas.spaces.handdesigned`: depth, width,
kernel size, dropout, RR features on/off, learning rate, weight decay, beat window, class
weighting / sampler). Each trial trains at the search fidelity on DS1 minus the hold-out records
and is scored on the DS1 hold-out; the best is retrained with the full schedule and evaluated on
DS2 into ``DIR/final/``. It is exactly ``ecgnas search --method random --space resnet-family
--baseline none`` (same run loop, evaluator, fidelity and final schedule as the NAS methods), so
its folder can be given to ``ecgnas search --baseline DIR``. Resumable: re-run the same command.

Example::

    ecgnas baseline random-search --trials 24 --seed 0 --output runs/baseline-s0
"""

from __future__ import annotations

import sys

from nascore.cliutil import add_multi_fidelity_options, check_options
from nascore.helptext import doc_paragraph
from nascore.validate import integer

from ecgnas.commands.train import COMMON_BOUNDS, add_dataset_options, dataspec_from_args

#: ranges of the numeric options of ``baseline random-search`` (checked before anything runs)
BASELINE_BOUNDS = {**COMMON_BOUNDS, "trials": integer(1, 1_000_000), "search_epochs": integer(1, 100_000),
                   "search_samples": integer(1, 100_000_000), "ensemble": integer(1, 20)}


def register(subparsers) -> None:
    from ecgnas.evaluator import DEFAULT_FIDELITY
    from ecgnas.train import DEVICES, TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser("baseline", help="hand-designed baselines (random search over the ResNet family)",
                              description=doc_paragraph(__doc__, 0))
    sub = p.add_subparsers(dest="baseline", metavar="KIND", parser_class=type(p))
    sub.required = True
    rs = sub.add_parser("random-search", help="random search over the 1D ResNet + RR family and its training recipe",
                        description=doc_paragraph(__doc__, 1))
    rs.add_argument("--trials", type=int, required=True, help="number of sampled configurations")
    rs.add_argument("--seed", type=int, default=0,
                    help="draws the trial configurations and their training seeds (default 0)")
    rs.add_argument("--split", choices=("inter", "intra"), default="inter",
                    help="inter: DS1/DS2 (default); intra: random beat split (optimistic)")
    rs.add_argument("--output", required=True, help="run folder")
    add_dataset_options(rs)
    rs.add_argument("--search-epochs", type=int, default=DEFAULT_FIDELITY["epochs"],
                    help=f"epochs per trial (default {DEFAULT_FIDELITY['epochs']})")
    rs.add_argument("--search-samples", type=int, default=DEFAULT_FIDELITY["samples_per_epoch"],
                    help=f"beats per trial epoch (default {DEFAULT_FIDELITY['samples_per_epoch']})")
    rs.add_argument("--selection", choices=("holdout", "cv"), default="holdout",
                    help="how a trial is scored: the DS1 hold-out (default) or grouped 4-fold CV over DS1 "
                         "(as `ecgnas search --selection`)")
    rs.add_argument("--search-repeats", type=int, default=1, metavar="R",
                    help="train each trial R times with different seeds and score the mean (as `ecgnas search`)")
    rs.add_argument("--epochs", type=int, default=d.epochs, help=f"final model: max epochs (default {d.epochs})")
    rs.add_argument("--samples-per-epoch", type=int, default=d.samples_per_epoch,
                    help="final model: beats per epoch (default: every training beat once; 0 = the same)")
    rs.add_argument("--patience", type=int, default=d.patience,
                    help="final model: early-stopping patience on the DS1 hold-out (default: none, the fixed "
                         "schedule)")
    rs.add_argument("--ensemble", type=int, default=1, metavar="K",
                    help="final model: average K fold models of a DS1 record cross-validation (default 1)")
    rs.add_argument("--device", choices=DEVICES, default="cpu")
    rs.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    rs.add_argument("--eval-cache", default=None, help="evaluation cache folder (default OUTPUT/evals)")
    add_multi_fidelity_options(rs, "--search-epochs")
    rs.add_argument("--quiet", action="store_true", help="no progress output")
    rs.set_defaults(func=main)


def main(args) -> int:
    import dataclasses

    from ecgnas.commands.search import _schedule_arg
    from ecgnas.evaluator import default_fidelity
    from ecgnas.search import ecg_search, final_schedule

    check_options(args, BASELINE_BOUNDS)
    runtime = dict(device=args.device, num_threads=args.threads)
    fidelity = default_fidelity(epochs=args.search_epochs, samples_per_epoch=args.search_samples, **runtime)
    final = dataclasses.replace(final_schedule(), epochs=args.epochs, patience=args.patience or None,
                                select="best" if args.patience else "last",
                                samples_per_epoch=None if args.samples_per_epoch == 0 else args.samples_per_epoch,
                                **runtime)
    res = ecg_search(args.output, method="random", space="resnet-family", budget=args.trials, seed=args.seed,
                     fidelity=fidelity, final=final, spec=dataspec_from_args(args), baseline="none",
                     eval_cache=args.eval_cache, selection=args.selection, ensemble=args.ensemble,
                     progress=not args.quiet, multi_fidelity=_schedule_arg(args), repeats=args.search_repeats)
    t = res["ds2"]
    print(f"{args.output}: best {res['best_arch']} (hold-out macro-F1 {res['search_val_macro_f1']:.2f}, "
          f"{res['params']:,} params); DS2 macro-F1 {t['macro_f1']:.2f}, accuracy {t['accuracy']:.2f} "
          f"-> {args.output.rstrip('/')}/result.json", file=sys.stdout)
    return 0

"""``nascore search``: a strategy on a tabular benchmark, over one or many seeds."""

from __future__ import annotations

from nascore.cliutil import add_multi_fidelity_options, multi_fidelity_args, parse_key_values, parse_seeds


def register(sub) -> None:
    # choice lists come from the registries (they cannot go stale), each default is stated once
    from nascore.benchmarks.nb201 import DATASETS as NB201_DATASETS
    from nascore.search import TABULAR_SPACES
    from nascore.strategies import STRATEGIES

    p = sub.add_parser("search", help="search a tabular benchmark (NAS-Bench-201/101) with a strategy",
                       description="Run a search strategy on a tabular NAS benchmark, once per seed. "
                                   "Example: nascore search --space nb201 --strategy evolution --budget 100 --seeds 0-9")
    from nascore.train_evaluator import NETWORKS

    p.add_argument("--space", default="nb201",
                   help=f"search space: {', '.join(TABULAR_SPACES)} (default nb201); with --evaluator train: "
                        f"{', '.join(NETWORKS)}")
    p.add_argument("--dataset", default="cifar10",
                   help=f"benchmark dataset: {', '.join(NB201_DATASETS)} for nb201; cifar10 for nb101 "
                        "(default cifar10)")
    p.add_argument("--strategy", default="evolution",
                   help=f"search strategy: {', '.join(sorted(STRATEGIES))} (default evolution)")
    p.add_argument("--budget", default="100",
                   help="queries (100) or simulated training seconds (20000s, 90m, 6h) (default 100 queries)")
    p.add_argument("--evaluator", choices=("table", "train"), default="table",
                   help="table: look candidates up in the benchmark table (default); train: train each candidate "
                        "on the images in --data and score a held-out split of them (see 'training evaluator')")
    p.add_argument("--fidelity", type=int, choices=(200, 12), default=None,
                   help="search signal: valid_acc_200 or valid_acc_12 (default 200 when the table has it; "
                        "table evaluator only, the train evaluator's is --epochs)")
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0-49 or 1,2,3 (default 0)")
    p.add_argument("--data", default=None,
                   help="table evaluator: folder holding nb201-<dataset>.csv (default $NASCORE_DATA/nasbench201); "
                        "train evaluator: the image folder (train/<class>/<image>, <class>/<image>, the CIFAR "
                        "JPEG copy or the official CIFAR batches; required)")
    p.add_argument("--output", default=None, help="output folder (default runs/<strategy>-<space>-<dataset>)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter, e.g. population=20")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_multi_fidelity_options(p, "--fidelity / --epochs")
    from nascore.train_evaluator import AUGMENT, Recipe

    r = Recipe()
    g = p.add_argument_group("training evaluator (--evaluator train)")
    g.add_argument("--epochs", type=int, default=r.epochs, help=f"training epochs per candidate (default {r.epochs})")
    g.add_argument("--image-size", type=int, default=r.image_size,
                   help=f"resize images to S x S (default {r.image_size})")
    g.add_argument("--subset", type=int, default=r.subset,
                   help=f"train on at most this many training images (default {r.subset})")
    g.add_argument("--val-size", type=int, default=r.val_size,
                   help=f"held-out training images that score a candidate (default {r.val_size}, at most a fifth)")
    g.add_argument("--channels", type=int, default=r.C, help=f"C, channels of the first stage (default {r.C})")
    g.add_argument("--cells", type=int, default=r.N,
                   help=f"N, cells per stage (default {r.N}; --space darts: 3N+2 cells, N normal ones per stage)")
    g.add_argument("--batch-size", type=int, default=r.batch_size, help=f"batch size (default {r.batch_size})")
    g.add_argument("--lr", type=float, default=r.lr, help=f"initial SGD learning rate, cosine to 0 (default {r.lr})")
    g.add_argument("--augment", choices=tuple(AUGMENT), default=next(k for k, v in AUGMENT.items() if v == r.augment),
                   help="training augmentation: crop-flip (random crop with S/8 zero-padding + horizontal flip, "
                        "per image, torchvision transforms.v2) or none (default %(default)s)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:K or auto")
    g.add_argument("--threads", type=int, default=1, help="torch CPU threads per training (default 1)")
    g.add_argument("--eval-seed", type=int, default=0, help="base seed of the trainings (default 0)")
    g.add_argument("--eval-cache", default=None,
                   help="evaluation cache folder, shareable between searches (default <output>/eval-cache)")
    g.add_argument("--executor", choices=("serial", "ray"), default="serial", help="serial (default) or ray")
    g.add_argument("--workers", type=int, default=None, help="ray: CPUs of the local Ray instance")
    g.add_argument("--gpus-per-task", type=float, default=0, help="ray: GPUs reserved per training (default 0)")
    g.add_argument("--parallel", type=int, default=1, help="candidates in flight at once (default 1; ray)")
    g.add_argument("--table-data", default=None,
                   help="folder of the benchmark table reported beside trained accuracies "
                        "(default $NASCORE_DATA/nasbench201 when found)")
    g.add_argument("--no-table", action="store_true", help="do not report the table's accuracies (your own data)")
    p.set_defaults(func=main)


def main(args) -> int:
    from nascore.report import fmt
    from nascore.search import benchmark_search

    if args.evaluator == "train":
        return main_train(args)

    seeds = parse_seeds(args.seeds)
    output = args.output or f"runs/{args.strategy}-{args.space}-{args.dataset}"
    s = benchmark_search(space=args.space, dataset=args.dataset, strategy=args.strategy, budget=args.budget,
                         seeds=seeds, output=output, data=args.data, fidelity=args.fidelity,
                         params=parse_key_values(args.param, "--param"), progress=not args.quiet,
                         **multi_fidelity_args(args))
    opt = s["optimum"]
    print(f"{args.strategy} on {args.space}-{args.dataset} (fidelity {s['fidelity']}), {len(seeds)} seed(s), "
          f"{fmt(s['queries'], 0)} queries")
    print(f"  best validation accuracy   {fmt(s['valid_accuracy'])} %   (optimum {opt['valid_accuracy']:.2f})")
    print(f"  test accuracy of the best  {fmt(s['test_accuracy'])} %   (optimum's {opt['test_accuracy']:.2f})")
    if "multi_fidelity" in s:
        mf = s["multi_fidelity"]
        print(f"  multi-fidelity rungs {','.join(map(str, mf['rungs']))} (eta {mf['eta']}): "
              f"{mf['candidates_mean']:.1f} candidates, {mf['candidate_epochs_mean']:.0f} candidate-epochs per seed")
    print(f"  results in {output}/ (summary.json, summary.md, curve.png, seed-*/)")
    return 0


def main_train(args) -> int:
    from nascore.errors import UserError
    from nascore.report import fmt
    from nascore.train_evaluator import Recipe
    from nascore.train_search import AUTO, train_search

    if args.data is None:
        raise UserError("--evaluator train needs --data DIR, the image folder")
    if args.fidelity is not None:
        raise UserError("--fidelity reads a table column; with --evaluator train give --epochs")
    seeds = parse_seeds(args.seeds)
    recipe = Recipe(epochs=args.epochs, image_size=args.image_size, subset=args.subset, val_size=args.val_size,
                    C=args.channels, N=args.cells, batch_size=args.batch_size, lr=args.lr, augment=args.augment)
    output = args.output or f"runs/{args.strategy}-{args.space}-train"
    opts = {} if args.executor == "serial" else {"num_cpus": args.workers, "gpus_per_task": args.gpus_per_task}
    s = train_search(space=args.space, dataset=args.dataset, strategy=args.strategy, budget=args.budget, seeds=seeds,
                     output=output, data=args.data, recipe=recipe, table=None if args.no_table else AUTO,
                     table_data=args.table_data, params=parse_key_values(args.param, "--param"),
                     eval_seed=args.eval_seed, cache_dir=args.eval_cache, device=args.device, threads=args.threads,
                     executor=args.executor, executor_options=opts, batch_size=args.parallel,
                     progress=not args.quiet, **multi_fidelity_args(args))
    print(f"{args.strategy} on {args.space}, trained on {args.data} ({s['fidelity']} epochs), {len(seeds)} seed(s), "
          f"{fmt(s['queries'], 0)} queries")
    print(f"  best held-out accuracy     {fmt(s['valid_accuracy'])} %")
    if s["test_accuracy"]["mean"] is not None:
        print(f"  table test accuracy (200 epochs) of the best  {fmt(s['test_accuracy'])} %   "
              f"(optimum's {s['optimum']['test_accuracy']:.2f})")
    elif s.get("table") is None:
        print(f"  no benchmark table ({'--no-table' if args.no_table else f'none for {args.space}'}): "
              "the accuracies are the trained ones only")
    for b in s["best"]:
        if b:
            print(f"  {b['arch']}  valid {b['score']:.2f}" + (f"  table test {b['test_accuracy']:.2f}"
                                                               if "test_accuracy" in b else ""))
    print(f"  results in {output}/ (summary.json, summary.md, seed-*/)")
    return 0

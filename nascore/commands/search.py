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
    p.add_argument("--space", default="nb201",
                   help=f"search space: {', '.join(TABULAR_SPACES)} (default nb201)")
    p.add_argument("--dataset", default="cifar10",
                   help=f"benchmark dataset: {', '.join(NB201_DATASETS)} for nb201; cifar10 for nb101 "
                        "(default cifar10)")
    p.add_argument("--strategy", default="evolution",
                   help=f"search strategy: {', '.join(sorted(STRATEGIES))} (default evolution)")
    p.add_argument("--budget", default="100",
                   help="queries (100) or simulated training seconds (20000s, 90m, 6h) (default 100 queries)")
    p.add_argument("--fidelity", type=int, choices=(200, 12), default=None,
                   help="search signal: valid_acc_200 or valid_acc_12 (default 200 when the table has it)")
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0-49 or 1,2,3 (default 0)")
    p.add_argument("--data", default=None, help="folder holding nb201-<dataset>.csv (default $NASCORE_DATA/nasbench201)")
    p.add_argument("--output", default=None, help="output folder (default runs/<strategy>-<space>-<dataset>)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter, e.g. population=20")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_multi_fidelity_options(p, "--fidelity")
    p.set_defaults(func=main)


def main(args) -> int:
    from nascore.report import fmt
    from nascore.search import benchmark_search

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

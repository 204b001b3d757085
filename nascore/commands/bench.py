"""``nascore bench``: tabular benchmark files (export from official files, inspect)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("bench", help="tabular benchmark files: export, info")
    bsub = p.add_subparsers(dest="bench_command", metavar="ACTION")
    bsub.required = True
    e = bsub.add_parser("export", help="write nb201-<dataset>.csv from the official NATS-Bench files")
    e.add_argument("--nats-path", required=True, help="the official NATS-tss-v1_0-3ffb9-simple folder")
    e.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or imagenet16-120")
    e.add_argument("--output", default=None, help="CSV path (default ./nb201-<dataset>.csv)")
    e.set_defaults(func=export_main)
    i = bsub.add_parser("info", help="load a compact table and print its optimum and columns")
    i.add_argument("--space", default="nb201")
    i.add_argument("--dataset", default="cifar10")
    i.add_argument("--data", default=None)
    i.set_defaults(func=info_main)


def export_main(args) -> int:
    from nascore.benchmarks.nb201 import export_from_nats, table_filename

    out = args.output or table_filename(args.dataset)
    path = export_from_nats(args.nats_path, args.dataset, out)
    print(f"wrote {path}")
    return 0


def info_main(args) -> int:
    import time

    from nascore.search import load_table

    t = time.perf_counter()
    table = load_table(args.space, args.dataset, args.data)
    dt = time.perf_counter() - t
    print(f"{table.path}: {len(table)} architectures, loaded in {dt:.3f} s")
    print(f"  columns: {', '.join(c for c in table.frame.columns)}")
    for f in (200, 12):
        if table.has(f"valid_acc_{f}"):
            o = table.optimum(f)
            print(f"  fidelity {f}: best valid {o['valid_accuracy']:.2f} ({o['arch']}), its test {o['test_accuracy']:.2f}")
    return 0

"""``ecgnas evaluate RUN``: reload a run's checkpoint and re-evaluate it, into ``RUN/eval-<split>/``.

Rebuilds the model and the exact beats it was trained on (same PrepConfig, checked by its cache
key) so anyone can reproduce a run's figures. ``--split test`` is DS2, ``--split val`` the DS1
hold-out.

Example::

    ecgnas evaluate runs/resnet-s0 --split test     # writes runs/resnet-s0/eval-test/metrics.json ...
"""

from __future__ import annotations

import sys

from nascore.helptext import doc_paragraph


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="re-evaluate a trained run's checkpoint (writes RUN/eval-<split>/)",
                              description=doc_paragraph(__doc__, 0))
    p.add_argument("run", metavar="RUN", help="run folder holding checkpoint.pt")
    p.add_argument("--split", choices=("test", "val"), default="test", help="test = DS2 (default), val = DS1 hold-out")
    p.add_argument("--data", default=None, help="MIT-BIH folder (default $NASCORE_DATA/mitdb, then the user cache)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)


def main(args) -> int:
    from ecgnas.evaluate import evaluate_run

    m = evaluate_run(args.run, args.split, data=args.data, progress=not args.quiet, device=args.device)
    pc = m["per_class"]

    def f(v):
        return "n/a" if v is None else f"{v:.2f}"

    print(f"{args.run} [{args.split}]: accuracy {f(m['accuracy'])}, macro-F1 {f(m['macro_f1'])}, "
          f"S Se/+P {f(pc['S']['se'])}/{f(pc['S']['ppv'])}, V Se/+P {f(pc['V']['se'])}/{f(pc['V']['ppv'])} "
          f"-> {args.run.rstrip('/')}/eval-{args.split}/", file=sys.stdout)
    return 0

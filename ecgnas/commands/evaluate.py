"""``ecgnas evaluate RUN``: reload a run's checkpoint and re-evaluate it, into ``RUN/eval-<split>/``.

Rebuilds the model and the exact beats it was trained on (same PrepConfig, checked by its cache
key) so anyone can reproduce a run's figures. ``--split test`` is DS2, ``--split val`` the DS1
hold-out. ``--dataset NAME`` evaluates on another database instead (every record; the lead through
its lead map, resampled to the model's rate) into ``RUN/eval-NAME/``, per record and per patient.

Example::

    ecgnas evaluate runs/resnet-s0 --split test     # writes runs/resnet-s0/eval-test/metrics.json ...
    ecgnas evaluate runs/resnet-s0 --dataset incartdb --data /data/incartdb   # runs/resnet-s0/eval-incartdb/
"""

from __future__ import annotations

import sys

from nascore.helptext import doc_paragraph


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="re-evaluate a trained run's checkpoint (writes RUN/eval-<split>/)",
                              description=doc_paragraph(__doc__, 0))
    p.add_argument("run", metavar="RUN", help="run folder holding checkpoint.pt")
    p.add_argument("--split", choices=("test", "val"), default="test", help="test = DS2 (default), val = DS1 hold-out")
    p.add_argument("--dataset", default=None,
                   help="evaluate on this database instead (cross-database test; any of ecgnas.datasets); default: "
                        "the run's own database and --split")
    p.add_argument("--data", default=None,
                   help="WFDB folder (default $NASCORE_DATA/<dataset>, then the user cache)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)


def main(args) -> int:
    from ecgnas.evaluate import evaluate_run

    m = evaluate_run(args.run, args.split, data=args.data, progress=not args.quiet, device=args.device,
                     dataset=args.dataset)
    where = m.get("dataset") if m.get("cross_database") else args.split
    pc = m["per_class"]

    def f(v):
        return "n/a" if v is None else f"{v:.2f}"

    print(f"{args.run} [{where}]: accuracy {f(m['accuracy'])}, macro-F1 {f(m['macro_f1'])}, "
          f"S Se/+P {f(pc['S']['se'])}/{f(pc['S']['ppv'])}, V Se/+P {f(pc['V']['se'])}/{f(pc['V']['ppv'])} "
          f"-> {args.run.rstrip('/')}/eval-{where}/", file=sys.stdout)
    return 0

"""``ecgnas export RUN``: export a trained run's classifier (ONNX or TorchScript), check it, card it.

Writes into ``--output`` (default ``RUN/export/``) the exported model with the preprocessing
contract in its metadata (and ``contract.json``), ``export.json`` (parity, int8 and latency
figures) and ``model_card.md``. The export is checked against the checkpoint on every DS1 and DS2
beat (>= 99.9 % equal labels, probabilities within 1e-4); a failed check is one line, exit 2.
``--int8`` adds onnxruntime static int8 quantisation calibrated on DS1 beats, with DS2 metrics of
both models. Needs ``pip install "ecgnas[deploy]"`` (onnx, onnxruntime).

Example::

    ecgnas export runs/resnet-s0 --format onnx --int8     # runs/resnet-s0/export/model.onnx, model.int8.onnx ...
"""

from __future__ import annotations

from nascore.cliutil import check_options
from nascore.helptext import doc_paragraph
from nascore.validate import integer

EXPORT_BOUNDS = {"latency_repeats": integer(0, 1_000_000), "threads": integer(1, 1024)}


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a run's classifier to ONNX / TorchScript (parity-checked, "
                                             "optional int8, measured latency, model card)",
                              description=doc_paragraph(__doc__, 0))
    p.add_argument("run", metavar="RUN", help="run folder holding checkpoint.pt")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="default onnx")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx (static int8, DS1 calibration)")
    p.add_argument("--output", default=None, help="folder for the exported files (default RUN/export)")
    p.add_argument("--data", default=None, help="MIT-BIH folder (default $NASCORE_DATA/mitdb, then the user cache)")
    p.add_argument("--parity-beats", default=None, metavar="NPZ",
                   help="check parity on these beats (.npz with x and rr) instead of the run's DS1 + DS2 beats")
    p.add_argument("--latency-repeats", type=int, default=200,
                   help="timed batch-1 runs per latency figure (batch 256: a tenth); 0 skips latency (default 200)")
    p.add_argument("--threads", type=int, default=1, help="threads of the parity check (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=main)


def main(args) -> int:
    from ecgnas.export.pipeline import export_run

    check_options(args, EXPORT_BOUNDS)
    rep = export_run(args.run, args.format, int8=args.int8, output=args.output, data=args.data,
                     parity_beats=args.parity_beats, latency_repeats=args.latency_repeats, threads=args.threads,
                     progress=not args.quiet)
    par = rep["parity"]
    line = (f"{rep['run']}: {', '.join(rep['files'])} (parity on {par['n']} beats: labels "
            f"{100 * par['agreement']:.3f} %, max |dp| {par['max_abs_proba']:.1e})")
    if "int8" in rep:
        q = rep["int8"]
        line += (f"; DS2 macro-F1 float {q['ds2_float']['macro_f1']:.2f} / int8 {q['ds2_int8']['macro_f1']:.2f}, "
                 f"{q['float_bytes']} -> {q['int8_bytes']} bytes")
    lat = rep.get("latency", {})
    if lat:
        first = next(iter(lat.values()))[0]
        line += f"; batch-1 latency {first['median_ms']:.3f} ms (1 thread)"
    print(line)
    return 0

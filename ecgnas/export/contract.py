"""The preprocessing contract of an exported classifier, and its forms in ONNX metadata and JSON.

An exported network is only usable if the caller prepares its inputs exactly as in training. The
contract (:func:`build_contract`, from a checkpoint) states all of it: sampling rate, lead, filter,
the beat window around the R peak, the residual channel and its template, each RR feature and how
to compute it, the class order, the decision rule (ensemble mean, offsets) and the outputs. It is
stored

* in the ONNX file's ``metadata_props`` (:func:`onnx_metadata`): the whole contract as JSON under
  :data:`CONTRACT_KEY`, plus a few flat keys (``ecgnas.fs``, ``ecgnas.classes``, ...) for tools
  that only show strings, read back by :func:`read_onnx_contract`;
* in a TorchScript file as the extra file ``contract.json``;
* beside the file as ``contract.json`` (the sidecar).

>>> c = {"preprocessing": {"sampling_rate_hz": 180, "lead": "MLII", "window_before_s": 0.25,
...      "window_after_s": 0.45}, "classes": ["N", "S"], "decision": {"offsets": []},
...      "ecgnas_version": "0.1.0", "inputs": {"rr": {"columns": ["pre"]}}}
>>> contract_from_metadata(onnx_metadata(c)) == c
True
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from nascore.errors import UserError

CONTRACT_FORMAT = "ecgnas-deploy-contract"
CONTRACT_VERSION = 1
CONTRACT_KEY = "ecgnas.contract"

#: the RR feature columns of each ``rr_set`` and how each is computed (see ecgnas.data.preprocess)
RR_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "ratios": [
        ("pre", "RR interval before the beat, (r[i] - r[i-1]) / fs seconds (first beat: its next interval)"),
        ("post", "RR interval after the beat, (r[i+1] - r[i]) / fs seconds (last beat: its previous interval)"),
        ("local", "mean of pre over the local_rr_beats beats centred on the beat (i-4 .. i+5 for 10; "
                  "truncated at the record ends)"),
        ("pre/local", "prematurity: pre divided by local (both before any record normalisation)"),
        ("post/pre", "compensatory-pause ratio: post divided by pre"),
    ],
    "basic": [
        ("pre", "RR interval before the beat, (r[i] - r[i-1]) / fs seconds (first beat: its next interval)"),
        ("post", "RR interval after the beat (last beat: its previous interval)"),
        ("local", "mean of pre over the local_rr_beats beats centred on the beat"),
        ("avg", "mean RR interval of the whole record, seconds"),
    ],
}
RR_NORM_TEXT = {"record": "pre, post and local are divided by the record's mean RR interval (avg); ratios are unitless",
                "none": "all columns in seconds"}
CLASS_MEANING = {"N": "normal and bundle-branch / escape beats", "S": "supraventricular ectopic beat (SVEB)",
                 "V": "ventricular ectopic beat (VEB)", "F": "fusion of ventricular and normal",
                 "Q": "paced / unclassifiable (not trained on: 8 DS1 beats)"}
RESIDUAL_TEXT = {"record": "channel 0: the filtered window; channel 1: the window minus the record's template beat",
                 "only": "one channel: the window minus the record's template beat",
                 "none": "one channel: the filtered window"}
TEMPLATE_TEXT = {"all": "template = element-wise median of all the record's windows (unlabelled)",
                 "regular": "template = element-wise median of the record's non-premature windows "
                            "(pre/local >= 0.9; all windows if fewer than 10 qualify)"}


def _versions() -> dict:
    import torch

    import ecgnas

    return {"ecgnas_version": ecgnas.__version__, "torch_version": torch.__version__}


def build_contract(ckpt: Mapping[str, Any], *, export_format: str, params: int | None = None,
                   opset: int | None = None) -> dict:
    """The contract dict of a loaded checkpoint (:func:`ecgnas.evaluate.load_checkpoint`)."""
    from ecgnas.aami import CLASSES, DS1, DS2
    from ecgnas.evaluate import make_prep

    prep = make_prep(ckpt["prep"])
    before, after = prep.window_samples()
    in_ch, window, n_rr = int(ckpt.get("in_channels", 1)), int(ckpt["window"]), int(ckpt["n_rr"])
    if before + after != window:
        raise UserError(f"checkpoint: window {window} differs from its prep config's {before + after} samples")
    rr_cols = RR_COLUMNS[prep.rr_set]
    if len(rr_cols) != n_rr:
        raise UserError(f"checkpoint: {n_rr} RR features but rr_set={prep.rr_set!r} has {len(rr_cols)}")
    offsets = [float(v) for v in (ckpt.get("offsets") or [])]
    k = len(ckpt["members"])
    classes = list(CLASSES[:int(ckpt["n_classes"])])
    return {
        "format": CONTRACT_FORMAT, "version": CONTRACT_VERSION, **_versions(),
        "export_format": export_format, "opset": opset,
        "model": {"name": ckpt["model"], "hparams": dict(ckpt["hparams"]), "members": k,
                  "rr_standardised_inside": bool(ckpt.get("rr_norm", False)), "params": params},
        "inputs": {
            "x": {"shape": ["batch", in_ch, window], "dtype": "float32",
                  "channels": RESIDUAL_TEXT[prep.residual], "r_peak_index": before},
            "rr": {"shape": ["batch", n_rr], "dtype": "float32", "columns": [c for c, _ in rr_cols],
                   "definitions": dict(rr_cols), "normalisation": RR_NORM_TEXT[prep.rr_norm],
                   "note": "raw features as prepared; the model standardises them itself" if ckpt.get("rr_norm")
                   else "raw features as prepared"},
        },
        "outputs": {
            "scores": "[batch, classes] float32: the logits of a single model; log(mean member probability) + "
                      "offsets for an ensemble or a model with decision offsets",
            "proba": "[batch, classes] float32: softmax(scores) (offset-adjusted when offsets are non-zero)",
            "label": "[batch] int64: argmax(scores), an index into classes",
        },
        "preprocessing": {
            "lead": prep.lead, "sampling_rate_hz": prep.fs,
            "resampling": "records at another rate are resampled to sampling_rate_hz (scipy.signal.resample_poly)",
            "filter": prep.filter, "median_windows_s": list(prep.median_windows_s), "lowpass_hz": prep.lowpass_hz,
            "bandpass_hz": list(prep.bandpass_hz), "filter_order": prep.filter_order,
            "window_before_s": prep.before_s, "window_after_s": prep.after_s,
            "window_before_samples": before, "window_after_samples": after, "pad": prep.pad,
            "beat_norm": prep.beat_norm, "residual": prep.residual, "template": prep.template,
            "template_rule": TEMPLATE_TEXT[prep.template], "local_rr_beats": prep.local_rr_beats,
            "rr_norm": prep.rr_norm, "rr_set": prep.rr_set,
            "r_peaks": "beat positions are given (annotated or detected R peaks); the model does not detect beats",
            "reference_implementation": "ecgnas.data.preprocess (PrepConfig) / ecgnas prepare",
            "prep_config": dict(ckpt["prep"]), "prep_key": ckpt.get("prep_key"),
        },
        "classes": classes, "class_meaning": {c: CLASS_MEANING[c] for c in classes},
        "decision": {"rule": "label = argmax_c( log mean_k softmax(f_k(x, rr))_c + offsets_c )" if (k > 1 or offsets)
                     else "label = argmax_c f(x, rr)_c",
                     "members": k, "offsets": offsets,
                     "offsets_fitted_on": "DS1 out-of-fold predictions" if offsets else None},
        "training": {"split": ckpt["split"], "protocol": "inter-patient (de Chazal et al. 2004): trained on DS1, "
                     "tested on DS2, no patient on both sides" if ckpt["split"] == "inter"
                     else "intra-patient (beats of all records mixed; optimistic)",
                     "database": "MIT-BIH Arrhythmia Database (PhysioNet), paced records 102, 104, 107, 217 excluded",
                     "train_records": list(DS1), "test_records": list(DS2),
                     **({} if (ckpt.get("dataset") or "mitdb") == "mitdb" else {"dataset": ckpt["dataset"]}),
                     **({"extra_training_data": ckpt["extra_training_data"]} if ckpt.get("extra_training_data")
                        else {})},
    }


def onnx_metadata(contract: Mapping[str, Any]) -> dict[str, str]:
    """``metadata_props`` key -> string: the full contract (JSON) and flat keys for quick reading."""
    pre = contract.get("preprocessing", {})
    flat = {"ecgnas.fs": pre.get("sampling_rate_hz"), "ecgnas.lead": pre.get("lead"),
            "ecgnas.window_before_s": pre.get("window_before_s"), "ecgnas.window_after_s": pre.get("window_after_s"),
            "ecgnas.classes": ",".join(contract.get("classes", [])),
            "ecgnas.offsets": json.dumps(contract.get("decision", {}).get("offsets", [])),
            "ecgnas.rr_columns": ",".join(contract.get("inputs", {}).get("rr", {}).get("columns", [])),
            "ecgnas.version": contract.get("ecgnas_version")}
    out = {CONTRACT_KEY: json.dumps(contract, sort_keys=True)}
    out.update({k: str(v) for k, v in flat.items() if v is not None})
    return out


def contract_from_metadata(meta: Mapping[str, str], source: str = "metadata") -> dict:
    """The contract back from :func:`onnx_metadata`'s mapping (one-line UserError if absent or broken)."""
    text = meta.get(CONTRACT_KEY)
    if text is None:
        raise UserError(f"{source}: no {CONTRACT_KEY} entry (not exported by ecgnas export)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{source}: {CONTRACT_KEY} is not valid JSON ({e})") from None


def set_onnx_metadata(model_proto, contract: Mapping[str, Any]) -> None:
    """Replace the ``ecgnas.*`` entries of an ``onnx.ModelProto``'s metadata_props by the contract's."""
    keep = [(p.key, p.value) for p in model_proto.metadata_props if not p.key.startswith("ecgnas.")]
    del model_proto.metadata_props[:]
    for key, value in keep + sorted(onnx_metadata(contract).items()):
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value


def read_onnx_contract(path) -> dict:
    """The contract stored in an exported ONNX file (read with onnx, weights not loaded)."""
    from ecgnas.export import deps

    onnx = deps.onnx()
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # a missing or unreadable file
        raise UserError(f"{path}: cannot read ONNX model ({str(e).splitlines()[0][:120]})") from None
    return contract_from_metadata({p.key: p.value for p in proto.metadata_props}, str(path))

"""``ecgnas export``: ONNX / TorchScript export of every model family and of ensembles, the enforced
parity check (an altered export must fail), the contract in the metadata, int8 quantisation,
measured latency, the model card, and the one-line error without the optional packages.

Tiny models on the synthetic beats of ``ecg_fakes`` (the real inter-patient split of fake records),
one thread; no MIT-BIH data needed.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from ecgnas.aami import DS1  # noqa: E402
from ecgnas.cli import main as cli_main  # noqa: E402
from ecgnas.data import DataSpec, PrepConfig  # noqa: E402
from ecgnas.export import deps  # noqa: E402
from ecgnas.export.contract import read_onnx_contract  # noqa: E402
from ecgnas.export.pipeline import export_run  # noqa: E402
from ecgnas.export.graph import read_torchscript_contract  # noqa: E402
from ecgnas.export.parity import ParityError, check_parity  # noqa: E402
from ecgnas.export.runners import OnnxRunner, TorchRunner, TorchScriptRunner  # noqa: E402
from ecgnas.ensemble import EnsembleModel  # noqa: E402
from ecgnas.evaluate import (build, evaluate_indices, load_checkpoint, load_data,  # noqa: E402
                             model_from_checkpoint, save_checkpoint)
from ecgnas.train import predict_proba, seed_everything  # noqa: E402
from nascore.errors import UserError  # noqa: E402

from ecg_fakes import install_fake_loader  # noqa: E402

PREP = PrepConfig()  # window 126, residual channel (2 inputs), 5 RR ratios: what the fake loader yields
TINY = {
    "linear": {},
    "resnet": {"depth": 1, "width": 8, "kernel_size": 5},
    "kachuee": {},  # ignores its RR features: the exported graph must still take rr
    "acharya": {"use_rr": True},
    "ecg-cell": {"arch": "w16d1:|conv_3~0|+|conv_3~0|skip_connect~1|+|conv_3~0|skip_connect~1|skip_connect~2|"},
    "darts1d": {"C": 4, "layers": 3},
}


@pytest.fixture
def fake(monkeypatch):
    install_fake_loader(monkeypatch, per_record=40)
    beats, parts = load_data(DataSpec(prep=PREP), progress=False)
    return beats, parts


def _net(name, hp, beats, seed=0, rr_skip=False):
    """A model of the family with seeded weights, RR statistics set from the beats, and (for
    rr_skip) a non-zero RR path, so every part of the graph matters."""
    seed_everything(seed)
    m = build(name, 126, 5, 5, {**hp, **({"rr_skip": True} if rr_skip else {})}, in_channels=2)
    m.train()
    with torch.no_grad():
        m.rr_norm(torch.as_tensor(beats.rr))  # cumulative training statistics of the RR standardiser
        if rr_skip:
            m.rr_skip.weight.normal_(0, 0.5)
    return m.eval()


def make_run(tmp_path, beats, parts, name="linear", hp=None, members=1, offsets=None, rr_skip=False):
    """A run folder as ``ecgnas train`` leaves it: checkpoint.pt plus the DS2 evaluation files."""
    hp = TINY[name] if hp is None else hp
    nets = [_net(name, hp, beats, seed=s, rr_skip=rr_skip) for s in range(members)]
    model = nets[0] if members == 1 and offsets is None else EnsembleModel(nets, offsets).eval()
    run = tmp_path / f"{name}-run"
    run.mkdir()
    save_checkpoint(run / "checkpoint.pt", model, name=name, hparams={**hp, **({"rr_skip": True} if rr_skip else {})},
                    window=126, n_rr=5, n_classes=5, spec=DataSpec(prep=PREP), in_channels=2)
    (run / "config.json").write_text(json.dumps({"model": name, "hparams": hp, "split": "inter",
                                                 "ensemble": {"k": members, "members": "seeds", "decision": "none"}}))
    evaluate_indices(run, model, beats, parts["test"], f"{name} test")
    return run, model


def _all_beats(beats, parts):
    idx = np.sort(np.concatenate([parts["train"], parts["val"], parts["test"]]))
    return np.asarray(beats.x[idx], np.float32), np.asarray(beats.rr[idx], np.float32)


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_family_exports_with_parity_and_evaluate_probabilities(tmp_path, fake, name):
    beats, parts = fake
    run, model = make_run(tmp_path, beats, parts, name, rr_skip=(name == "linear"))
    rep = export_run(run, "onnx", latency_repeats=0, progress=False)
    par = rep["parity"]
    assert par["passed"] and par["n"] == len(beats) and par["agreement"] >= 0.999 and par["max_abs_proba"] <= 1e-4
    assert rep["parity_beats"]["what"] == "all DS1 and DS2 beats"
    # what onnxruntime gives equals what `ecgnas evaluate` computes (softmax of the model, argmax)
    te = parts["test"]
    _, proba, label = OnnxRunner(run / "export" / "model.onnx")(beats.x[te], beats.rr[te])
    ref = predict_proba(model, beats, te)
    assert np.abs(proba - ref).max() < 1e-4
    assert (label == ref.argmax(1)).mean() >= 0.999
    assert {p.name for p in (run / "export").iterdir()} >= {"model.onnx", "contract.json", "export.json",
                                                            "model_card.md"}


def test_ensemble_with_offsets_exports_the_whole_decision_path(tmp_path, fake):
    beats, parts = fake
    offsets = [0.0, 2.0, -1.0, 0.5, 0.0]
    run, model = make_run(tmp_path, beats, parts, "resnet", members=3, offsets=offsets)
    rep = export_run(run, "onnx", latency_repeats=0, progress=False)
    assert rep["members"] == 3 and rep["parity"]["passed"]
    x, rr = _all_beats(beats, parts)
    scores, proba, label = OnnxRunner(run / "export" / "model.onnx")(x, rr)
    # scores = log(mean of member softmax) + offsets, computed here independently of EnsembleModel
    members = model_from_checkpoint(load_checkpoint(run / "checkpoint.pt")).members
    with torch.no_grad():
        mean_p = np.mean([torch.softmax(m(torch.as_tensor(x), torch.as_tensor(rr)), 1).numpy() for m in members], 0)
    expect = np.log(np.clip(mean_p, 1e-9, None)) + np.asarray(offsets)
    assert np.abs(scores - expect).max() < 1e-4
    assert (label == expect.argmax(1)).mean() >= 0.999
    # the offsets move decisions: without them the labels differ on some beats
    assert (label != np.log(mean_p).argmax(1)).any()
    assert read_onnx_contract(run / "export" / "model.onnx")["decision"]["offsets"] == offsets


def test_altered_export_fails_parity_in_one_line(tmp_path, fake, monkeypatch, capsys):
    beats, parts = fake
    run, model = make_run(tmp_path, beats, parts, "linear")
    from ecgnas.export import graph

    real = graph.export_onnx

    def altered(m, path, **kw):  # exports a model whose class-S bias was raised: another model
        m2 = model_from_checkpoint(load_checkpoint(run / "checkpoint.pt"))
        with torch.no_grad():
            m2.net.fc.bias[1] += 3.0
        return real(m2, path, **kw)

    monkeypatch.setattr(graph, "export_onnx", altered)
    rc = cli_main(["export", str(run), "--latency-repeats", "0", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "parity check failed" in err and "labels agree" in err
    left = {p.name for p in (run / "export").iterdir()}
    assert not left & {"model.onnx", "contract.json", "export.json", "model_card.md"}  # nothing of a failed export


def test_small_perturbation_passes_large_one_fails(tmp_path, fake):
    beats, parts = fake
    run, model = make_run(tmp_path, beats, parts, "linear")
    export_run(run, "onnx", latency_repeats=0, progress=False)
    x, rr = _all_beats(beats, parts)
    onnx_run = OnnxRunner(run / "export" / "model.onnx")

    def shifted(delta):
        def f(a, b):
            s, p, y = onnx_run(a, b)
            s = s + delta
            return s, None, None
        return f

    from ecgnas.export.parity import compare

    ref = TorchRunner(model)(x, rr)[0]
    assert compare(ref, shifted(np.array([0, 1e-5, 0, 0, 0], np.float32))(x, rr)[0])["passed"]
    with pytest.raises(ParityError, match="probabilities differ"):
        check_parity(TorchRunner(model), shifted(np.array([0, 0.05, 0, 0, 0], np.float32)), x, rr)


def test_metadata_round_trip_onnx_torchscript_and_sidecar(tmp_path, fake):
    beats, parts = fake
    run, _ = make_run(tmp_path, beats, parts, "resnet", members=2, offsets=[0.0, 0.25, 0.0, -0.5, 0.0])
    export_run(run, "onnx", output=tmp_path / "o", latency_repeats=0, progress=False)
    export_run(run, "torchscript", output=tmp_path / "t", progress=False)
    c = read_onnx_contract(tmp_path / "o" / "model.onnx")
    assert c == json.loads((tmp_path / "o" / "contract.json").read_text())
    ts = read_torchscript_contract(tmp_path / "t" / "model.torchscript.pt")
    assert {k: v for k, v in ts.items() if k not in ("export_format", "opset")} == \
        {k: v for k, v in c.items() if k not in ("export_format", "opset")}
    pre = c["preprocessing"]
    assert (pre["sampling_rate_hz"], pre["window_before_s"], pre["window_after_s"], pre["lead"]) == (180, 0.25, 0.45,
                                                                                                      "MLII")
    assert (pre["window_before_samples"], pre["window_after_samples"], pre["residual"], pre["template"]) == \
        (45, 81, "record", "all")
    assert c["inputs"]["rr"]["columns"] == ["pre", "post", "local", "pre/local", "post/pre"]
    assert c["inputs"]["x"]["shape"] == ["batch", 2, 126] and c["classes"] == ["N", "S", "V", "F", "Q"]
    assert c["decision"]["offsets"] == [0.0, 0.25, 0.0, -0.5, 0.0] and c["decision"]["members"] == 2
    assert c["preprocessing"]["prep_key"] == load_checkpoint(run / "checkpoint.pt")["prep_key"]
    import ecgnas

    assert c["ecgnas_version"] == ecgnas.__version__
    # an independent reader: onnxruntime's view of the same metadata
    from ecgnas.export.runners import ort_session

    meta = ort_session(tmp_path / "o" / "model.onnx").get_modelmeta().custom_metadata_map
    assert meta["ecgnas.fs"] == "180" and meta["ecgnas.classes"] == "N,S,V,F,Q"
    assert json.loads(meta["ecgnas.contract"]) == c
    # TorchScript parity and outputs
    x, rr = _all_beats(beats, parts)
    assert np.array_equal(TorchScriptRunner(tmp_path / "t" / "model.torchscript.pt")(x, rr)[2],
                          OnnxRunner(tmp_path / "o" / "model.onnx")(x, rr)[2])


def test_int8_on_a_small_model_calibrates_on_ds1_only(tmp_path, fake, monkeypatch):
    beats, parts = fake
    run, _ = make_run(tmp_path, beats, parts, "resnet", hp={"depth": 1, "width": 16, "kernel_size": 5})
    from ecgnas.export import quantize

    seen = []
    real = quantize.calibration_indices

    def spy(y, pool, *a, **kw):
        idx = real(y, pool, *a, **kw)
        seen.append(idx)
        return idx

    monkeypatch.setattr(quantize, "calibration_indices", spy)
    rep = export_run(run, "onnx", int8=True, latency_repeats=3, progress=False)
    assert seen and set(beats.record[seen[0]]) <= set(DS1) and len(seen[0]) > 0
    import onnx

    q = onnx.load(str(run / "export" / "model.int8.onnx"))
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert _activation_types(q) == {onnx.TensorProto.UINT8}  # the default: uint8 activations
    assert read_onnx_contract(run / "export" / "model.int8.onnx")["quantisation"]["ops"] == ["Conv", "MatMul", "Gemm"]
    i8 = rep["int8"]
    assert i8["n_ds2"] == len(parts["test"]) and i8["int8_bytes"] > 0 and i8["float_bytes"] > 0
    assert i8["int8_bytes"] < i8["float_bytes"]  # 4-byte weights became 1-byte ones
    # int8 is close to float: probabilities within a few percent on DS2
    te = parts["test"]
    _, pf, _ = OnnxRunner(run / "export" / "model.onnx")(beats.x[te], beats.rr[te])
    _, pq, yq = OnnxRunner(run / "export" / "model.int8.onnx")(beats.x[te], beats.rr[te])
    assert 0 < np.abs(pf - pq).max() < 0.1
    assert i8["agreement_with_float_ds2"] == pytest.approx((pf.argmax(1) == yq).mean())
    assert set(rep["latency"]) == {"model.onnx", "model.int8.onnx"}
    card = (run / "export" / "model_card.md").read_text()
    assert "int8 (onnxruntime static quantisation" in card


def test_latency_grid_figures(tmp_path, fake):
    beats, parts = fake
    run, _ = make_run(tmp_path, beats, parts, "linear")
    rep = export_run(run, "onnx", latency_repeats=5, progress=False)
    rows = rep["latency"]["model.onnx"]
    assert sorted((r["threads"], r["batch"]) for r in rows) == [(1, 1), (1, 256), (2, 1), (2, 256)]
    for r in rows:
        assert 0 < r["median_ms"] <= r["p95_ms"]
        assert r["throughput_beats_per_s"] == pytest.approx(r["batch"] / r["median_ms"] * 1000)
    assert rep["machine"]["cores"] >= 1 and rep["machine"]["onnxruntime"]


def test_model_card_contents(tmp_path, fake):
    beats, parts = fake
    run, _ = make_run(tmp_path, beats, parts, "linear")
    export_run(run, "onnx", latency_repeats=2, progress=False)
    card = (run / "export" / "model_card.md").read_text()
    for text in ("Not a medical device", "## Intended use", "## Not intended use", "inter-patient (de Chazal",
                 "| S |", "AAMI EC57 gross statistics", "](../confusion.png)", "Known failure records",
                 "Parity with the checkpoint", "### Latency (onnxruntime, measured)", "model.onnx"):
        assert text in card, text
    m = json.loads((run / "metrics.json").read_text())
    assert f"Macro-F1 (N, S, V, F) {m['macro_f1']:.1f}" in card


def test_parity_falls_back_to_documented_sample_without_data(tmp_path, fake, monkeypatch):
    beats, parts = fake
    run, _ = make_run(tmp_path, beats, parts, "linear")
    from ecgnas import evaluate

    def no_data(*a, **kw):
        raise UserError("mitdb: not found")

    monkeypatch.setattr(evaluate, "load_data", no_data)
    rep = export_run(run, "onnx", latency_repeats=0, progress=False)
    assert rep["parity"]["n"] == 2048 and "fallback" in rep["parity_beats"]["what"]
    with pytest.raises(UserError, match="--int8 needs the run's prepared beats"):
        export_run(run, "onnx", int8=True, latency_repeats=0, progress=False)
    # a supplied set replaces the beats
    np.savez(tmp_path / "b.npz", x=np.asarray(beats.x[:50]), rr=np.asarray(beats.rr[:50]))
    rep = export_run(run, "onnx", parity_beats=tmp_path / "b.npz", latency_repeats=0, progress=False)
    assert rep["parity"]["n"] == 50


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_missing_package_is_one_line_with_install_hint(tmp_path, fake, monkeypatch, capsys, missing):
    beats, parts = fake
    run, _ = make_run(tmp_path, beats, parts, "linear")
    monkeypatch.setitem(sys.modules, missing, None)  # import raises ImportError
    rc = cli_main(["export", str(run), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"'{missing}' package" in err and 'pip install "ecgnas[deploy]"' in err
    assert not (run / "export").exists()
    with pytest.raises(UserError, match="not installed"):
        deps.require(missing)


def test_bad_arguments(tmp_path, fake):
    beats, parts = fake
    run, _ = make_run(tmp_path, beats, parts, "linear")
    with pytest.raises(UserError, match="--int8: needs --format onnx"):
        export_run(run, "torchscript", int8=True)
    with pytest.raises(UserError, match="run folder not found"):
        export_run(tmp_path / "nope", "onnx")


def test_card_names_the_search_method_and_cost(tmp_path, fake):
    from ecgnas.export.card import model_card

    beats, parts = fake
    run, _ = make_run(tmp_path, beats, parts, "ecg-cell")
    res = {"method": "evolution", "space": "ecg-cell", "seed": 3, "evaluations": 12, "search_cost_seconds": 321.4,
           "final_train_seconds": 55.0}
    card = model_card(run, search=res)
    assert "`evolution` on the `ecg-cell` space (seed 3), 12 candidate evaluations" in card and "321 s" in card
    assert "not recorded in this run folder" in model_card(run)
    assert "## Exported files" not in card  # no export report given: no export section


def test_model_latency_of_an_in_memory_model_orders_sizes():
    from ecgnas.export.latency import model_latency_ms

    small = build("linear", 126, 5, 5, {}, in_channels=2).eval()
    big = build("resnet", 126, 5, 5, {"depth": 4, "width": 64}, in_channels=2).eval()
    t_small = model_latency_ms(small, in_channels=2, window=126, n_rr=5, repeats=10, warmup=2)
    t_big = model_latency_ms(big, in_channels=2, window=126, n_rr=5, repeats=10, warmup=2)
    assert 0 < t_small < t_big


def _activation_types(proto) -> set:
    """Element types of the zero points of every QuantizeLinear (the quantised activations)."""
    inits = {t.name: t.data_type for t in proto.graph.initializer}
    return {inits[n.input[2]] for n in proto.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}


def test_int8_options_activation_type_and_preprocessing(tmp_path):
    import onnx

    from ecgnas.export.graph import export_onnx
    from ecgnas.export.quantize import quantize_int8
    from ecgnas.models import build_model

    torch.manual_seed(0)
    net = build_model("resnet", window=40, n_rr=4, in_channels=2, depth=1, width=8, kernel_size=5).eval()
    export_onnx(net, tmp_path / "f.onnx", in_channels=2, window=40, n_rr=4, contract={"classes": ["N", "S"]})
    rng = np.random.default_rng(0)
    x, rr = rng.standard_normal((64, 2, 40)).astype(np.float32), rng.random((64, 4)).astype(np.float32)
    quantize_int8(tmp_path / "f.onnx", tmp_path / "i8.onnx", x, rr, activations="int8", preprocess=False)
    q = onnx.load(str(tmp_path / "i8.onnx"))
    assert _activation_types(q) == {onnx.TensorProto.INT8}
    meta = read_onnx_contract(tmp_path / "i8.onnx")
    assert meta["classes"] == ["N", "S"] and "int8 activations" in meta["quantisation"]["method"]
    assert "pre_process" not in meta["quantisation"]["method"]
    quantize_int8(tmp_path / "f.onnx", tmp_path / "u8.onnx", x, rr)
    assert _activation_types(onnx.load(str(tmp_path / "u8.onnx"))) == {onnx.TensorProto.UINT8}
    assert "quant_pre_process" in read_onnx_contract(tmp_path / "u8.onnx")["quantisation"]["method"]
    with pytest.raises(UserError, match="activations='int4'"):
        quantize_int8(tmp_path / "f.onnx", tmp_path / "x.onnx", x, rr, activations="int4")

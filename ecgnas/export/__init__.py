"""Deploying a trained ECG beat classifier: ONNX / TorchScript export, parity, int8, latency, model card.

One module per job; :mod:`ecgnas.export.pipeline` ties them together for ``ecgnas export``:

==============  ==========================================================================
``deps``        the optional packages (``onnx``, ``onnxruntime``): one-line error naming the install
``contract``    the preprocessing contract (what a caller must feed the model) and its metadata form
``graph``       the exported graph (scores, probabilities, label) and the ONNX / TorchScript writers
``runners``     run an exported file (onnxruntime / TorchScript) on beats in batches
``parity``      exported vs checkpoint on the same beats: label agreement and tolerances
``quantize``    onnxruntime static int8 quantisation calibrated on DS1 beats
``latency``     measured onnxruntime latency (median, p95, throughput)
``card``        ``model_card.md`` from a run folder (and an export report)
``pipeline``    the whole path of ``ecgnas export``
==============  ==========================================================================

The package never imports ``onnx`` / ``onnxruntime`` at import time: only the functions that need
them do, through :mod:`ecgnas.export.deps`.
"""

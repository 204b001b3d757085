"""The optional deployment packages, imported on demand with a one-line error naming the install.

``onnx`` and ``onnxruntime`` are the ``deploy`` extra of the package (``pip install
"ecgnas[deploy]"``); everything else in ecgnas works without them.

>>> INSTALL_HINT
'pip install "ecgnas[deploy]" (or: pip install onnx onnxruntime)'
"""

from __future__ import annotations

import importlib

from nascore.errors import UserError

INSTALL_HINT = 'pip install "ecgnas[deploy]" (or: pip install onnx onnxruntime)'


def require(name: str, what: str = "ONNX export"):
    """Import and return module ``name`` (``"onnx"``, ``"onnxruntime"``, ``"onnxruntime.quantization"``);
    a missing package is a one-line :class:`UserError` saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        top = name.split(".")[0]
        raise UserError(f"{what} needs the '{top}' package, which is not installed: {INSTALL_HINT}") from None


def onnx():
    return require("onnx")


def onnxruntime():
    return require("onnxruntime")

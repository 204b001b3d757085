"""Reading pickle-based files without running code from them.

A pickle can name any importable callable and have the unpickler call it, so loading an
untrusted ``.pt`` or pickle file with the plain loaders runs whatever its author chose. Every
file this project reads that way goes through this module:

* :func:`torch_load` -- ``torch.load(..., weights_only=True)``: tensors, numbers, strings and
  plain containers only. A file that needs anything else (a numpy array, a class, a function) is
  refused with one :class:`~nascore.errors.UserError` line naming the file and the object that was
  refused; nothing from the file is run.
* :func:`load_restricted_pickle` -- a :class:`pickle.Unpickler` whose ``find_class`` allows only
  the named globals (:data:`NUMPY_ARRAY_GLOBALS`: the few numpy functions that rebuild an
  ``ndarray`` from its bytes). Used for the official CIFAR python batches.
* :func:`numpy_state_to_torch` / :func:`numpy_state_from_torch` -- a flat dict of numpy arrays,
  numpy scalars and plain values (e.g. the attributes of a ``cmaes.CMA`` object) as tensors and
  plain values that :func:`torch_load` accepts, and back, bit for bit (dtypes kept).

>>> import io, pickle, numpy as np
>>> d = load_restricted_pickle(io.BytesIO(pickle.dumps({b"data": np.arange(3, dtype=np.uint8)})), "batch")
>>> d[b"data"].tolist()
[0, 1, 2]
>>> class Evil:
...     def __reduce__(self):
...         return (eval, ("1 + 1",))
>>> load_restricted_pickle(io.BytesIO(pickle.dumps(Evil())), "evil.pkl")
Traceback (most recent call last):
...
nascore.errors.UserError: evil.pkl: refused to unpickle builtins.eval (only numpy arrays, numbers, strings and containers are read from this file)
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
from typing import Any, BinaryIO

import numpy as np
import torch

from nascore.errors import UserError

#: (module, name) pairs needed to rebuild numpy arrays and dtypes from a pickle (numpy 1 and 2 names,
#: pickle protocols 0-5) plus ``_codecs.encode``, which protocol 2 uses for ``bytes``.
NUMPY_ARRAY_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


def _numpy_global(module: str, name: str):
    """The object behind an allowed ``(module, name)``, taken from numpy's current location."""
    if name == "_reconstruct":
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import _reconstruct
        return _reconstruct
    if name == "_frombuffer":
        try:
            from numpy._core.numeric import _frombuffer
        except ImportError:  # numpy < 2
            from numpy.core.numeric import _frombuffer
        return _frombuffer
    if module == "_codecs":
        import _codecs
        return _codecs.encode
    return {"ndarray": np.ndarray, "dtype": np.dtype}[name]


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``allowed`` (default
    :data:`NUMPY_ARRAY_GLOBALS`); any other global is a :class:`UserError` naming ``where``."""

    def __init__(self, file: BinaryIO, where: str, allowed: frozenset = NUMPY_ARRAY_GLOBALS, **kw):
        super().__init__(file, **kw)
        self.where, self.allowed = where, allowed

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise UserError(f"{self.where}: refused to unpickle {module}.{name} (only numpy arrays, numbers, "
                            "strings and containers are read from this file)")
        return _numpy_global(module, name)


def load_restricted_pickle(file: BinaryIO, where: str, encoding: str = "bytes") -> Any:
    """Unpickle ``file`` with :class:`RestrictedUnpickler` (``encoding`` as for :func:`pickle.load`;
    ``"bytes"`` reads Python 2 pickles such as the CIFAR batches). ``where`` names the file in errors."""
    return RestrictedUnpickler(file, where, encoding=encoding).load()


_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)|Unsupported operand \S+|Trying to (?:call|load) \S+")


def refusal_reason(e: BaseException) -> str:
    """One line for an exception from ``torch.load(weights_only=True)``: the refused global when the
    file needs one (torch's own message is many lines and suggests turning the weights-only mode off), else the
    exception type and first line.

    >>> refusal_reason(pickle.UnpicklingError("Weights only load failed ... Unsupported global: GLOBAL os.system was"))
    'refused: it needs os.system, not only tensors and plain data (loading it could run code)'
    >>> refusal_reason(EOFError("Ran out of input"))
    'EOFError: Ran out of input'
    """
    text = str(e)
    if "Weights only load failed" in text or "Unsupported global" in text:
        m = _GLOBAL.search(text)
        what = (m.group(1) or m.group(0)) if m else "an object that is not a tensor or plain data"
        return f"refused: it needs {what}, not only tensors and plain data (loading it could run code)"
    first = text.strip().splitlines()[0][:120] if text.strip() else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def torch_load(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``; an unreadable or refused file is
    one :class:`UserError` line: ``"<path>: not a readable <what> (<reason>)"``. Operating-system
    errors other than a missing file (permission, I/O) are left to the caller's OS-error handling."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (expected a {what})") from None
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - torch raises many types (UnpicklingError, RuntimeError, EOFError ...)
        raise UserError(f"{path}: not a readable {what} ({refusal_reason(e)})") from None


# --- numpy state as tensors ------------------------------------------------------------------------
_PLAIN = (bool, int, float, str, type(None))


def numpy_state_to_torch(attrs: dict) -> dict:
    """``{name: value}`` with numpy arrays, numpy scalars (bool, integer, float) and plain values -> a dict that
    ``torch.load(weights_only=True)`` reads: ``{"arrays": {name: tensor}, "scalars": {name: [dtype, value]},
    "plain": {name: value}}``. Arrays are copied; any other value type is a ``TypeError`` (so a new
    attribute type is caught when saving, not when resuming).

    >>> s = numpy_state_to_torch({"a": np.eye(2), "mu": np.float64(0.5), "n": 3, "b": None})
    >>> sorted(s["arrays"]), s["scalars"], s["plain"]
    (['a'], {'mu': ['float64', 0.5]}, {'n': 3, 'b': None})
    """
    out: dict = {"arrays": {}, "scalars": {}, "plain": {}}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            out["arrays"][k] = torch.from_numpy(np.array(v, copy=True))
        elif isinstance(v, np.generic) and v.dtype.kind in "biuf":
            out["scalars"][k] = [v.dtype.name, v.item()]
        elif isinstance(v, _PLAIN):
            out["plain"][k] = v
        else:
            raise TypeError(f"cannot store {k!r} of type {type(v).__name__} as tensors/plain data")
    return out


def numpy_state_from_torch(state: dict) -> dict:
    """The inverse of :func:`numpy_state_to_torch`: numpy arrays (own copies, same dtype and shape),
    numpy scalars of the stored dtype, plain values.

    >>> d = numpy_state_from_torch(numpy_state_to_torch({"a": np.eye(2), "mu": np.float64(0.5), "n": 3}))
    >>> d["a"].dtype, type(d["mu"]).__name__, d["n"]
    (dtype('float64'), 'float64', 3)
    """
    out = dict(state.get("plain", {}))
    for k, (dtype, value) in state.get("scalars", {}).items():
        out[k] = np.dtype(dtype).type(value)
    for k, t in state.get("arrays", {}).items():
        out[k] = t.numpy().copy()
    return out


#: what the official NATS-Bench ``.pickle.pbz2`` files may hold besides numpy arrays: their
#: benchmark data are nested dicts / lists of numbers and strings (``ArchResults`` objects are
#: rebuilt from those state dicts by ``nats_bench`` after loading)
NATS_GLOBALS = frozenset({("collections", "OrderedDict")})


class _NatsUnpickler(RestrictedUnpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in NATS_GLOBALS:
            import collections

            return collections.OrderedDict
        return super().find_class(module, name)


def load_nats_pickle(file_path, ext: str = ".pbz2"):
    """A drop-in for ``nats_bench.api_utils.pickle_load`` that unpickles only plain data, numpy
    arrays and ``OrderedDict`` (:class:`RestrictedUnpickler`): a crafted NATS-Bench file is refused
    in one line instead of running code."""
    import bz2

    path = str(file_path) if os.path.isfile(str(file_path)) else str(file_path) + ext
    with bz2.BZ2File(path, "rb") as f:
        try:
            return _NatsUnpickler(f, path, encoding="ASCII").load()
        except (OSError, EOFError, pickle.UnpicklingError) as e:
            raise UserError(f"{path}: not a readable NATS-Bench file ({type(e).__name__}: {e})") from None


@contextlib.contextmanager
def restricted_nats_pickles():
    """While active, ``nats_bench`` reads its files with :func:`load_nats_pickle` (every module of
    the package that imported ``pickle_load`` by name is patched, and restored on exit)."""
    import importlib

    patched = []
    for name in ("nats_bench.api_utils", "nats_bench.api_topology", "nats_bench.api_size", "nats_bench"):
        try:
            mod = importlib.import_module(name)
        except ImportError:  # pragma: no cover - nats_bench is a dependency
            continue
        if hasattr(mod, "pickle_load"):
            patched.append((mod, mod.pickle_load))
            mod.pickle_load = load_nats_pickle
    try:
        yield
    finally:
        for mod, old in patched:
            mod.pickle_load = old

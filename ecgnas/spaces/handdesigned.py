"""The hand-designed family as a search space: the 1D ResNet + RR and its training recipe.

The random-search baseline that NAS results are compared to ("a manually designed model obtained
via random search", as DCL-ENAS compares) samples this space through exactly the same run loop,
evaluator, budget, fidelity and final retraining as the NAS methods (:mod:`ecgnas.search`), so
the only difference between the two sides of the comparison is the space and the strategy.

A configuration fixes nine choices (defaults below; every one is a constructor argument):

=============  ===============================================  =================================
field          choices                                          what it sets
=============  ===============================================  =================================
depth          2, 3, 4, 5, 6                                    residual blocks (:mod:`ecgnas.models.resnet_rr`)
width          8, 16, 24, 32                                    base channels
kernel_size    3, 5, 7, 9, 11, 15                               convolution kernel
dropout        0.0, 0.1, 0.2, 0.3, 0.4, 0.5                     classifier dropout
use_rr         1, 0                                             RR features on / off
lr             3e-4, 6e-4, 1e-3, 2e-3, 3e-3                     AdamW learning rate
weight_decay   1e-5, 1e-4, 1e-3, 1e-2, 1e-1                     AdamW weight decay
window         0.25:0.45, 0.2:0.3, 0.3:0.6                      seconds before:after the R peak
imbalance      balanced, sqrt_balanced, inverse, sqrt_inverse   class-balanced sampler (1/n_c or
                                                                1/sqrt n_c), or shuffled batches
                                                                with that loss weighting
=============  ===============================================  =================================

5 x 4 x 6 x 6 x 2 x 5 x 5 x 3 x 4 = 432,000 configurations. The ranges keep every trial
trainable in minutes on a CPU.

Graph encoding: a configuration is a chain ``input -> depth=4 -> width=32 -> ... -> imbalance=...
-> output`` whose node labels are the chosen values (vocabulary: every ``field=value``), so the
strategies that need a graph (DCL-ENAS, arch2vec) run here unchanged; random search and
regularised evolution only use :meth:`sample` / :meth:`mutate`.

Canonical string: the fields in the table's order, ``field=value`` joined by commas, e.g.
``depth=4,width=32,kernel_size=7,dropout=0.2,use_rr=1,lr=0.002,weight_decay=0.01,window=0.25:0.45,imbalance=balanced``.

:meth:`candidate` turns a configuration into what the ECG evaluator trains: model ``resnet`` with
its hyperparameters, the training overrides and the window (a :class:`~ecgnas.data.PrepConfig`
override).

>>> import numpy as np
>>> s = HandDesignedSpace()
>>> a = s.sample(np.random.default_rng(0))
>>> s.from_string(s.to_string(a)) == a, s.size
(True, 432000)
>>> c = s.candidate(s.from_string(
...     "depth=4,width=32,kernel_size=7,dropout=0.2,use_rr=1,lr=0.002,weight_decay=0.01,window=0.25:0.45,imbalance=inverse"))
>>> c["model"], c["hparams"]["depth"], c["train"], c["prep"]
('resnet', 4, {'lr': 0.002, 'weight_decay': 0.01, 'sampler': 'shuffle', 'class_weight': 'inverse'}, {'before_s': 0.25, 'after_s': 0.45})
"""

from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import numpy as np

from nascore.arch import Arch
from nascore.errors import UserError
from nascore.spaces.base import SearchSpace

#: field -> default choices, in string order
DEFAULT_CHOICES: dict[str, tuple[str, ...]] = {
    "depth": ("2", "3", "4", "5", "6"),
    "width": ("8", "16", "24", "32"),
    "kernel_size": ("3", "5", "7", "9", "11", "15"),
    "dropout": ("0.0", "0.1", "0.2", "0.3", "0.4", "0.5"),
    "use_rr": ("1", "0"),
    "lr": ("0.0003", "0.0006", "0.001", "0.002", "0.003"),
    "weight_decay": ("1e-05", "0.0001", "0.001", "0.01", "0.1"),
    "window": ("0.25:0.45", "0.2:0.3", "0.3:0.6"),
    "imbalance": ("balanced", "sqrt_balanced", "inverse", "sqrt_inverse"),
}
FIELDS: tuple[str, ...] = tuple(DEFAULT_CHOICES)
_IMBALANCE = {"balanced": ("balanced", "none"), "sqrt_balanced": ("sqrt_balanced", "none"),
              "inverse": ("shuffle", "inverse"), "sqrt_inverse": ("shuffle", "sqrt_inverse")}


def _canon(field: str, value) -> str:
    """One choice as its canonical text (numbers as Python prints them)."""
    if field in ("depth", "width", "kernel_size"):
        return str(int(value))
    if field == "use_rr":
        return "1" if value in (True, 1, "1", "true", "True") else "0"
    if field in ("dropout", "lr", "weight_decay"):
        return repr(float(value))
    if field == "window":
        if isinstance(value, str):
            value = value.replace(",", ":").split(":")
        b, a = (float(v) for v in value)
        return f"{b!r}:{a!r}"
    return str(value)


class HandDesignedSpace(SearchSpace):
    """The 1D ResNet + RR family and its training recipe (see the module docstring)."""

    name = "resnet-family"

    def __init__(self, **choices: Sequence):
        unknown = sorted(set(choices) - set(FIELDS))
        if unknown:
            raise UserError(f"resnet-family: unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
        self.choices: dict[str, tuple[str, ...]] = {}
        for f in FIELDS:
            vals = choices.get(f, DEFAULT_CHOICES[f])
            try:
                canon = tuple(dict.fromkeys(_canon(f, v) for v in vals))
            except (TypeError, ValueError):
                raise UserError(f"resnet-family: cannot read the {f} choices {list(vals)!r}") from None
            if not canon:
                raise UserError(f"resnet-family: field {f} needs at least one choice")
            if f == "imbalance" and any(v not in _IMBALANCE for v in canon):
                raise UserError(f"resnet-family: imbalance choices must be among {', '.join(_IMBALANCE)}")
            self.choices[f] = canon
        self.node_labels = ("input",) + tuple(f"{f}={v}" for f in FIELDS for v in self.choices[f]) + ("output",)
        self.max_nodes = len(FIELDS) + 2
        self._chain = np.eye(self.max_nodes, k=1, dtype=np.int64)

    # --- construction -----------------------------------------------------------------------
    def from_values(self, values: Sequence[str]) -> Arch:
        values = tuple(values)
        if len(values) != len(FIELDS):
            raise UserError(f"resnet-family needs {len(FIELDS)} values ({', '.join(FIELDS)}); got {len(values)}")
        for f, v in zip(FIELDS, values):
            if v not in self.choices[f]:
                raise UserError(f"resnet-family: {f}={v} is not a choice (choose from {', '.join(self.choices[f])})")
        return Arch.from_numpy(self._chain, ("input",) + tuple(f"{f}={v}" for f, v in zip(FIELDS, values)) + ("output",))

    def values(self, arch: Arch) -> dict[str, str]:
        self.validate(arch)
        return {f: lab.split("=", 1)[1] for f, lab in zip(FIELDS, arch.ops[1:-1])}

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.from_values([c[int(rng.integers(len(c)))] for c in self.choices.values()])

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        vals = list(self.values(arch).values())
        fields = [k for k, f in enumerate(FIELDS) if len(self.choices[f]) > 1]
        if not fields:
            raise UserError("resnet-family: every field has one choice, nothing to mutate")
        k = fields[int(rng.integers(len(fields)))]
        others = [v for v in self.choices[FIELDS[k]] if v != vals[k]]
        vals[k] = others[int(rng.integers(len(others)))]
        return self.from_values(vals)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        va, vb = list(self.values(a).values()), list(self.values(b).values())
        pick = rng.integers(0, 2, size=len(FIELDS))
        return self.from_values([va[k] if pick[k] == 0 else vb[k] for k in range(len(FIELDS))])

    # --- identity -----------------------------------------------------------------------------
    def is_valid(self, arch: Arch) -> bool:
        if arch.n_nodes != self.max_nodes or arch.ops[0] != "input" or arch.ops[-1] != "output":
            return False
        if not np.array_equal(arch.adjacency, self._chain):
            return False
        for f, lab in zip(FIELDS, arch.ops[1:-1]):
            name, _, v = lab.partition("=")
            if name != f or v not in self.choices[f]:
                return False
        return True

    def to_string(self, arch: Arch) -> str:
        return ",".join(f"{f}={v}" for f, v in self.values(arch).items())

    def from_string(self, text: str) -> Arch:
        parts = [p.strip() for p in str(text).strip().split(",")]
        got = {}
        for p in parts:
            f, sep, v = p.partition("=")
            if not sep or f not in FIELDS:
                raise UserError(f"malformed resnet-family string {text!r}: {p!r} is not field=value "
                                f"(fields: {', '.join(FIELDS)})")
            if f in got:
                raise UserError(f"malformed resnet-family string {text!r}: {f} given twice")
            try:
                got[f] = _canon(f, v)
            except (TypeError, ValueError):
                raise UserError(f"malformed resnet-family string {text!r}: cannot read {p!r}") from None
        missing = [f for f in FIELDS if f not in got]
        if missing:
            raise UserError(f"malformed resnet-family string {text!r}: missing {', '.join(missing)}")
        return self.from_values([got[f] for f in FIELDS])

    # --- finite space -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return int(np.prod([len(c) for c in self.choices.values()]))

    def enumerate(self) -> Iterator[Arch]:
        for vals in itertools.product(*self.choices.values()):
            yield self.from_values(vals)

    # --- what the evaluator trains ------------------------------------------------------------
    def candidate(self, arch: Arch) -> dict:
        """``{"model", "hparams", "train", "prep"}``: model name + hyperparameters for
        :func:`ecgnas.models.build_model`, :class:`~ecgnas.train.TrainConfig` and
        :class:`~ecgnas.data.PrepConfig` overrides."""
        v = self.values(arch)
        sampler, weight = _IMBALANCE[v["imbalance"]]
        before, after = (float(t) for t in v["window"].split(":"))
        return {"model": "resnet",
                "hparams": {"depth": int(v["depth"]), "width": int(v["width"]), "kernel_size": int(v["kernel_size"]),
                            "dropout": float(v["dropout"]), "use_rr": v["use_rr"] == "1"},
                "train": {"lr": float(v["lr"]), "weight_decay": float(v["weight_decay"]), "sampler": sampler,
                          "class_weight": weight},
                "prep": {"before_s": before, "after_s": after}}

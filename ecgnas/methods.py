"""The search methods of ``ecgnas search``: one registry entry each, the one place that knows them.

A :class:`SearchMethod` says everything :func:`ecgnas.search.ecg_search` and the command line
need to know about a method:

* ``kind`` -- ``"asktell"``: a :mod:`nascore` ask/tell strategy (``strategy``, a name of
  :data:`nascore.strategies.STRATEGIES`) proposes candidates that the
  :class:`~ecgnas.evaluator.ECGEvaluator` trains and scores, through the run loop of
  :mod:`nascore.run` (and, with ``multi_fidelity``, :mod:`nascore.multifidelity`);
  ``"supernet"``: a weight-sharing supernet searched in one training (``supernet`` names the
  :func:`ecgnas.supernet.egnas_ecg_search` method, e.g. ``"egnas"``);
* ``spaces`` -- the spaces it can search, the first being its default;
* ``inputs`` -- strategy parameters the search supplies when the user leaves them unset, each a
  name of :data:`INPUTS` (``"budget"``: the run's evaluation budget; ``"arch2vec_model"``: the
  pretrained arch2vec model of the space, pretrained into the user cache on first use).

Adding an ask/tell method is one strategy file plus one line here,
``register_method(SearchMethod("name", strategy="package.module:Class"))``: a ``module:Class``
strategy is registered with :mod:`nascore.strategies` under the method's name (a strategy
already there, such as ``"evolution"``, is named as it is). Nothing in :mod:`ecgnas.search` or
:mod:`ecgnas.commands.search` changes.

>>> METHODS["eg-nas"].kind, METHODS["eg-nas"].default_space, METHODS["dcl-enas"].inputs
('supernet', 'darts1d', {'budget': 'budget'})
>>> get_method("nsga")
Traceback (most recent call last):
...
nascore.errors.UserError: --method: unknown method 'nsga' (choose from: dcl-enas, eg-nas, arch2vec-bo, arch2vec-rl, evolution, random)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from nascore.errors import UserError

#: the graph spaces the ask/tell methods search (the supernet method searches ``darts1d`` cells)
SAMPLE_SPACES = ("ecg-cell", "resnet-family")
KINDS = ("asktell", "supernet")
#: arch2vec pretraining on a graph space of the ECG search when no ``model`` is given: the
#: published architecture and loss, 10 epochs, on a seeded random sample of this many
#: architectures (the embeddings then cover the whole space); all 470,596 ecg-cell graphs would
#: take about an hour of CPU per epoch here
ARCH2VEC_PRETRAIN_ARCHS = 50_000


@dataclass(frozen=True)
class SearchMethod:
    """One search method (see the module docstring)."""

    name: str
    kind: str = "asktell"
    strategy: str | None = None
    spaces: tuple[str, ...] = SAMPLE_SPACES
    inputs: Mapping[str, str] = field(default_factory=dict)
    supernet: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"search method {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "asktell" and not self.strategy:
            raise UserError(f"search method {self.name!r}: an ask/tell method needs a strategy name")
        if self.kind == "supernet" and not self.supernet:
            raise UserError(f"search method {self.name!r}: a supernet method needs its supernet search name")
        if not self.spaces:
            raise UserError(f"search method {self.name!r}: needs at least one space")
        bad = sorted(set(self.inputs.values()) - set(INPUTS))
        if bad:
            raise UserError(f"search method {self.name!r}: unknown input {bad[0]!r} (choose from: {', '.join(INPUTS)})")

    @property
    def default_space(self) -> str:
        return self.spaces[0]

    def check_space(self, space: str) -> None:
        """Refuse (UserError) a space this method cannot search, naming the one(s) it can."""
        if space in self.spaces:
            return
        if self.kind == "supernet":
            raise UserError(f"--method {self.name} searches 1D DARTS cells with a supernet (--space "
                            f"{self.default_space}), not {space!r}")
        owners = [m.name for m in METHODS.values() if space in m.spaces]
        if owners:
            raise UserError(f"--space {space} is searched by --method {' / '.join(owners)} only; {self.name} needs "
                            f"a graph space ({', '.join(self.spaces)})")
        raise UserError(f"--space: {space!r} is not a space the sample-based methods search "
                        f"(choose from: {', '.join(self.spaces)})")

    def check_params(self, params: Mapping[str, Any] | None) -> dict:
        """``params`` checked and converted (:func:`nascore.strategies.strategy_params`: known
        names, types, ranges; ``20.0`` -> ``20``); a supernet method takes none (its settings are
        the ``supernet`` options)."""
        if params is not None and not isinstance(params, Mapping):
            raise UserError(f"strategy parameters: expected a mapping of name to value, got {type(params).__name__}")
        if self.kind == "supernet":
            if params:
                raise UserError(f"--param {next(iter(params))}: {self.name} takes no strategy parameters "
                                "(its settings are --supernet-epochs / --supernet-warmup)")
            return {}
        from nascore.strategies import strategy_params

        return strategy_params(self.strategy, params)

    def build_strategy(self, space, *, seed: int, params: Mapping[str, Any], budget: int, progress: bool = True):
        """The ask/tell strategy of this method on ``space``, its :attr:`inputs` supplied where
        ``params`` leaves them unset (built -- and so checked -- before the run folder is written)."""
        from nascore.strategies import get_strategy

        p = dict(params)
        for name, source in self.inputs.items():
            if name not in p:
                p[name] = INPUTS[source](space=space, budget=budget, progress=progress)
        return get_strategy(self.strategy, space, seed=int(seed), **p)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def arch2vec_model(space, progress: bool = True):
    """The arch2vec model of ``space`` in the user cache, pretrained there on first use (on
    :data:`ARCH2VEC_PRETRAIN_ARCHS` sampled architectures; the embeddings cover every one).

    Several searches may start at once with no model yet: the first pretrains under the model
    folder's lock, the others wait for it (:func:`nascore.lock.folder_lock` with ``wait``) and
    then use its model, instead of pretraining into the same folder at the same time."""
    from nascore.arch2vec.pretrain import default_model_dir, pretrain
    from nascore.lock import folder_lock

    path = default_model_dir(space.name) / "model.pt"
    if path.exists():
        return path
    with folder_lock(path.parent, what="arch2vec model folder", wait=True,
                     on_wait=lambda m: _say(True, f"{m}; waiting for its model")):
        if not path.exists():  # not pretrained meanwhile by the process we waited for
            _say(progress, f"arch2vec: no pretrained model for {space.name} yet; pretraining one on "
                           f"{ARCH2VEC_PRETRAIN_ARCHS:,} of its architectures into {path.parent} (once)")
            pretrain(space, output=path.parent, max_archs=ARCH2VEC_PRETRAIN_ARCHS, progress=progress)
    return path


#: what a method may ask the search to supply (:attr:`SearchMethod.inputs`)
INPUTS: dict[str, Callable[..., Any]] = {
    "budget": lambda *, space, budget, progress: int(budget),
    "arch2vec_model": lambda *, space, budget, progress: str(arch2vec_model(getattr(space, "inner", space), progress)),
}

#: method name -> entry (the order is the order ``--help`` lists them in)
METHODS: dict[str, SearchMethod] = {}


def register_method(method: SearchMethod) -> SearchMethod:
    """Add (or replace) a search method; returns it (with a ``module:Class`` strategy registered
    in :data:`nascore.strategies.STRATEGIES` under the method's name)."""
    if method.kind == "asktell" and ":" in method.strategy:
        from dataclasses import replace

        from nascore.strategies import register_strategy

        register_strategy(method.name, method.strategy)
        method = replace(method, strategy=method.name)
    METHODS[method.name] = method
    return method


def get_method(name: str) -> SearchMethod:
    if name not in METHODS:
        raise UserError(f"--method: unknown method {name!r} (choose from: {', '.join(METHODS)})")
    return METHODS[name]


def all_spaces() -> list[str]:
    """Every space some method searches (the ``--space`` choices), in registry order."""
    return list(dict.fromkeys(s for m in METHODS.values() for s in m.spaces))


register_method(SearchMethod("dcl-enas", strategy="dcl-enas", inputs={"budget": "budget"}))
register_method(SearchMethod("eg-nas", kind="supernet", spaces=("darts1d",), supernet="egnas"))
register_method(SearchMethod("arch2vec-bo", strategy="arch2vec-bo", inputs={"model": "arch2vec_model"}))
register_method(SearchMethod("arch2vec-rl", strategy="arch2vec-rl", inputs={"model": "arch2vec_model"}))
register_method(SearchMethod("evolution", strategy="evolution"))
register_method(SearchMethod("random", strategy="random"))

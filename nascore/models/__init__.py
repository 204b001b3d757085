"""Trainable networks for the search spaces (imported on demand: they need torch).

A space's :meth:`~nascore.spaces.base.SearchSpace.build_model` calls the builder here, e.g.
``NB201Space().build_model(arch)`` returns :func:`build_nb201_net` of that cell.

>>> from nascore.models import build_nb201_net
>>> net = build_nb201_net("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", C=4, N=1)
>>> net.classifier.out_features
10
"""

from nascore.models.nb201net import NB201Cell, NB201Net, build_nb201_net

__all__ = ["NB201Cell", "NB201Net", "build_nb201_net"]

"""Random search (Li & Talwalkar, 2019): uniform samples, never one already seen.

>>> from nascore.spaces import get_space
>>> s = RandomSearch(get_space("nb201"), seed=0)
>>> len({str(a) for a in s.ask(50)})
50
"""

from __future__ import annotations

from nascore.strategies.base import Strategy


class RandomSearch(Strategy):
    name = "random"

    def ask(self, n: int = 1):
        return [self._sample_unseen() for _ in range(n)]

    def tell(self, archs, results) -> None:
        self._check_told(archs, results)

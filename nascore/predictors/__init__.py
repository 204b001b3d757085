"""Neural performance predictors: fit on labelled architectures, predict (rank) unseen ones.

* :class:`~nascore.predictors.dcl.DCLPredictor` -- DCL-ENAS's two-stage contrastive GIN predictor.
* :class:`~nascore.predictors.baselines.GINRegressor`, :class:`~nascore.predictors.baselines.PathMLPRegressor`
  -- MSE-trained baselines.

Interface shared by all: ``fit(archs, y) -> list of losses``; ``predict(archs) -> np.ndarray``
(higher = better; only the order is meaningful for the ranking predictor).
"""

from nascore.predictors.baselines import GINRegressor, PathMLPRegressor
from nascore.predictors.dcl import DCLConfig, DCLPredictor

__all__ = ["DCLConfig", "DCLPredictor", "GINRegressor", "PathMLPRegressor"]

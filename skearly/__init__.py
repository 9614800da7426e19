"""skearly: early-exit transformer text classification as a scikit-learn estimator.

The main entry point is :class:`EarlyExitTextClassifier`. The package is laid
out as the method is:

* :mod:`skearly.estimator` -- the scikit-learn face (fit / predict / set_params);
* :mod:`skearly.network` -- the multi-exit torch network (encoder + exit heads);
* :mod:`skearly.training` and :mod:`skearly.objectives` -- joint fine-tuning under one
  training objective (the paper's summed loss by default);
* :mod:`skearly.calibration` -- temperature scaling and calibration error;
* :mod:`skearly.inference` -- the inference engine: tokenized chunks, a batch scheduler
  (:mod:`skearly.schedulers`), the layer runner of an inference backend
  (:mod:`skearly.backends`, :mod:`skearly.layer_pass`) and the exit rule
  (:mod:`skearly.exit_criteria`);
* :mod:`skearly.adapters` -- one small adapter per encoder family, keyed on ``model_type``;
* :mod:`skearly.model_selection`, :mod:`skearly.spark`, :mod:`skearly.mlflow` -- threshold
  search by cross-validation, Spark batch prediction, MLflow models;
* :mod:`skearly.exit_curve` -- every threshold's speed/accuracy from one pass
  (``exit_curve``, ``target_speedup``, :class:`ExitCurveDisplay`);
* :mod:`skearly.encoders` and :mod:`skearly.datasets` -- the real encoders and data
  that install offline (:mod:`skearly.assets` installs them, :mod:`skearly.cache` keeps
  what is built once from the installed packages).
"""

from .estimator import EarlyExitTextClassifier
from .exit_criteria import Entropy, ExitCriterion, MaxProbability, Patience
from .exit_curve import ExitCurveDisplay

__version__ = "0.1.0"

__all__ = [
    "EarlyExitTextClassifier",
    "ExitCriterion",
    "MaxProbability",
    "Entropy",
    "Patience",
    "ExitCurveDisplay",
    "__version__",
]

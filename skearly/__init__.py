"""skearly: early-exit transformer text classification as a scikit-learn estimator.

The main entry point is :class:`EarlyExitTextClassifier`. The package is laid
out as the method is, top (what users import) to bottom:

* :mod:`skearly.estimator` -- the scikit-learn face (fit / predict / set_params / save / load);
  :mod:`skearly.model_selection` (threshold search by cross-validation),
  :mod:`skearly.exit_curve` (every threshold from one pass, budget mode, :class:`ExitCurveDisplay`),
  :mod:`skearly.persistence` (the pickle-free save format);
* :mod:`skearly.training` -- the fit side: joint fine-tuning under a training objective
  (:mod:`skearly.objectives`), then temperature calibration (:mod:`skearly.calibration`);
* :mod:`skearly.inference` -- the predict side: the inference engine (tokenized chunks, a batch
  scheduler, the layer runner of an inference backend) and the exit rule (:mod:`skearly.exit_criteria`);
* :mod:`skearly.network` -- the multi-exit torch network, with one adapter per encoder family
  (:mod:`skearly.network.adapters`, keyed on ``model_type``);
* :mod:`skearly.encoders` and :mod:`skearly.datasets` -- the real encoders and data that install
  offline (``python -m skearly.assets install`` installs them);
* :mod:`skearly.integrations` -- Spark batch prediction and MLflow models (optional extras).
"""

from skearly._version import __version__
from skearly.estimator import EarlyExitTextClassifier
from skearly.exit_criteria import Entropy, ExitCriterion, MaxProbability, Patience
from skearly.exit_curve import ExitCurveDisplay

__all__ = [
    "EarlyExitTextClassifier",
    "ExitCriterion",
    "MaxProbability",
    "Entropy",
    "Patience",
    "ExitCurveDisplay",
    "__version__",
]

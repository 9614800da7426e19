"""MLflow pyfunc that returns exit layers and probabilities with the labels (``pip install 'skearly[mlflow]'``).

A fitted :class:`~skearly.EarlyExitTextClassifier` is an ordinary scikit-learn
estimator for MLflow: ``mlflow.sklearn.log_model(clf, name="model")`` logs it,
and ``mlflow.pyfunc.load_model(uri).predict(texts)`` returns the labels, like
``clf.predict``. A pyfunc's ``predict`` has one output, so this module adds
:class:`EarlyExitPyfunc`, whose output is a table with the label, the exit
layer and the probability of every class of each row, logged with
:func:`log_model`. It stores the model as the pickle-free folder of
:meth:`~skearly.EarlyExitTextClassifier.save` (an MLflow artifact), not as a
pickle. Importing this module without MLflow raises an ``ImportError`` naming
the extra to install.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from skearly._utils.optional import import_optional
from skearly.estimator import EarlyExitTextClassifier
from skearly.integrations._serving import predict_all

_pyfunc = import_optional("mlflow.pyfunc", extra="mlflow", purpose="skearly.integrations.mlflow")

__all__ = ["ARTIFACT", "EarlyExitPyfunc", "log_model"]

#: Name of the artifact holding the :meth:`~skearly.EarlyExitTextClassifier.save` folder.
ARTIFACT = "skearly_model"


class EarlyExitPyfunc(_pyfunc.PythonModel):
    """MLflow pyfunc model: labels, exit layers and class probabilities of an early-exit classifier.

    Log it with :func:`log_model`; ``mlflow.pyfunc.load_model(uri)`` then
    reads the saved estimator from the ``skearly_model`` artifact with
    :meth:`~skearly.EarlyExitTextClassifier.load` (no pickle), and
    ``predict`` returns a :class:`pandas.DataFrame`.
    """

    def load_context(self, context: Any) -> None:
        """Load the estimator from the ``skearly_model`` artifact (called by MLflow on load).

        Parameters
        ----------
        context : mlflow.pyfunc.PythonModelContext
            Gives the local path of the artifact.
        """
        self.model_ = EarlyExitTextClassifier.load(context.artifacts[ARTIFACT])

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would validate inputs by them
        """Label, exit layer and class probabilities of each row (called by the loaded pyfunc's ``predict``).

        Parameters
        ----------
        context : mlflow.pyfunc.PythonModelContext
            Unused.
        model_input : pandas.DataFrame, Series, list or array
            Texts: a Series or list, a 1-column DataFrame, or a 2-column
            DataFrame of text pairs.
        params : dict or None, default=None
            Unused (no inference parameters).

        Returns
        -------
        pandas.DataFrame
            Columns ``prediction``, ``exit_layer`` (1-based encoder layer), and
            ``proba_<class>`` for each class of ``classes_``, in order.
        """
        labels, proba, layers = predict_all(self.model_, model_input)
        frame = pd.DataFrame({"prediction": labels, "exit_layer": layers})
        for j, label in enumerate(self.model_.classes_):
            frame[f"proba_{label}"] = proba[:, j]
        return frame


def log_model(estimator: EarlyExitTextClassifier, name: str = "model", **kwargs: Any) -> Any:
    """Log a fitted estimator as an :class:`EarlyExitPyfunc` model to the active MLflow run.

    Parameters
    ----------
    estimator : EarlyExitTextClassifier
        A fitted estimator; it is written with
        :meth:`~skearly.EarlyExitTextClassifier.save` into a temporary folder
        that MLflow copies into the model's artifacts.
    name : str, default="model"
        The model's name in the run.
    **kwargs
        Passed to :func:`mlflow.pyfunc.log_model`, e.g. ``pip_requirements``,
        ``signature``, ``input_example``, ``registered_model_name``.

    Returns
    -------
    mlflow.models.model.ModelInfo
        Its ``model_uri`` loads with ``mlflow.pyfunc.load_model``.
    """
    with tempfile.TemporaryDirectory(prefix="skearly-mlflow-") as tmp:
        folder = estimator.save(Path(tmp) / ARTIFACT)
        return _pyfunc.log_model(name=name, python_model=EarlyExitPyfunc(), artifacts={ARTIFACT: str(folder)}, **kwargs)

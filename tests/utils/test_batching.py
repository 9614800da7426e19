import numpy as np
import pytest

from skearly._utils.batching import Encoded, length_grouped_batches, n_batches, shuffled_batches, tokenize


def _encoded(lengths):
    return Encoded([[5] * int(n) for n in lengths], None, 0)


@pytest.fixture
def mixed():
    """A realistic length mix: mostly short rows, a long tail."""
    rng = np.random.default_rng(1)
    return _encoded(np.clip(rng.lognormal(3.3, 0.5, size=1000), 3, 128).astype(int))


def _rows(batches):
    return [b.rows for b in batches]


def test_length_grouped_batches_visit_every_row_once_in_as_many_batches(mixed):
    batches = _rows(length_grouped_batches(mixed, 32, np.random.default_rng(0), mega_batches=5))
    assert len(batches) == n_batches(len(mixed), 32)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(len(mixed)))


def test_length_grouped_batches_cut_padding_far_below_random_batches(mixed):
    def padded(batches):
        return sum(b.input_ids.numel() for b in batches) / mixed.lengths().sum()

    random = padded(list(shuffled_batches(mixed, 32, np.random.default_rng(0))))
    grouped = padded(list(length_grouped_batches(mixed, 32, np.random.default_rng(0))))
    assert random > 1.4 and grouped < 1.1


def test_length_grouped_batches_are_reproducible_and_random(mixed):
    def order(seed):
        return np.concatenate(_rows(length_grouped_batches(mixed, 32, np.random.default_rng(seed))))

    assert np.array_equal(order(3), order(3))
    assert not np.array_equal(order(3), order(4))
    # the batch order is shuffled, not longest first
    widths = [b.input_ids.shape[1] for b in length_grouped_batches(mixed, 32, np.random.default_rng(3))]
    assert widths != sorted(widths, reverse=True)


def test_a_batch_holds_similar_lengths_within_its_mega_batch(mixed):
    """With one mega-batch, every batch's lengths lie in a band no other batch overlaps."""
    batches = _rows(length_grouped_batches(mixed, 32, np.random.default_rng(0), mega_batches=100))
    lengths = mixed.lengths()
    bands = sorted((lengths[rows].min(), lengths[rows].max()) for rows in batches)
    assert all(high <= next_low for (_, high), (next_low, _) in zip(bands, bands[1:]))


# --------------------------------------------------------------- tokenizing long texts from a prefix
def _trained(model: str):
    """A small fast tokenizer of another family (byte-level BPE, SentencePiece-style unigram), trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    words = [f"word{i % 97} tok{i % 13}en, é{i % 7}! 漢字{i % 5}" for i in range(240)]
    corpus = [" ".join(words[j : j + 40]) for j in range(200)]
    if model == "bpe":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>", "<unk>"])
    else:
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        specials = ["<pad>", "<s>", "</s>", "<unk>"]
        trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="<unk>")
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def _long_texts() -> list[str]:
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma,", "delta.", "épsilon", "zeta!", "ETA", "théta", "漢字", "🙂", "x" * 40]
    texts = [" ".join(rng.choice(words, size=rng.integers(50, 900))) for _ in range(30)]
    texts += [
        "x" * 5000,  # no space at all
        "word " * 2000,  # ends in a space
        " " * 3000 + "late words here " * 10,  # leading spaces
        "a\nb\tc\r\nd " * 800,  # words split by newlines and tabs too
        ("antidisestablishmentarianism" * 30 + " ") * 20,  # very long words
        "short text",
        "",
    ]
    return texts


@pytest.fixture(scope="module")
def tokenizers_of_every_kind(tiny_encoder):
    from transformers import AutoTokenizer

    return {
        "wordpiece": AutoTokenizer.from_pretrained(tiny_encoder, local_files_only=True),
        "bpe": _trained("bpe"),
        "unigram": _trained("unigram"),
    }


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "unigram"])
@pytest.mark.parametrize("max_length", [8, 33, 128])
def test_long_texts_tokenize_from_a_prefix_exactly_as_whole(tokenizers_of_every_kind, kind, max_length, monkeypatch):
    from skearly._utils import batching

    tokenizer = tokenizers_of_every_kind[kind]
    texts = _long_texts()
    outcomes = []
    check = batching._prefix_is_exact
    monkeypatch.setattr(batching, "_prefix_is_exact", lambda *a: outcomes.append(check(*a)) or outcomes[-1])
    encoded = batching.tokenize(tokenizer, texts, None, max_length)
    assert encoded.input_ids == tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    assert sum(outcomes) >= 30  # the prefix served the ordinary long texts (the odd ones may be redone whole)


def test_bbc_articles_tokenize_from_a_prefix_exactly_as_whole(tokenizers_of_every_kind):
    from skearly.datasets import load_bbc_news_frame

    try:
        texts = list(load_bbc_news_frame()["text"][:300])
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(f"BBC News not installed: {exc}")
    tokenizer = tokenizers_of_every_kind["wordpiece"]
    for max_length in (64, 128, 512):
        expected = tokenizer(texts, truncation=True, max_length=max_length)
        encoded = tokenize(tokenizer, texts, None, max_length)
        assert encoded.input_ids == expected["input_ids"]
        assert encoded.token_type_ids == expected["token_type_ids"]

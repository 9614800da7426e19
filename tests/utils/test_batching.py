import numpy as np
import pytest

from skearly._utils.batching import Encoded, length_grouped_batches, n_batches, shuffled_batches


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

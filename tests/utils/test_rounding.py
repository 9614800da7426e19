"""round_up: the one rounding of sizes to a multiple (widths, buckets, windows)."""

import numpy as np

from skearly._utils.rounding import round_up


def test_round_up_ints():
    assert [round_up(n, 8) for n in (1, 7, 8, 9, 16, 17)] == [8, 8, 8, 16, 16, 24]
    assert round_up(5, 1) == 5 and round_up(0, 4) == 0
    assert isinstance(round_up(np.int64(3), 4), np.integer | int)


def test_round_up_arrays_entrywise():
    lengths = np.array([1, 8, 9, 64, 65])
    np.testing.assert_array_equal(round_up(lengths, 8), [8, 8, 16, 64, 72])
    assert round_up(lengths, 8).dtype == lengths.dtype

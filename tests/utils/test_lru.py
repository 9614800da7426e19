from skearly._utils.lru import BoundedLRU


def test_least_recently_used_leaves_first():
    store = BoundedLRU(max_entries=2, max_bytes=100)
    store.put("a", 1, 10)
    store.put("b", 2, 10)
    assert store.get("a") == 1  # now "b" is the least recently used
    store.put("c", 3, 10)
    assert store.get("b") is None and store.get("a") == 1 and store.get("c") == 3
    assert len(store) == 2 and store.hits == 3


def test_byte_bound_keeps_the_newest_entry_even_alone():
    store = BoundedLRU(max_entries=10, max_bytes=15)
    store.put("a", 1, 10)
    store.put("b", 2, 10)
    assert store.get("a") is None and store.get("b") == 2
    store.put("big", 3, 1000)
    assert len(store) == 1 and store.get("big") == 3


def test_zero_entries_keeps_nothing_and_clear_empties():
    off = BoundedLRU(max_entries=0, max_bytes=100)
    off.put("a", 1, 1)
    assert off.get("a") is None and len(off) == 0
    store = BoundedLRU(max_entries=3, max_bytes=100)
    store.put("a", 1, 1)
    store.clear()
    assert len(store) == 0

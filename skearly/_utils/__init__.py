"""Private helpers shared by every layer of skearly (not part of the public API).

- :mod:`~skearly._utils.batching`: tokenize once, cut into padded batches, pack a split as arrays;
- :mod:`~skearly._utils.strategy`: the ``Strategy`` / ``Registry`` pattern behind every string alias;
- :mod:`~skearly._utils.validation`: parameter and input checks;
- :mod:`~skearly._utils.devices`: device resolution, autocast, host-to-device copies that do not block;
- :mod:`~skearly._utils.host_syncs`: counts the torch calls that would block the host on a GPU (a CPU proxy);
- :mod:`~skearly._utils.cache`, :mod:`~skearly._utils.packaged`: skearly's cache folder, files inside
  installed packages;
- :mod:`~skearly._utils.lru`, :mod:`~skearly._utils.optional`: a bounded LRU, optional imports.
"""

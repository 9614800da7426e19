"""Product benchmarks (see README.md).

A package only so that the studies of ``research/`` can import ``benchmarks._common``.
"""

"""One-off studies, one folder per question, each with a README.md.

Run from the repository root: ``python -m research.<question>.<script>``.
"""

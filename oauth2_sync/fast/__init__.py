"""Fast paths: hand-written shortcuts, each beside the readable reference it shadows.

One module per fast path; its docstring names the reference and tests/test_fast.py
checks fast == reference on generated input. benchmarks/fastpaths.py measures what
each saves on a 10,000-client plan (docs/development/performance.md, "Fast paths"); one that saves
less than 5% is deleted and its reference used instead. Nothing here is imported by
this package file, so a module pays only for the fast paths it uses.
"""

"""factor_pipeline."""

import os

# oneDNN (PyTorch's CPU convolutions) keeps a compiled primitive per input shape, 1024 of them by default. A
# weak-factor batch is one date's stocks, so nearly every date is a new shape, and on all A shares the cache
# held GiBs for no speed: two real `week` fits and their years' predictions peaked at 5.21 GiB, against 1.94
# GiB with the cache off, in the same time and with identical predictions (benchmarks/onednn_cache.py).
# Read when torch first convolves, so it is set on import, before that; a capacity the user set is kept.
if not {"ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"} & set(os.environ):
    os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = "0"

"""The demo's stand-in for the Wan text encoder (umT5-XXL, 5.7B parameters, which no small machine
runs): each word of a prompt becomes one fixed 4096-wide vector, the shape of conditioning the Wan
models read ([1, tokens, 4096]). Plain torch.

Deterministic and simple on purpose: the same word always gives the same vector, on any machine, so
a prompt typed on the live page, a CLIP Text Encode node and the demo's training data agree.
"""

from __future__ import annotations

import hashlib
import re

import torch

WIDTH = 4096   # umT5-XXL's output width, what the Wan models' text embedding reads
SCALE = 0.1    # the size of each vector's entries (umT5 outputs are of this order)
MAX_TOKENS = 512


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", str(text).lower())[:MAX_TOKENS - 1]


def word_vector(word: str) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return torch.randn(WIDTH, generator=torch.Generator().manual_seed(seed)) * SCALE


def encode(text: str) -> torch.Tensor:
    """[1, words + 1, 4096]: a vector per word, then an end row of zeros (as umT5's padding reads)."""
    rows = [word_vector(w) for w in words(text)] + [torch.zeros(WIDTH)]
    return torch.stack(rows)[None]

"""Test and benchmark scaffolding for the causal path (never imported by the pack).

The reference the KV cache is checked against, and the baseline the benchmark measures it
against: every network call runs the whole context again (the clean blocks so far plus the new
one) with a block-causal attention mask, and no cache.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from tempo_pack.models.causal_wan import CausalWan


def block_causal_mask(frame_blocks: list[int], attended: Callable[[int], list[int]], tokens_per_frame: int,
                      frames_start: list[int]) -> torch.Tensor:
    """Token mask for the full sequence: a frame in block j sees its own block and the frames
    ``attended(start of block j)`` (all earlier ones, or sink + window)."""
    n = len(frame_blocks)
    allow = torch.zeros(n, n, dtype=torch.bool)
    for fi, bj in enumerate(frame_blocks):
        own = [g for g, bg in enumerate(frame_blocks) if bg == bj]
        allow[fi, own] = True
        ctx = [g for g in attended(frames_start[bj]) if g < n]
        allow[fi, ctx] = True
    return allow.repeat_interleave(tokens_per_frame, 0).repeat_interleave(tokens_per_frame, 1)


def rolling_attended(sink: int, window: int) -> Callable[[int], list[int]]:
    """Frames a block starting at ``start`` sees through a cache of ``sink`` + ``window`` frames."""
    return lambda start: [f for f in range(start) if f < sink or f >= start - window]


class MaskedWan(CausalWan):
    """The same forward, with self-attention over the whole sequence restricted by ``mask``."""

    mask: Optional[torch.Tensor] = None

    def self_attention(self, layer, q, k, v, cache=None, write=False):
        assert cache is None
        return self._attend(q, k, v, None if self.mask is None else self.mask.to(q.device))


class RecomputeModel:
    """Stands where the cached model stands in ``rollout``: the clean pass of a block (write=True)
    only records it; every other call runs [recorded blocks + x] through the network with a
    block-causal mask and returns the output for x."""

    def __init__(self, runner: CausalWan, frames_per_block: int, tokens_per_frame: int, start_frame: int = 0,
                 attended: Optional[Callable[[int], list[int]]] = None):
        self.net = MaskedWan(runner.net, runner.attention)
        self.fpb, self.tpf, self.start = frames_per_block, tokens_per_frame, start_frame
        self.attended = attended or (lambda s: list(range(s)))
        self.done: list[torch.Tensor] = []

    def forward_frames(self, x, t, ctx_kv, start_frame=0, cache=None, write=False):
        if write:
            self.done.append(x)
            return None
        seq = torch.cat(self.done + [x], dim=2)
        n = seq.shape[2]
        starts = [j * self.fpb for j in range(n // self.fpb)]
        attended = lambda s: [f - self.start for f in self.attended(s + self.start) if f >= self.start]  # noqa: E731
        self.net.mask = block_causal_mask([i // self.fpb for i in range(n)], attended, self.tpf, starts)
        tt = torch.cat([torch.zeros(t.shape[0], n - x.shape[2], device=t.device), t], dim=1)
        return self.net.forward_frames(seq, tt, ctx_kv, self.start)[:, :, -x.shape[2]:]

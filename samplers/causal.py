"""Block-by-block causal video generation with a KV cache (Self Forcing family).

Plain torch. The model is anything with ``forward_frames`` (``models.causal_wan``). Each
block of ``frames_per_block`` latent frames is denoised over a short list of timesteps,
re-noised with fresh noise between steps (x = (1 - s) x0 + s eps), then run once more clean
at t = 0 to write its keys and values into the cache (the clean-context refill), and handed
to the caller before the next block starts. Noise comes from a generator seeded by (seed,
block index), so a block's result does not depend on how long the video is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch

# One entry per published family: denoising timesteps (0..1000) and the shift they are warped by.
SCHEDULES = {
    "Self Forcing": ([1000, 750, 500, 250], 5.0),
    "CausVid": ([1000, 757, 522], 8.0),
    "Causal Forcing": ([1000, 750, 500, 250], 5.0),
}
RENOISE_GEN_OFFSET = 1_000_003


def shift_sigma(sigma: float, shift: float) -> float:
    """sigma' = s * sigma / (1 + (s - 1) * sigma)"""
    return shift * sigma / (1 + (shift - 1) * sigma)


def schedule_sigmas(timesteps: list[float], shift: float) -> list[float]:
    """The denoising list as flow sigmas in (0, 1]: [1000, 750, 500, 250] at shift 5 -> [1, .9375, .8333, .625]."""
    for t in timesteps:
        if not 0 < t <= 1000:
            raise ValueError(f"timestep {t} is outside (0, 1000]")
    if list(timesteps) != sorted(timesteps, reverse=True):
        raise ValueError(f"the denoising list {timesteps} must run from high to low")
    return [shift_sigma(t / 1000.0, shift) for t in timesteps]


def parse_timesteps(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"'{text}' is not a list of timesteps such as '1000, 750, 500, 250'") from None


@dataclass
class Block:
    index: int
    start_frame: int
    latent: torch.Tensor  # [B, C, F, H, W], x0 of this block


def block_generator(seed: int, block: int, kind: int = 0) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed((seed * 7919 + block * 104729 + kind * RENOISE_GEN_OFFSET) % (2**63))


def block_noise(shape, seed: int, block: int, kind: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=block_generator(seed, block, kind), dtype=torch.float32)


def prefill(model, latent: torch.Tensor, ctx_kv, cache, start_frame: int = 0):
    """Write clean frames (a start image's latent, or the end of a previous clip) into the cache."""
    t = torch.zeros(latent.shape[0], latent.shape[2], device=latent.device)
    model.forward_frames(latent, t, ctx_kv, start_frame, cache, write=True)


def rollout(model, shape: tuple, ctx_kv, cache, frames_per_block: int, sigmas: list[float], seed: int,
            num_blocks: int, start_frame: int = 0, device=None, dtype=torch.float32,
            step_callback: Optional[Callable] = None, denoise_fn: Optional[Callable] = None) -> Iterator[Block]:
    """Yield each finished block. ``shape`` is one block's latent shape [B, C, F, H, W].

    ``denoise_fn(x, t, start_frame)`` replaces the cached model call (the test reference runs the
    same loop through a masked full-sequence forward); ``step_callback(block, step)`` runs
    before every network call (progress, interrupts).
    """
    b, c, f, h, w = shape
    if f != frames_per_block:
        raise ValueError(f"block shape has {f} frames, expected {frames_per_block}")
    for blk in range(num_blocks):
        s0 = start_frame + blk * frames_per_block
        x = block_noise(shape, seed, blk).to(device=device, dtype=dtype)
        renoise = block_generator(seed, blk, kind=1)
        x0 = x
        for i, sigma in enumerate(sigmas):
            if step_callback is not None:
                step_callback(blk, i)
            t = torch.full((b, f), sigma * 1000.0, device=device)
            if denoise_fn is not None:
                v = denoise_fn(x, t, s0)
            else:
                v = model.forward_frames(x, t, ctx_kv, s0, cache, write=False)
            x0 = x - sigma * v.to(x.dtype)
            if i + 1 < len(sigmas):
                eps = torch.randn(shape, generator=renoise, dtype=torch.float32).to(device=device, dtype=dtype)
                x = (1 - sigmas[i + 1]) * x0 + sigmas[i + 1] * eps
        if step_callback is not None:
            step_callback(blk, len(sigmas))
        if denoise_fn is None:
            prefill(model, x0, ctx_kv, cache, s0)
        yield Block(blk, s0, x0)


def block_causal_mask(frame_blocks: list[int], attended: Callable[[int], list[int]], tokens_per_frame: int,
                      frames_start: list[int]) -> torch.Tensor:
    """Token mask for the full-sequence reference: a frame in block j sees its own block and the
    frames ``attended(start of block j)`` (all earlier ones, or sink + window)."""
    n = len(frame_blocks)
    allow = torch.zeros(n, n, dtype=torch.bool)
    for fi, bj in enumerate(frame_blocks):
        own = [g for g, bg in enumerate(frame_blocks) if bg == bj]
        allow[fi, own] = True
        ctx = [g for g in attended(frames_start[bj]) if g < n]
        allow[fi, ctx] = True
    return allow.repeat_interleave(tokens_per_frame, 0).repeat_interleave(tokens_per_frame, 1)

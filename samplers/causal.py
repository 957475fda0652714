"""Block-by-block causal video generation with a KV cache (Self Forcing family).

Plain torch. The model is anything with ``forward_frames`` (``models.causal_wan.CausalWan``). Each
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

from ..errors import TempoError
from ..models.kv_cache import RollingKVCache

# One entry per published family: denoising timesteps (0..1000) and the shift they are warped by
# (shift 1: used as written). Sources, as the authors' inference reads them:
# - Self Forcing: guandeh17/Self-Forcing@33593df configs/self_forcing_dmd.yaml:7-12 (list), :15 (shift 5),
#   :51 (warp_denoising_step: true; pipeline/causal_inference.py:29-31 warps by the shifted schedule).
# - CausVid: tianweiy/CausVid@ca21150 configs/wan_causal_dmd.yaml:14-18 (list, trailing 0 dropped),
#   :53 (warp_denoising_step: false): the timesteps are used as written; the shift 8 of :20 only
#   shapes the training schedule, and causvid/models/wan/wan_wrapper.py:135-137 takes sigma as the
#   schedule's point nearest t / 1000 (within 0.0006 of t / 1000).
# - Causal Forcing: thu-ml/Causal-Forcing@1fc7bbc configs/causal_forcing_dmd_chunkwise.yaml:7-12, :15, :47.
SCHEDULES = {
    "Self Forcing": ([1000, 750, 500, 250], 5.0),
    "CausVid": ([1000, 757, 522], 1.0),
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
            raise TempoError(f"timestep {t} is outside (0, 1000]")
    if list(timesteps) != sorted(timesteps, reverse=True):
        raise TempoError(f"the denoising list {timesteps} must run from high to low")
    return [shift_sigma(t / 1000.0, shift) for t in timesteps]


def parse_timesteps(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise TempoError(f"'{text}' is not a list of timesteps such as '1000, 750, 500, 250'") from None


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


@dataclass(frozen=True)
class RolloutSettings:
    """How the blocks are made: frames per block, the denoising sigmas, the seed, how many blocks,
    and the absolute frame the first block starts at (after a prefix)."""

    frames_per_block: int
    sigmas: tuple
    seed: int
    num_blocks: int
    start_frame: int = 0


def rollout(model, shape: tuple, ctx_kv, cache, settings: RolloutSettings, device=None, dtype=torch.float32,
            step_callback: Optional[Callable] = None) -> Iterator[Block]:
    """Yield each finished block. ``shape`` is one block's latent shape [B, C, F, H, W]; ``model``
    has ``forward_frames`` (:class:`models.causal_wan.CausalWan`); ``step_callback(block, step)``
    runs before every network call (progress, interrupts)."""
    b, c, f, h, w = shape
    if f != settings.frames_per_block:
        raise ValueError(f"block shape has {f} frames, expected {settings.frames_per_block}")
    sigmas = settings.sigmas
    for blk in range(settings.num_blocks):
        s0 = settings.start_frame + blk * f
        x = block_noise(shape, settings.seed, blk).to(device=device, dtype=dtype)
        renoise = block_generator(settings.seed, blk, kind=1)
        x0 = x
        for i, sigma in enumerate(sigmas):
            if step_callback is not None:
                step_callback(blk, i)
            t = torch.full((b, f), sigma * 1000.0, device=device)
            v = model.forward_frames(x, t, ctx_kv, s0, cache, write=False)
            x0 = x - sigma * v.to(x.dtype)
            if i + 1 < len(sigmas):
                eps = torch.randn(shape, generator=renoise, dtype=torch.float32).to(device=device, dtype=dtype)
                x = (1 - sigmas[i + 1]) * x0 + sigmas[i + 1] * eps
        if step_callback is not None:
            step_callback(blk, len(sigmas))
        prefill(model, x0, ctx_kv, cache, s0)
        yield Block(blk, s0, x0)


# -- one causal run, owned in one place --------------------------------------------------------

def compute_dtype(weight_dtype: torch.dtype) -> torch.dtype:
    """The activations' dtype for weights stored as ``weight_dtype`` (fp8 storage computes in bf16)."""
    return torch.bfloat16 if weight_dtype in (torch.float8_e4m3fn, torch.float8_e5m2) else weight_dtype


@dataclass(frozen=True)
class VideoSpec:
    """What one causal run makes, in latent units (the node turns pixels and lengths into this)."""

    height: int                  # latent rows (pixels / 8)
    width: int                   # latent columns
    latent_frames: int           # frames to generate; a prefix is not counted
    frames_per_block: int
    sigmas: tuple
    seed: int
    sink: int = 0
    window: Optional[int] = None  # None: a full cache, every frame kept
    channels: int = 16

    @property
    def num_blocks(self) -> int:
        return self.latent_frames // self.frames_per_block

    def cache_frames(self, prefix_frames: int = 0) -> int:
        total = self.latent_frames + prefix_frames
        return total if self.window is None else min(total, self.sink + self.window)


class CausalSession:
    """One causal video run: compute dtype, tokens per frame, the cache's size, the text context
    and its cross-attention cache, the prefix, the block rollout and the cleanup, in one place.
    ``runner`` is a :class:`models.causal_wan.CausalWan`. Used by the nodes and the benchmark."""

    def __init__(self, runner, spec: VideoSpec, device=None, weight_dtype: torch.dtype = torch.float32):
        self.runner, self.spec, self.device = runner, spec, device
        self.dtype = compute_dtype(weight_dtype)
        p = runner.patch_size
        self.tokens_per_frame = (spec.height // p[1]) * (spec.width // p[2])

    def cache_bytes(self, prefix_frames: int = 0) -> int:
        """Memory the KV cache will take (checked before anything is allocated)."""
        r = self.runner
        return RollingKVCache.bytes_needed(r.num_layers, 1, r.num_heads, r.head_dim, self.tokens_per_frame,
                                           self.spec.cache_frames(prefix_frames), self.dtype)

    def run(self, cond: torch.Tensor, prefix: Optional[torch.Tensor] = None,
            step_callback: Optional[Callable] = None) -> Iterator[tuple]:
        """Yield ("prefix", prefix) when there is one (it is written to the cache first), then
        ("block", x0) for every block, x0 [1, C, F, h, w] in the model's latent units. ``cond`` is
        the text embedding [1, L, text_dim]. The cache is freed when the run ends, fails or is
        abandoned (an interrupt raised by ``step_callback``)."""
        spec, r, dev, dtype = self.spec, self.runner, self.device, self.dtype
        n_prefix = 0 if prefix is None else prefix.shape[2]
        cache = None
        try:
            with torch.no_grad():
                ctx, img_len = r.embed_context(cond.to(dev, dtype))
                ctx_kv = r.cross_kv(ctx, img_len)
                full = spec.window is None
                cache = RollingKVCache(r.num_layers, 1, r.num_heads, r.head_dim, self.tokens_per_frame,
                                       0 if full else spec.sink, max(spec.cache_frames(n_prefix) if full else spec.window, 1),
                                       device=dev, dtype=dtype)
                if prefix is not None:
                    prefill(r, prefix.to(dev, dtype), ctx_kv, cache, 0)
                    yield "prefix", prefix
                settings = RolloutSettings(spec.frames_per_block, tuple(spec.sigmas), spec.seed, spec.num_blocks,
                                           n_prefix)
                shape = (1, spec.channels, spec.frames_per_block, spec.height, spec.width)
                for blk in rollout(r, shape, ctx_kv, cache, settings, dev, dtype, step_callback):
                    yield "block", blk.latent
        finally:
            if cache is not None:
                cache.clear()

"""Block-by-block causal video generation with a KV cache (Self Forcing family).

Plain torch. The model is anything with ``forward_frames`` (``models.causal_wan.CausalWan``). Each
block of ``frames_per_block`` latent frames is denoised over a short list of timesteps,
re-noised with fresh noise between steps (x = (1 - s) x0 + s eps), then run once more clean
at t = 0 to write its keys and values into the cache (the clean-context refill), and handed
to the caller before the next block starts. Noise comes from a generator seeded by (seed,
block index), so a block's result does not depend on how long the video is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import torch

from ..errors import TempoError
from ..models.kv_cache import RollingKVCache
from .flow import shift_sigma

# The published causal checkpoints, as the authors' inference configs and pipelines run them.
# Repositories read (commit): SF guandeh17/Self-Forcing@33593df, CV tianweiy/CausVid@ca21150,
# CF thu-ml/Causal-Forcing@1fc7bbc, LL NVlabs/LongLive@e52d9ef (branch v1.0, LongLive-1.3B),
# OF Aurora-edu/One-Forcing@ca345b3 (one_forcing.pt: one step per block after a 4-step first block).
#
# - Denoising lists are warped when the config says warp_denoising_step: true (SF
#   pipeline/causal_inference.py:29-31: timesteps[1000 - list] of FlowMatchScheduler(shift) over 1000
#   steps, utils/scheduler.py:119-133), i.e. sigma' = s * sigma / (1 + (s - 1) * sigma): [1000, 750,
#   500, 250] at shift 5 -> 1000, 937.5, 833.3, 625. CausVid's are used as written (warp false).
# - Attention window, in the authors' terms: local_attn_size L counts the frames a block attends to,
#   its own frames and the sink included (SF wan/modules/causal_model.py:201-235: the cache holds L
#   frames, the block is written into it before attention, eviction keeps sink_size frames); -1 is
#   global causal attention over the trained 21 frames (SF utils/wan_wrapper.py:121-122 defaults,
#   causal_inference.py:283-288 cache of 21 x 1560 tokens). SF, CV and CF run global attention and
#   their code stops at 21 latent frames; past that Tempo rolls a window of the trained 21 frames with
#   3 sink frames (``local_attn_size``/``sink_size`` below; the authors publish no longer setting).
# - context_noise: the timestep the clean refill pass is fed (SF configs/default_config.yaml:10,
#   causal_inference.py:226-235: ``context_timestep = ones_like(timestep) * context_noise``, the
#   input is the clean x0, not re-noised at inference). 0 in every config read.
# - Causal Forcing++ (frame-wise 1- and 2-step): the first block runs a longer list,
#   ``denoising_step_list_first_chunk`` (CF pipeline/causal_inference.py:37-44, 224-228).
@dataclass(frozen=True)
class CausalPreset:
    name: str
    timesteps: tuple            # denoising list, 0..1000, as written in the config
    shift: float                # 1: used as written (warp_denoising_step false)
    frames_per_block: int
    local_attn_size: int        # frames a block attends to, itself and the sink included (authors' term)
    sink_size: int
    context_noise: float = 0.0  # the refill pass's timestep
    first_timesteps: tuple = ()  # the first block's own list (Causal Forcing++), warped alike
    source: str = ""


CAUSAL_PRESETS = {p.name: p for p in [
    CausalPreset("Self Forcing", (1000, 750, 500, 250), 5.0, 3, 21, 3, 0.0, (),
                 "SF configs/self_forcing_dmd.yaml:7-12 (list, warp), :15 (shift 5), :48 (3 frames per block); "
                 "local_attn_size -1 / sink 0 by default (utils/wan_wrapper.py:121-122); "
                 "context_noise 0 (configs/default_config.yaml:10)"),
    CausalPreset("CausVid", (1000, 757, 522), 1.0, 3, 21, 3, 0.0, (),
                 "CV configs/wan_causal_dmd.yaml:14-18 (list; the trailing 0 is dropped, "
                 "causvid/models/wan/causal_inference.py:25-27), :53 (warp_denoising_step false), :52 (3 frames "
                 "per block); full causal attention over 21 frames (causal_model.py:140-143); refill at t = 0 "
                 "(causal_inference.py:188-197)"),
    CausalPreset("Causal Forcing", (1000, 750, 500, 250), 5.0, 3, 21, 3, 0.0, (),
                 "CF configs/causal_forcing_dmd_chunkwise.yaml:7-12, :15, :47 (chunk-wise, 3 frames per block); "
                 "local_attn_size -1 / sink 0 (utils/wan_wrapper.py:121-122); context_noise 0 "
                 "(configs/default_config.yaml:10)"),
    CausalPreset("Causal Forcing frame-wise", (1000, 750, 500, 250), 5.0, 1, 21, 3, 0.0, (),
                 "CF configs/causal_forcing_dmd_framewise.yaml:7-12, :15, :47 (1 frame per block)"),
    CausalPreset("Causal Forcing++ 2-step", (1000, 500), 5.0, 1, 21, 3, 0.0, (1000, 750, 500, 250),
                 "CF configs/causal_forcing_dmd_framewise_2step.yaml:7-9 (list), :10-14 "
                 "(denoising_step_list_first_chunk), :15, :18, :50 (1 frame per block)"),
    CausalPreset("Causal Forcing++ 1-step", (1000,), 5.0, 1, 21, 3, 0.0, (1000, 750, 500, 250),
                 "CF configs/causal_forcing_dmd_framewise_1step.yaml:7-8 (list), :9-13 (first chunk), :14"),
    CausalPreset("One-Forcing", (1000,), 5.0, 1, 21, 3, 0.0, (1000, 750, 500, 250),
                 "OF scripts/infer.sh:191-194 (frame-wise: 1 frame per block, denoising_step_list [1000], "
                 "first_frame_denoising_step_list [1000, 750, 500, 250], warp_denoising_step true), config.yaml:107-108 "
                 "(timestep_shift 5), :95 (context_noise 0); pipeline/causal_inference.py:32-36, :189-193 (the first "
                 "block's own list); local_attn_size -1 / sink 0 (utils/wan_wrapper.py:179-180)"),
    CausalPreset("One-Forcing chunk-wise", (1000,), 5.0, 3, 21, 3, 0.0, (1000, 750, 500, 250),
                 "OF scripts/infer.sh:191-194 (chunk-wise: 3 frames per block), otherwise as One-Forcing"),
    CausalPreset("LongLive", (1000, 750, 500, 250), 5.0, 3, 12, 3, 0.0, (),
                 "LL configs/longlive_inference.yaml:1-7 (list, warp, 3 frames per block), :9-12 (local_attn_size "
                 "12, timestep_shift 5, sink_size 3), :25 (context_noise 0); the sink counts inside the window "
                 "(wan/modules/causal_model.py:321-341)"),
]}
CAUSAL_PRESET_NAMES = list(CAUSAL_PRESETS)
CAUSAL_SCHEDULES = {name: (list(p.timesteps), p.shift) for name, p in CAUSAL_PRESETS.items()}  # denoising list and shift
TEXT_TOKENS = 512  # umT5 context length every reference pipeline feeds (HuggingfaceTokenizer(seq_len=512))


def window_in_cache_terms(local_attn_size: int, sink_size: int, frames_per_block: int) -> int:
    """The authors' local_attn_size (frames a block attends to, itself and the sink included) as the
    number of earlier non-sink frames the cache keeps: L - sink - frames_per_block."""
    window = local_attn_size - sink_size - frames_per_block
    if sink_size < 0:
        raise TempoError(f"sink_size {sink_size} must be 0 or more")
    if window < 1:
        raise TempoError(f"local_attn_size {local_attn_size} leaves no earlier frame to attend to: a block attends to "
                         f"the {sink_size} sink frame(s), its own {frames_per_block} and the frames before it, so "
                         f"local_attn_size must be at least {sink_size + frames_per_block + 1}")
    return window


def text_context(cond: torch.Tensor, tokens: int = TEXT_TOKENS) -> torch.Tensor:
    """Text embeddings [B, L, C] as the reference pipelines feed them: exactly ``tokens`` rows,
    zero rows after the prompt (SF utils/wan_wrapper.py:45-46 sets padding to 0.0; the model pads
    with zeros to text_len, wan/modules/causal_model.py:784-790), cut after ``tokens`` (the
    tokenizer truncates, wan/modules/tokenizers.py:54-59)."""
    n = cond.shape[1]
    if n >= tokens:
        return cond[:, :tokens]
    return torch.cat([cond, cond.new_zeros(cond.shape[0], tokens - n, cond.shape[2])], dim=1)


def truncate_tokens(batch: list, tokens: int = TEXT_TOKENS, end_token: int = 1) -> list:
    """One tokenized prompt (a list of ComfyUI token tuples) cut as the reference tokenizer cuts it:
    the first ``tokens - 1`` tokens and the end token (umT5's EOS is 1); shorter lists unchanged."""
    if len(batch) <= tokens:
        return batch
    last = batch[tokens - 1]
    return list(batch[:tokens - 1]) + [(end_token, *last[1:])]
RENOISE_GEN_OFFSET = 1_000_003


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
        values = [float(v) for v in str(text).replace(",", " ").split()]
    except ValueError:
        raise TempoError(f"custom_timesteps '{text}' is not a list of timesteps such as '1000, 750, 500, 250'") from None
    if not values:
        raise TempoError("custom_timesteps is empty, so the schedule would run no step; write the timesteps to "
                         "visit from high to low, e.g. '1000, 750, 500, 250' (Self Forcing's), or pick a schedule")
    return values


@dataclass
class MadeBlock:
    index: int
    start_frame: int
    latent: torch.Tensor  # [B, C, F, H, W], x0 of this block


def block_generator(seed: int, block: int, kind: int = 0) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed((seed * 7919 + block * 104729 + kind * RENOISE_GEN_OFFSET) % (2**63))


def block_noise(shape, seed: int, block: int, kind: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=block_generator(seed, block, kind), dtype=torch.float32)


def staged_block_noise(shape, seed: int, block: int, steps: int, device, dtype) -> torch.Tensor:
    """All of a block's noise on ``device`` in one transfer: [steps, *shape], the start noise then the
    re-noise of each later step, drawn on the CPU from the same generators as ever (the video does not
    change). On a GPU it is drawn into pinned memory and copied without blocking, so the block loop
    never waits on the host: the copy queues behind the previous block's kernels."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    pinned = device.type == "cuda"
    out = torch.empty((steps, *shape), dtype=torch.float32, pin_memory=pinned)
    torch.randn(shape, generator=block_generator(seed, block), dtype=torch.float32, out=out[0])
    renoise = block_generator(seed, block, kind=1)
    for i in range(1, steps):
        torch.randn(shape, generator=renoise, dtype=torch.float32, out=out[i])
    if device.type == "cpu":
        return out.to(dtype)
    return out.to(device=device, non_blocking=True).to(dtype)


def prefill(model, latent: torch.Tensor, ctx_kv, cache, start_frame: int = 0, context_noise: float = 0.0):
    """Write clean frames (a start image's latent, the end of a previous clip, a finished block) into
    the cache. The network is fed ``context_noise`` as the timestep and the clean latent as the input,
    as the authors' inference does (SF pipeline/causal_inference.py:226-235)."""
    t = torch.full((latent.shape[0], latent.shape[2]), float(context_noise), device=latent.device)
    model.forward_frames(latent, t, ctx_kv, start_frame, cache, write=True)


# LongLive's re-cache at a prompt switch, as NVlabs/LongLive@9266de9 runs it:
# pipeline/interactive_causal_inference.py:34-96 (_recache_after_switch), :188-191 (switch at the first
# block starting at or after the requested frame), wan/modules/causal_model.py:230-300 (which cache
# slots the pass rewrites), configs/longlive_interactive_inference.yaml:26-27 (global_sink true,
# context_noise 0). In the cache's terms (sink S, window W, F frames per block; LongLive's
# local_attn_size is L = S + W + F, as its cache evicts a block only when the next one arrives):
# before the block starting at frame s, the clean latents of the frames s - n .. s - 1 run once more
# at t = 0 under the new prompt, n = s with a full cache or while s <= L, else n = L - S; they attend
# to each other (no causal mask among them: the pass goes through the cache path, :213-352, which
# takes no mask) and, when n < s, to the S sink frames, whose keys and values stay as they were.
# Their keys and values replace the cache's; the oldest that no longer fit are evicted as usual.
def recache_frames(s: int, sink: int, window: Optional[int], frames_per_block: int) -> tuple[int, bool]:
    """(first frame to recompute, whether the sink frames are kept) for a switch before frame ``s``."""
    if window is None or s <= sink + window + frames_per_block:
        return 0, False
    return s - (window + frames_per_block), True


def recache(model, history: dict, ctx_kv, cache, s: int, frames_per_block: int, full: bool,
            context_noise: float = 0.0):
    """Re-compute the held frames' keys and values under ``ctx_kv`` (the new prompt), at the refill's
    timestep (LongLive pipeline/interactive_causal_inference.py:54-90: t = context_noise)."""
    first, keep_sinks = recache_frames(s, cache.sink, None if full else cache.window, frames_per_block)
    cache.restart(keep_sinks)
    prefill(model, torch.cat([history[f] for f in range(first, s)], dim=2), ctx_kv, cache, first, context_noise)


def strength_sigmas(sigmas, strength: float) -> tuple:
    """Video-to-video: the input is noised to ``strength`` (a flow sigma, x = (1 - s) x_in + s eps, as
    StreamDiffusionV2's noise_scale: chenfengxu714/StreamDiffusionV2 streamv2v/inference_wo_batch.py,
    ``noise * noise_scale + latents * (1 - noise_scale)``) and denoised over the schedule's sigmas below
    it. Strength 1 is text-to-video: the schedule as it is, the input unused."""
    if not 0 < strength <= 1:
        raise TempoError(f"strength {strength} is outside (0, 1]: 1 ignores the input video, lower keeps more of it")
    if strength == 1:
        return tuple(sigmas)
    return (float(strength),) + tuple(s for s in sigmas if s < strength)


@dataclass(frozen=True)
class RolloutSettings:
    """How the blocks are made: frames per block, the denoising sigmas, the seed, how many blocks,
    and the absolute frame the first block starts at (after a prefix)."""

    frames_per_block: int
    sigmas: tuple
    seed: int
    num_blocks: int
    start_frame: int = 0
    first_sigmas: tuple = ()    # the first block's own list (Causal Forcing++); empty: ``sigmas``
    context_noise: float = 0.0  # the refill pass's timestep


@dataclass
class Steering:
    """What changes while the video runs. ``contexts``: block index -> the cross-attention context
    (``cross_kv``) from that block on; ``recache``: re-compute the held frames under the new prompt
    at each switch (LongLive) or switch plainly; ``source``: an iterator of clean input latent blocks
    (model units, [B, C, F, h, w]) for video-to-video, noised to ``sigmas[0]`` (see ``strength_sigmas``)."""

    contexts: dict = field(default_factory=dict)  # block index (> 0) -> ctx_kv
    recache: bool = True
    source: Optional[Iterator[torch.Tensor]] = None
    live: Optional[Callable[[int], Optional[list]]] = None  # at each block > 0: a new ctx_kv from now on, or None


def rollout(model, shape: tuple, ctx_kv, cache, settings: RolloutSettings, device=None, dtype=torch.float32,
            step_callback: Optional[Callable] = None, steering: Optional[Steering] = None,
            prefix: Optional[torch.Tensor] = None) -> Iterator[MadeBlock]:
    """Yield each finished block. ``shape`` is one block's latent shape [B, C, F, H, W]; ``model``
    has ``forward_frames`` (:class:`models.causal_wan.CausalWan`); ``step_callback(block, step)``
    runs before every network call (progress, interrupts); ``prefix``: clean frames written to the
    cache first (they are frames ``0 .. settings.start_frame - 1``)."""
    b, c, f, h, w = shape
    if f != settings.frames_per_block:
        raise ValueError(f"block shape has {f} frames, expected {settings.frames_per_block}")
    steering = steering or Steering()
    full = cache is not None and cache.full
    # clean latents a re-cache may need: all with a full cache, else the sinks and the last L frames
    history: dict[int, torch.Tensor] = {}
    keep_last = None if cache is None or full else cache.window + f  # with the sinks: L frames
    switches = {k: v for k, v in steering.contexts.items() if k > 0}

    def remember(latent, s0):
        if cache is None or not (switches or steering.live) or not steering.recache:
            return
        for i in range(latent.shape[2]):
            history[s0 + i] = latent[:, :, i:i + 1]
        if keep_last is not None:
            for old in [k for k in history if cache.sink <= k < s0 + latent.shape[2] - keep_last]:
                del history[old]

    if prefix is not None:  # a start image is cached at t = 0 (CF pipeline/causal_inference.py:165-198)
        prefill(model, prefix, ctx_kv, cache, 0)
        remember(prefix, 0)
    for blk in range(settings.num_blocks):
        s0 = settings.start_frame + blk * f
        sigmas = settings.first_sigmas if blk == 0 and settings.first_sigmas else settings.sigmas
        new = switches.get(blk)
        if steering.live is not None and blk > 0:
            new = steering.live(blk) or new
        if new is not None:
            ctx_kv = new
            if steering.recache and cache is not None:
                recache(model, history, ctx_kv, cache, s0, f, full, settings.context_noise)
        noises = staged_block_noise(shape, settings.seed, blk, len(sigmas), device, dtype)
        noise = x = noises[0]
        if steering.source is not None:
            src = next(steering.source, None)
            if src is None:
                raise TempoError(f"the input video ended before block {blk + 1} of {settings.num_blocks}")
            if sigmas[0] < 1:
                x = (1 - sigmas[0]) * src.to(device=device, dtype=dtype) + sigmas[0] * noise
        x0 = x
        for i, sigma in enumerate(sigmas):
            if step_callback is not None:
                step_callback(blk, i)
            t = torch.full((b, f), sigma * 1000.0, device=device)
            v = model.forward_frames(x, t, ctx_kv, s0, cache, write=False)
            x0 = x - sigma * v.to(x.dtype)
            if i + 1 < len(sigmas):
                x = (1 - sigmas[i + 1]) * x0 + sigmas[i + 1] * noises[i + 1]
        if step_callback is not None:
            step_callback(blk, len(sigmas))
        prefill(model, x0, ctx_kv, cache, s0, settings.context_noise)
        remember(x0, s0)
        yield MadeBlock(blk, s0, x0)


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
    first_sigmas: tuple = ()      # the first block's own list (Causal Forcing++)
    context_noise: float = 0.0    # the refill pass's timestep

    @property
    def num_blocks(self) -> int:
        return self.latent_frames // self.frames_per_block

    def cache_frames(self, prefix_frames: int = 0) -> int:
        total = self.latent_frames + prefix_frames
        return total if self.window is None else min(total, self.sink + self.window)


@dataclass(frozen=True)
class Speed:
    """How a causal run is executed; none of it changes what is computed beyond float rounding.
    ``in_place_cache``: passes write their keys/values into the cache and attend to a view of it
    (:class:`models.kv_cache.RollingKVCache`); ``attention``: a backend of
    :mod:`models.attention` ("auto": the runner's own, ComfyUI's configured one inside ComfyUI);
    ``compile``: one of :data:`models.causal_wan.COMPILE_MODES`."""

    in_place_cache: bool = True
    attention: str = "auto"
    compile: str = "off"


class CausalSession:
    """One causal video run: compute dtype, tokens per frame, the cache's size, the text context
    and its cross-attention cache, the prefix, the block rollout and the cleanup, in one place.
    ``runner`` is a :class:`models.causal_wan.CausalWan`. Used by the nodes and the benchmark."""

    def __init__(self, runner, spec: VideoSpec, device=None, weight_dtype: torch.dtype = torch.float32,
                 speed: Speed = Speed()):
        self.runner, self.spec, self.device, self.speed = runner, spec, device, speed
        self.dtype = compute_dtype(weight_dtype)
        p = runner.patch_size
        self.tokens_per_frame = (spec.height // p[1]) * (spec.width // p[2])
        # the runner may serve several sessions (the benchmark's rows): each sets both, "auto" included
        from ..models.attention import attention_backend
        runner.attention = (runner.own_attention if speed.attention == "auto"
                            else attention_backend(speed.attention, device, self.dtype, runner.head_dim))
        runner.compile(speed.compile, spec.frames_per_block)

    def spare_frames(self) -> int:
        """Slots beyond the held frames, for a block's own keys/values (in-place writes): none for a
        full cache, which has room for every frame already."""
        return 0 if self.spec.window is None or not self.speed.in_place_cache else self.spec.frames_per_block

    def cache_bytes(self, prefix_frames: int = 0) -> int:
        """Memory the KV cache will take (checked before anything is allocated)."""
        r = self.runner
        return RollingKVCache.bytes_needed(r.num_layers, 1, r.num_heads, r.head_dim, self.tokens_per_frame,
                                           self.spec.cache_frames(prefix_frames) + self.spare_frames(), self.dtype)

    def contexts(self, cond: torch.Tensor, switches: Optional[dict] = None) -> tuple:
        """(ctx_kv of ``cond``, {block: ctx_kv} of the switches). A switch to the conditioning already
        playing is no switch (an all-same timeline is the single-prompt video)."""
        kv = self.cross_kv
        first, out, playing = kv(cond), {}, cond
        for blk in sorted(switches or {}):
            c = switches[blk]
            if blk <= 0 or (c.shape == playing.shape and torch.equal(c, playing)):
                continue
            out[blk], playing = kv(c), c
        return first, out

    def cross_kv(self, cond: torch.Tensor) -> list:
        """The cross-attention keys and values of a text embedding, fed as the reference pipelines feed
        it (:func:`text_context`), computed once per prompt."""
        ctx, img_len = self.runner.embed_context(text_context(cond).to(self.device, self.dtype))
        return self.runner.cross_kv(ctx, img_len)

    def activation_bytes(self, frames_per_pass: Optional[int] = None, prefix_frames: int = 0) -> int:
        """Peak working memory of one network pass over ``frames_per_pass`` frames (one block by
        default; a re-cache passes more) beside the weights and the cache: the block's hidden states,
        q/k/v with RoPE in float32, the cached keys/values joined with the block's, the FFN's inner
        layer (not with in-place cache writes, which attend to a view). Attention itself is taken as
        memory-efficient (O(tokens))."""
        r, spec = self.runner, self.spec
        size = torch.empty((), dtype=self.dtype).element_size()
        ffn = r.net.blocks[0].ffn[0].weight.shape[0]
        lq = (frames_per_pass or spec.frames_per_block) * self.tokens_per_frame
        lk = spec.cache_frames(prefix_frames) * self.tokens_per_frame + lq
        joined = 0 if self.speed.in_place_cache else 2 * lk * r.dim
        return size * (lq * (8 * r.dim + 2 * ffn) + joined) + 4 * 3 * lq * r.dim

    def run(self, cond: torch.Tensor, prefix: Optional[torch.Tensor] = None,
            step_callback: Optional[Callable] = None, switches: Optional[dict] = None, recache: bool = True,
            source: Optional[Iterator[torch.Tensor]] = None,
            live: Optional[Callable[[int], Optional[torch.Tensor]]] = None) -> Iterator[tuple]:
        """Yield ("prefix", prefix) when there is one (it is written to the cache first), then
        ("block", x0) for every block, x0 [1, C, F, h, w] in the model's latent units. ``cond`` is
        the text embedding [1, L, text_dim]; ``switches``: block index -> the embedding from that
        block on, with LongLive's re-cache when ``recache``; ``source``: input latent blocks for
        video-to-video (the spec's sigmas start at the strength); ``live(block)``: asked before every
        block after the first, a text embedding to switch to from that block (or None), as a timeline
        switch would. The cache is freed when the run ends, fails or is abandoned (an interrupt
        raised by ``step_callback``)."""
        spec, r, dev, dtype = self.spec, self.runner, self.device, self.dtype
        n_prefix = 0 if prefix is None else prefix.shape[2]
        cache = None
        try:
            with torch.no_grad():
                ctx_kv, contexts = self.contexts(cond, switches)
                full = spec.window is None
                cache = RollingKVCache(r.num_layers, 1, r.num_heads, r.head_dim, self.tokens_per_frame,
                                       0 if full else spec.sink, max(spec.cache_frames(n_prefix) if full else spec.window, 1),
                                       device=dev, dtype=dtype, full=full, spare_frames=self.spare_frames(),
                                       in_place=self.speed.in_place_cache)
                if prefix is not None:
                    yield "prefix", prefix
                settings = RolloutSettings(spec.frames_per_block, tuple(spec.sigmas), spec.seed, spec.num_blocks,
                                           n_prefix, tuple(spec.first_sigmas), spec.context_noise)
                shape = (1, spec.channels, spec.frames_per_block, spec.height, spec.width)
                def live_kv(blk):
                    c = live(blk)
                    return None if c is None else self.cross_kv(c)

                steering = Steering(contexts, recache, source, live_kv if live is not None else None)
                for blk in rollout(r, shape, ctx_kv, cache, settings, dev, dtype, step_callback, steering,
                                   None if prefix is None else prefix.to(dev, dtype)):
                    yield "block", blk.latent
        finally:
            if cache is not None:
                cache.clear()

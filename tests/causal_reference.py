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
        return self._kernel(q, k, v, None if self.mask is None else self.mask.to(q.device))


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


# -- LongLive's prompt switch, written out -------------------------------------------------------
# NVlabs/LongLive@9266de9 (the v1 interactive pipeline, the parent of commit 57f39c1 "LongLive 2.0"):
# the cache of one layer and the rule that updates it, wan/modules/causal_model.py:213-352 (the
# kv_cache path of CausalWanSelfAttention.forward; its updates are applied after the last layer,
# :837-889, which amounts to keeping the temporary cache); the generation loop and the switch,
# pipeline/interactive_causal_inference.py:117-261, and the re-cache, :34-96, with global_sink true
# and context_noise 0 (configs/longlive_interactive_inference.yaml:26-27). The cache is sized
# local_attn_size frames (:146-163); attention covers at most max_attention_size tokens,
# local_attn_size x 1560 (32760 for -1), :88, i.e. local_attn_size (or 21) frames of 1560 tokens.

class LongLiveState:
    """LongLive's per-layer caches (k, v, global_end_index, local_end_index), in tokens."""

    def __init__(self, num_layers, heads, head_dim, tokens_per_frame, local_attn_size, sink_size, total_frames):
        frames = total_frames if local_attn_size == -1 else local_attn_size
        self.tpf = tokens_per_frame
        self.local_attn_size = local_attn_size
        self.sink_tokens = sink_size * tokens_per_frame
        self.max_attention_size = (21 if local_attn_size == -1 else local_attn_size) * tokens_per_frame
        self.layers = [{"k": torch.zeros(1, frames * tokens_per_frame, heads, head_dim),
                        "v": torch.zeros(1, frames * tokens_per_frame, heads, head_dim),
                        "global_end": 0, "local_end": 0} for _ in range(num_layers)]
        self.current_start = 0
        self.sink_recache_after_switch = False
        self.pending = []

    def begin(self, start_frame, n_frames):
        """The pack's forward opens each pass on its cache; LongLive's rule needs nothing then."""

    def apply(self):
        for layer, k, v, global_end, local_end in self.pending:
            c = self.layers[layer]
            c["k"], c["v"], c["global_end"], c["local_end"] = k, v, global_end, local_end
        self.pending = []


class LongLiveWan(CausalWan):
    """Our network, with self-attention through LongLive's cache rule (``cache`` is a LongLiveState)."""

    def self_attention(self, layer, q, k, v, cache=None, write=False):
        st, c = cache, cache.layers[layer]
        current_start = st.current_start
        n_new = q.shape[1]
        current_end = current_start + n_new
        sink, size = st.sink_tokens, c["k"].shape[1]
        is_recompute = current_end <= c["global_end"] and current_start > 0
        temp_k, temp_v = c["k"].clone(), c["v"].clone()
        if st.local_attn_size != -1 and current_end > c["global_end"] and n_new + c["local_end"] > size:
            evicted = n_new + c["local_end"] - size
            rolled = c["local_end"] - evicted - sink
            local_end = c["local_end"] + current_end - c["global_end"] - evicted
            local_start = local_end - n_new
            temp_k[:, sink:sink + rolled] = temp_k[:, sink + evicted:sink + evicted + rolled].clone()
            temp_v[:, sink:sink + rolled] = temp_v[:, sink + evicted:sink + evicted + rolled].clone()
            write_start = max(local_start, sink) if is_recompute else local_start
        else:
            local_end = c["local_end"] + current_end - c["global_end"]
            local_start = local_end - n_new
            write_start = max(local_start, sink) if is_recompute else local_start
            if st.sink_recache_after_switch:
                write_start = local_start
        off, n_write = max(0, write_start - local_start), max(0, local_end - write_start)
        if n_write > 0:
            temp_k[:, write_start:local_end] = k[:, off:off + n_write]
            temp_v[:, write_start:local_end] = v[:, off:off + n_write]
        if sink > 0:
            budget = st.max_attention_size - sink
            lo = max(sink, local_end - budget)
            k_att = torch.cat([temp_k[:, :sink], temp_k[:, lo:local_end]], dim=1) if budget > 0 else temp_k[:, :sink]
            v_att = torch.cat([temp_v[:, :sink], temp_v[:, lo:local_end]], dim=1) if budget > 0 else temp_v[:, :sink]
        else:
            lo = max(0, local_end - st.max_attention_size)
            k_att, v_att = temp_k[:, lo:local_end], temp_v[:, lo:local_end]
        st.pending.append((layer, temp_k, temp_v, current_end, local_end))
        return self._kernel(q, k_att, v_att)


def longlive_interactive(runner: CausalWan, ctx_kvs: list, switch_frames: list[int], num_blocks: int, fpb: int,
                         sigmas, block_noise: Callable, renoise: Callable, tokens_per_frame: int,
                         local_attn_size: int, sink_size: int) -> list[torch.Tensor]:
    """LongLive's InteractiveCausalInferencePipeline.inference over ``runner``'s weights: one
    context per segment, ``switch_frames`` (latent frames) where segments 2.. begin. Noise comes
    from ``block_noise(block)`` and the re-noising from the generator ``renoise(block)``."""
    net = LongLiveWan(runner.net, runner.attention)
    st = LongLiveState(runner.num_layers, runner.num_heads, runner.head_dim, tokens_per_frame, local_attn_size,
                       sink_size, num_blocks * fpb)
    output: list[torch.Tensor] = []

    def call(x, t_value, ctx_kv, start_frame):
        st.current_start = start_frame * tokens_per_frame
        t = torch.full((x.shape[0], x.shape[2]), float(t_value))
        out = net.forward_frames(x, t, ctx_kv, start_frame, st, write=False)
        st.apply()
        return out

    def recache_after_switch(current_start_frame, ctx_kv):  # global_sink true: the cache is not zeroed
        if current_start_frame == 0:
            return
        n = current_start_frame if local_attn_size == -1 else min(local_attn_size, current_start_frame)
        frames = torch.cat(output, dim=2)[:, :, current_start_frame - n:current_start_frame]
        st.sink_recache_after_switch = False
        call(frames, 0, ctx_kv, current_start_frame - n)

    segment, current = 0, 0
    next_switch = switch_frames[0] if switch_frames else None
    for blk in range(num_blocks):
        if next_switch is not None and current >= next_switch:
            segment += 1
            recache_after_switch(current, ctx_kvs[segment])
            next_switch = switch_frames[segment] if segment < len(switch_frames) else None
        ctx_kv = ctx_kvs[segment]
        x, gen = block_noise(blk), renoise(blk)
        for i, sigma in enumerate(sigmas):
            v = call(x, sigma * 1000.0, ctx_kv, current)
            x0 = x - sigma * v
            if i + 1 < len(sigmas):
                x = (1 - sigmas[i + 1]) * x0 + sigmas[i + 1] * torch.randn(x.shape, generator=gen)
        output.append(x0)
        call(x0, 0, ctx_kv, current)
        current += fpb
    return output


def pad_text(context: torch.Tensor, text_len: int = 512) -> torch.Tensor:
    """The authors' text context: zero rows up to text_len (Self-Forcing wan/modules/causal_model.py:784-790,
    ``torch.cat([u, u.new_zeros(self.text_len - u.size(0), u.size(1))])``)."""
    return torch.cat([context, context.new_zeros(context.shape[0], text_len - context.shape[1], context.shape[2])], 1)


def self_forcing_attended(local_attn_size: int, sink_size: int, fpb: int, num_blocks: int) -> list[list[int]]:
    """The frames each block attends to under Self Forcing's KV-cache index rules, written out in frame
    units from guandeh17/Self-Forcing@33593df wan/modules/causal_model.py:201-235 (cache of
    local_attn_size frames, pipeline/causal_inference.py:283-288): eviction keeps sink_size frames and
    shifts the rest left before the block is written; attention reads the cache up to the block's end.
    Every pass of a block (its denoising steps and the clean refill) runs these rules; later passes of
    the same block take the else branch (current_end == global_end) and rewrite the same slots."""
    size = local_attn_size
    cache: list = [None] * size
    global_end = local_end = 0
    seen = []
    for b in range(num_blocks):
        start, end = b * fpb, (b + 1) * fpb
        new = end - start
        for _ in range(2):  # a denoising pass, then the refill: the second takes the else branch
            if end > global_end and new + local_end > size:
                evicted = new + local_end - size
                rolled = local_end - evicted - sink_size
                cache[sink_size:sink_size + rolled] = cache[sink_size + evicted:sink_size + evicted + rolled]
                local_end = local_end + end - global_end - evicted
            else:
                local_end = local_end + end - global_end
            cache[local_end - new:local_end] = list(range(start, end))
            attended = cache[max(0, local_end - size):local_end]
            global_end = end
        seen.append(sorted(attended))
    return seen

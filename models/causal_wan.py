"""The causal Wan 2.1 forward with a KV cache (Self Forcing, CausVid, Causal Forcing), over any
Wan 2.1 module tree.

Plain torch, no ComfyUI import. :class:`CausalWan` runs a module tree that has Wan 2.1's
parameter names (``patch_embedding``, ``blocks[i].self_attn.q`` ...), whoever built it: inside
ComfyUI that is ComfyUI's own ``WanModel`` (loaded with ComfyUI's loaders, so fp8_scaled files,
GGUF operations and LoRAs patched by the model patcher all reach it), and ComfyUI's own causal
model class (2026) as well; in the pure tests, the demo's checkpoint factory and the benchmarks it
is :class:`CausalWanModel`, a plain-torch tree with the same names whose layers come from
``operations`` (``torch.nn`` by default). Attention comes from ``attention`` (PyTorch SDPA by
default, ComfyUI's backend inside ComfyUI).

Two ways to run the same weights:
* ``forward(x, timestep, context)``: the whole clip at once, full attention (as Wan runs);
* ``forward_frames(..., cache=cache, write=...)``: a block of new frames attending to the
  cached keys and values of earlier frames; ``write=True`` stores the block's own.
(The tests' reference, a masked full sequence, overrides :meth:`CausalWan.self_attention`.)

Timesteps are per frame ([B, F]); RoPE is applied at absolute frame positions and computed
on the fly in float64 (no 1024-entry table, so positions past 1024 latent frames are exact).
"""

from __future__ import annotations

import functools
import logging
import math
import types
from typing import Callable, Optional

import torch
import torch.nn as nn

from .attention import sdpa


def sinusoidal_embedding_1d(dim: int, position: torch.Tensor) -> torch.Tensor:
    half = dim // 2
    position = position.to(torch.float64)
    sinusoid = torch.outer(position, torch.pow(10000, -torch.arange(half, device=position.device,
                                                                      dtype=torch.float64).div(half)))
    return torch.cat([torch.cos(sinusoid), torch.sin(sinusoid)], dim=1).float()


def rope_axes(head_dim: int) -> list[int]:
    return [head_dim - 4 * (head_dim // 6), 2 * (head_dim // 6), 2 * (head_dim // 6)]


@functools.lru_cache(maxsize=16)
def rope_block(start: int, n_frames: int, h: int, w: int, head_dim: int, device: str):
    """The rotations of a block (:func:`rope_freqs`), cached: every denoising step and the refill pass
    of a block share them."""
    where = _rope_device(device)
    return rope_freqs(torch.arange(start, start + n_frames, device=where), h, w, head_dim, device)


def rope_freqs(frames: torch.Tensor, h: int, w: int, head_dim: int, device) -> torch.Tensor:
    """(cos, sin) [L, head_dim/2, 2] float32 for tokens (frame, row, col) at absolute frame indices: the
    complex rotations cos + i sin, stored as real pairs (a compiled graph takes no complex input)."""
    return torch.stack(rope_cos_sin(frames, h, w, head_dim, device), dim=-1).contiguous()


def _rope_device(device) -> torch.device:
    """Where the table is computed: on the device itself (built there by kernels, no copy from the
    host, so a new block never waits on the host), in float64 where the device has it (not MPS)."""
    device = torch.device(device)
    return device if device.type in ("cpu", "cuda", "meta") else torch.device("cpu")


def rope_cos_sin(frames: torch.Tensor, h: int, w: int, head_dim: int, device, theta: float = 10000.0):
    """cos/sin [L, head_dim/2] for tokens (frame, row, col), frame-major, at absolute frame indices."""
    where = _rope_device(device)
    f64 = dict(dtype=torch.float64, device=where)
    parts = []
    grids = torch.meshgrid(frames.to(**f64), torch.arange(h, **f64), torch.arange(w, **f64), indexing="ij")
    for axis, dim in enumerate(rope_axes(head_dim)):
        omega = 1.0 / theta ** (torch.arange(0, dim, 2, **f64) / dim)
        parts.append(grids[axis].reshape(-1, 1) * omega)
    ang = torch.cat(parts, dim=1)
    return torch.cos(ang).float().to(device), torch.sin(ang).float().to(device)


def apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """x [B, L, H, D]: rotate consecutive pairs (x0, x1), (x2, x3)... by ``freqs`` (:func:`rope_freqs`),
    as Wan does, in float32. Eager: one complex product (one kernel; the pairs written out take ten).
    Compiled: the pairs written out, which inductor fuses into one kernel (it generates no code for
    complex numbers)."""
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    if torch.compiler.is_compiling():
        a, b = xf[..., 0], xf[..., 1]
        c, s = freqs[None, :, None, :, 0], freqs[None, :, None, :, 1]
        return torch.stack([a * c - b * s, a * s + b * c], dim=-1).reshape(x.shape).type_as(x)
    rotated = torch.view_as_complex(xf) * torch.view_as_complex(freqs)[None, :, None, :]
    return torch.view_as_real(rotated).flatten(-2).type_as(x)


class SelfAttention(nn.Module):
    def __init__(self, dim, num_heads, eps, ops, device=None, dtype=None):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q = ops.Linear(dim, dim, device=device, dtype=dtype)
        self.k = ops.Linear(dim, dim, device=device, dtype=dtype)
        self.v = ops.Linear(dim, dim, device=device, dtype=dtype)
        self.o = ops.Linear(dim, dim, device=device, dtype=dtype)
        self.norm_q = ops.RMSNorm(dim, eps=eps, elementwise_affine=True, device=device, dtype=dtype)
        self.norm_k = ops.RMSNorm(dim, eps=eps, elementwise_affine=True, device=device, dtype=dtype)


class CrossAttention(SelfAttention):
    def __init__(self, dim, num_heads, eps, ops, image=False, device=None, dtype=None):
        super().__init__(dim, num_heads, eps, ops, device, dtype)
        if image:
            self.k_img = ops.Linear(dim, dim, device=device, dtype=dtype)
            self.v_img = ops.Linear(dim, dim, device=device, dtype=dtype)
            self.norm_k_img = ops.RMSNorm(dim, eps=eps, elementwise_affine=True, device=device, dtype=dtype)


class WanLayer(nn.Module):
    """One transformer layer of Wan 2.1 (its ``blocks[i]``): self-attention, cross-attention, feed-forward."""

    def __init__(self, dim, ffn_dim, num_heads, eps, cross_attn_norm, ops, image, device=None, dtype=None):
        super().__init__()
        self.norm1 = ops.LayerNorm(dim, eps, elementwise_affine=False, device=device, dtype=dtype)
        self.self_attn = SelfAttention(dim, num_heads, eps, ops, device, dtype)
        self.norm3 = (ops.LayerNorm(dim, eps, elementwise_affine=True, device=device, dtype=dtype)
                      if cross_attn_norm else nn.Identity())
        self.cross_attn = CrossAttention(dim, num_heads, eps, ops, image, device, dtype)
        self.norm2 = ops.LayerNorm(dim, eps, elementwise_affine=False, device=device, dtype=dtype)
        self.ffn = nn.Sequential(ops.Linear(dim, ffn_dim, device=device, dtype=dtype), nn.GELU(approximate="tanh"),
                                 ops.Linear(ffn_dim, dim, device=device, dtype=dtype))
        self.modulation = nn.Parameter(torch.empty(1, 6, dim, device=device, dtype=dtype))


class Head(nn.Module):
    def __init__(self, dim, out_dim, patch_size, eps, ops, device=None, dtype=None):
        super().__init__()
        self.norm = ops.LayerNorm(dim, eps, elementwise_affine=False, device=device, dtype=dtype)
        self.head = ops.Linear(dim, math.prod(patch_size) * out_dim, device=device, dtype=dtype)
        self.modulation = nn.Parameter(torch.empty(1, 2, dim, device=device, dtype=dtype))


class MLPProj(nn.Module):
    def __init__(self, in_dim, out_dim, ops, device=None, dtype=None):
        super().__init__()
        self.proj = nn.Sequential(ops.LayerNorm(in_dim, device=device, dtype=dtype),
                                  ops.Linear(in_dim, in_dim, device=device, dtype=dtype), nn.GELU(),
                                  ops.Linear(in_dim, out_dim, device=device, dtype=dtype),
                                  ops.LayerNorm(out_dim, device=device, dtype=dtype))


def _cast(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return p.to(dtype=like.dtype, device=like.device)


def _modulate(val, shift, scale, n_frames: int):
    """val (1 + scale) + shift, per frame: one fused multiply-add over the tokens."""
    b = val.shape[0]
    v4 = val.view(b, n_frames, val.shape[1] // n_frames, -1)
    return torch.addcmul(shift[:, :, None], v4, 1 + scale[:, :, None]).view_as(val)


def _gated_add(h, val, g, n_frames: int):
    """h + val * g, per frame: one fused multiply-add (the residual and its gate)."""
    b = h.shape[0]
    shape = (b, n_frames, h.shape[1] // n_frames, -1)
    return torch.addcmul(h.view(shape), val.view(shape), g[:, :, None]).view_as(h)


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    return t.view(t.shape[0], t.shape[1], heads, t.shape[2] // heads)


def attend(attention, q, k, v, mask=None):
    """q, k, v: [B, L, H, D] -> [B, Lq, H * D] through ``attention`` (which takes [B, H, L, D])."""
    return merge_heads(attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask))


def merge_heads(out: torch.Tensor) -> torch.Tensor:
    """An attention kernel's [B, H, L, D] as [B, L, H * D]."""
    return out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)


def layer_before_attention(blk, h, e0, freqs, n_frames: int, heads: int):
    """One transformer layer up to its self-attention: the modulation, and the queries, keys and
    values with RoPE ([B, L, H, D]). Fixed shapes per block: the part :meth:`CausalWan.compile` compiles."""
    mod = (_cast(blk.modulation, h).unsqueeze(0) + e0).unbind(2)  # 6 x [B, F, dim]
    sa = blk.self_attn
    y = _modulate(blk.norm1(h), mod[0], mod[1], n_frames)
    q = apply_rope(_split_heads(sa.norm_q(sa.q(y)), heads), freqs)
    k = apply_rope(_split_heads(sa.norm_k(sa.k(y)), heads), freqs)
    v = _split_heads(sa.v(y), heads)
    return q, k, v, mod


def layer_after_attention(blk, h, attn, mod, kv, n_frames: int, heads: int, attention):
    """The rest of the layer after self-attention (``attn``, the kernel's [B, H, L, D]): output projection
    and gate, cross-attention over the context's cached keys/values ``kv``, the feed-forward. The heads
    are merged here, so no input of a compiled graph reaches a linear layer: ComfyUI's fp8 linear clamps
    its input in place, and a mutated graph input makes inductor drop CUDA graphs."""
    sa, ca = blk.self_attn, blk.cross_attn
    h = _gated_add(h, sa.o(merge_heads(attn)), mod[2], n_frames)
    qc = _split_heads(ca.norm_q(ca.q(blk.norm3(h))), heads)
    out = attend(attention, qc, kv[0], kv[1])
    if len(kv) == 4:
        out = out + attend(attention, qc, kv[2], kv[3])
    h = h + ca.o(out)
    y = _modulate(blk.norm2(h), mod[3], mod[4], n_frames)
    return _gated_add(h, blk.ffn(y), mod[5], n_frames)


COMPILE_MODES = ("off", "layers", "layers + CUDA graphs")
_COMPILED: dict = {}


def compiled_layer_parts(mode: str, key: tuple = ()):
    """(before, after) layer functions for a compile mode: regional compilation (the two halves of one
    layer, the same code for all layers), fixed shapes (``dynamic=False``: a block's passes, denoising
    and refill alike, share one graph per half; :meth:`CausalWan.compile` runs passes of other lengths
    eagerly; the growing cache stays outside, in the self-attention). "layers + CUDA graphs" is
    inductor's ``reduce-overhead`` mode (CUDA graphs where the shapes allow; on the CPU it is plain
    compilation). ``key`` (a model's width, heads, block frames and dtype) gets its own copy of the code:
    dynamo keeps its compiled graphs, and its limit of 8 recompiles, per code object, so models and
    block sizes never use up one another's budget and fall back to eager unnoticed."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode {mode!r} is not one of {', '.join(COMPILE_MODES)}")
    if mode == "off":
        return layer_before_attention, layer_after_attention
    if (mode, key) not in _COMPILED:
        opts = dict(dynamic=False, mode="reduce-overhead" if "CUDA graphs" in mode else None)
        tag = f"{len(_COMPILED)}"
        _COMPILED[mode, key] = tuple(_or_eager(torch.compile(_own_code(fn, tag), **opts), fn, mode)
                                     for fn in (layer_before_attention, layer_after_attention))
    return _COMPILED[mode, key]


def _own_code(fn, tag: str):
    """``fn`` with a code object of its own (the same code, another name): its own dynamo cache."""
    code = fn.__code__.replace(co_name=f"{fn.__name__}_{tag}", co_qualname=f"{fn.__qualname__}_{tag}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


def cudagraph_skips() -> int:
    """How many times inductor has decided not to use CUDA graphs in this process (it says why only in a
    perf-hint log): the runner compares it before and after its first graphed pass."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return 0
    return int(counters["inductor"]["cudagraph_skips"])


def _or_eager(compiled, eager, mode: str):
    """The compiled function, or the eager one for good once compiling fails (no C++ compiler, no
    Triton for the GPU): the video is the same, only slower, and the log says why."""
    state = {"failed": False}

    def run(*args):
        if not state["failed"]:
            try:
                return compiled(*args)
            except Exception as e:  # noqa: BLE001 - only the compiler's own failures fall back
                if not type(e).__module__.startswith(("torch._dynamo", "torch._inductor")):
                    raise
                state["failed"] = True
                logging.warning(f"Tempo: compile '{mode}' failed here, running the layers uncompiled "
                                f"({type(e).__name__}: {str(e).splitlines()[0][:200]})")
        return eager(*args)
    return run


class CausalWan:
    """The causal forward over a Wan 2.1 module tree ``net`` (any builder; only the parameter
    names matter). Its sizes are read from the tree's weights."""

    def __init__(self, net: nn.Module, attention: Optional[Callable] = None):
        self.net = net
        self.attention = self.own_attention = attention or sdpa  # own: what a Speed of "auto" runs
        self.num_layers = len(net.blocks)
        self.num_heads = net.blocks[0].self_attn.num_heads
        self.dim = net.blocks[0].modulation.shape[-1]
        self.head_dim = self.dim // self.num_heads
        self.patch_size = tuple(net.patch_embedding.kernel_size)
        self.out_dim = net.head.head.weight.shape[0] // math.prod(self.patch_size)
        self.freq_dim = net.time_embedding[0].weight.shape[1]
        self.compile_mode, self.compiled_frames = "off", None
        self._fast = self._eager = (layer_before_attention, layer_after_attention)
        self.graphs = "off"  # CUDA graphs: "off", "pending" (until the first graphed pass), "on" or "skipped"
        self._skips_before = 0

    def compile(self, mode: str = "layers", frames: Optional[int] = None):
        """Run each layer's two halves compiled (see :func:`compiled_layer_parts`) in passes of ``frames``
        frames (a block; None: any pass); other passes (a prefix, a re-cache) run eagerly, so a prompt
        switch never waits for a compile. "off" runs every pass eagerly."""
        dtype = next(self.net.parameters()).dtype
        self._fast = compiled_layer_parts(mode, (self.dim, self.num_heads, frames, str(dtype)))
        self.compile_mode, self.compiled_frames = mode, frames
        self.graphs = "pending" if "CUDA graphs" in mode else "off"
        self._skips_before = cudagraph_skips()
        return self

    def _check_graphs(self, device: torch.device):
        """After the first graphed pass: did inductor capture CUDA graphs, or skip them (a mutated input,
        a CPU tensor, dynamic shapes)? Said once, loudly; ``graphs`` tells the benchmark and the node."""
        if device.type != "cuda":
            self.graphs = "skipped"
            return
        skipped = cudagraph_skips() > self._skips_before
        self.graphs = "skipped" if skipped else "on"
        if skipped:
            logging.warning("Tempo: inductor did not use CUDA graphs for the compiled layers (it logs why with "
                            "TORCH_LOGS=perf_hints); they run compiled without graphs")

    # -- pieces ----------------------------------------------------------------------------
    def embed_context(self, context: torch.Tensor, clip_fea: torch.Tensor | None = None):
        """Text (and CLIP image) tokens after the model's embedding; computed once per video."""
        ctx = self.net.text_embedding(context)
        if clip_fea is not None and getattr(self.net, "img_emb", None) is not None:
            return torch.cat([self.net.img_emb.proj(clip_fea), ctx], dim=1), clip_fea.shape[1]
        return ctx, 0

    def cross_kv(self, ctx: torch.Tensor, img_len: int = 0) -> list:
        """Per layer cross-attention keys/values of the context: the cross-attention cache."""
        out = []
        for blk in self.net.blocks:
            ca = blk.cross_attn
            txt = ctx[:, img_len:]
            kv = [self._heads(ca.norm_k(ca.k(txt))), self._heads(ca.v(txt))]
            if img_len:
                img = ctx[:, :img_len]
                kv += [self._heads(ca.norm_k_img(ca.k_img(img))), self._heads(ca.v_img(img))]
            out.append(kv)
        return out

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return _split_heads(t, self.num_heads)

    def _kernel(self, q, k, v, mask=None):
        """q, k, v: [B, L, H, D] -> the attention kernel's [B, H, Lq, D]."""
        return self.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask)

    def time_embed(self, t: torch.Tensor, dtype: torch.dtype = torch.float32):
        """t [B, F] (one timestep per latent frame) -> e [B, F, dim], e0 [B, F, 6, dim], computed in
        the activations' dtype (weights may be stored in fp8 and cast by the operations)."""
        e = self.net.time_embedding(sinusoidal_embedding_1d(self.freq_dim, t.flatten()).to(dtype))
        e = e.view(*t.shape, self.dim)
        return e, self.net.time_projection(e).unflatten(-1, (6, self.dim))

    def patchify(self, x: torch.Tensor):
        x = self.net.patch_embedding(x.float()).to(x.dtype)
        grid = tuple(x.shape[2:])
        return x.flatten(2).transpose(1, 2), grid

    def unpatchify(self, x: torch.Tensor, grid) -> torch.Tensor:
        b, c = x.shape[0], self.out_dim
        u = x[:, :math.prod(grid)].view(b, *grid, *self.patch_size, c)
        u = torch.einsum("bfhwpqrc->bcfphqwr", u)
        return u.reshape(b, c, *[i * j for i, j in zip(grid, self.patch_size)])

    # -- the transformer -------------------------------------------------------------------
    def self_attention(self, layer: int, q, k, v, cache=None, write: bool = False) -> torch.Tensor:
        """The frames' queries over the cached keys/values and their own ([B, L, H, D] each), as the
        kernel returns it ([B, H, L, D]). ``write``: the frames' own keys/values are kept by the cache
        (committed after the last layer)."""
        if cache is not None:
            k, v = cache.attend_kv(layer, k, v, write)
        return self._kernel(q, k, v)

    def forward_frames(self, x: torch.Tensor, t: torch.Tensor, ctx_kv: list, start_frame: int = 0,
                       cache=None, write: bool = False) -> torch.Tensor:
        """Frames ``start_frame ...`` of a video. x: [B, C, F, H, W] latent; t: [B, F] timesteps
        (0..1000); ctx_kv from :meth:`cross_kv`. With ``cache``, the frames attend to the cached
        frames and to each other; ``write`` stores their keys/values (the clean-context pass).
        Without ``cache``, full attention over the given frames.
        Returns the network output (flow / v prediction) [B, C_out, F, H, W]."""
        tokens, grid = self.patchify(x)
        n_frames = grid[0]
        freqs = rope_block(start_frame, n_frames, grid[1], grid[2], self.head_dim, str(x.device))
        e, e0 = self.time_embed(t, x.dtype)
        if cache is not None:
            cache.begin(start_frame, n_frames)
        fast = self.compile_mode != "off" and self.compiled_frames in (None, n_frames)
        before, after = self._fast if fast else self._eager
        if fast and self.compile_mode == "layers + CUDA graphs":
            torch.compiler.cudagraph_mark_step_begin()  # one pass = one step: the last pass's graph outputs are dead
        h = tokens
        for i, blk in enumerate(self.net.blocks):
            q, k, v, mod = before(blk, h, e0, freqs, n_frames, self.num_heads)
            attn = self.self_attention(i, q, k, v, cache, write)
            h = after(blk, h, attn, mod, ctx_kv[i], n_frames, self.num_heads, self.attention)
        if fast and self.graphs == "pending":
            self._check_graphs(x.device)
        if cache is not None and write:
            cache.commit(start_frame, n_frames)
        return self.head(h, e, grid)

    def head(self, h: torch.Tensor, e: torch.Tensor, grid) -> torch.Tensor:
        """The output head over the tokens of ``grid`` (frames, rows, cols), modulated per frame by ``e``
        [B, F, dim]: the network output [B, C_out, F, H, W]."""
        b, n_frames, tpf = h.shape[0], grid[0], grid[1] * grid[2]
        hm = (_cast(self.net.head.modulation, h).unsqueeze(0) + e.unsqueeze(2)).unbind(2)
        v4 = self.net.head.norm(h).view(b, n_frames, tpf, -1)
        out = self.net.head.head((v4 * (1 + hm[1][:, :, None]) + hm[0][:, :, None]).view(b, n_frames * tpf, -1))
        return self.unpatchify(out, grid)

    def forward(self, x, timestep, context, clip_fea=None, **kwargs):
        """Whole clip, full attention (Wan's own way of running these weights)."""
        ctx, img_len = self.embed_context(context, clip_fea)
        t = timestep.view(-1, 1).expand(x.shape[0], x.shape[2]) if timestep.ndim < 2 else timestep
        return self.forward_frames(x, t, self.cross_kv(ctx, img_len))


class CausalWanModel(nn.Module):
    """A plain-torch Wan 2.1 module tree (Wan's parameter names) with the causal forward of
    :class:`CausalWan` attached (``model.causal``; the methods below hand on to it)."""

    def __init__(self, model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=1536, ffn_dim=8960,
                 freq_dim=256, text_dim=4096, out_dim=16, num_heads=12, num_layers=30, qk_norm=True,
                 cross_attn_norm=True, eps=1e-6, device=None, dtype=None, operations=None,
                 attention: Optional[Callable] = None, **kwargs):
        super().__init__()
        ops = operations if operations is not None else nn
        self.patch_embedding = ops.Conv3d(in_dim, dim, kernel_size=patch_size, stride=patch_size, device=device,
                                          dtype=torch.float32)
        self.text_embedding = nn.Sequential(ops.Linear(text_dim, dim, device=device, dtype=dtype),
                                            nn.GELU(approximate="tanh"), ops.Linear(dim, dim, device=device, dtype=dtype))
        self.time_embedding = nn.Sequential(ops.Linear(freq_dim, dim, device=device, dtype=dtype), nn.SiLU(),
                                            ops.Linear(dim, dim, device=device, dtype=dtype))
        self.time_projection = nn.Sequential(nn.SiLU(), ops.Linear(dim, dim * 6, device=device, dtype=dtype))
        image = model_type == "i2v"
        self.blocks = nn.ModuleList([WanLayer(dim, ffn_dim, num_heads, eps, cross_attn_norm, ops, image, device, dtype)
                                     for _ in range(num_layers)])
        self.head = Head(dim, out_dim, patch_size, eps, ops, device, dtype)
        self.img_emb = MLPProj(1280, dim, ops, device, dtype) if image else None
        self.causal = CausalWan(self, attention)

    def embed_context(self, context, clip_fea=None):
        return self.causal.embed_context(context, clip_fea)

    def cross_kv(self, ctx, img_len=0):
        return self.causal.cross_kv(ctx, img_len)

    def forward_frames(self, *args, **kwargs):
        return self.causal.forward_frames(*args, **kwargs)

    def forward(self, x, timestep, context, clip_fea=None, **kwargs):
        return self.causal.forward(x, timestep, context, clip_fea)


def config_from_state_dict(sd: dict) -> dict:
    """Wan 2.1 configuration from tensor shapes (1.3B, 14B, t2v, i2v alike). Heads are 128 wide in
    every released Wan model (the shapes cannot tell), as ComfyUI also assumes."""
    w = sd["patch_embedding.weight"]
    dim, in_dim = w.shape[0], w.shape[1]
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    head_w = sd["head.head.weight"]
    patch = tuple(w.shape[2:])
    return {
        "model_type": "i2v" if "img_emb.proj.0.weight" in sd else "t2v",
        "patch_size": patch, "in_dim": in_dim, "dim": dim, "ffn_dim": sd["blocks.0.ffn.0.weight"].shape[0],
        "freq_dim": sd["time_embedding.0.weight"].shape[1], "text_dim": sd["text_embedding.0.weight"].shape[1],
        "out_dim": head_w.shape[0] // math.prod(patch), "num_heads": max(1, dim // 128), "num_layers": layers,
        "cross_attn_norm": "blocks.0.norm3.weight" in sd,
    }

"""Attention kernels for the causal path, by name. Plain torch; xformers and SageAttention are used
when installed and never required.

Every backend takes q, k, v as [B, H, L, D] and an optional bool mask [Lq, Lk] (True = may attend)
and returns [B, H, Lq, D]. The causal path attends without a mask (the KV cache holds exactly the
frames a block may see), so every kernel applies; a kernel that takes no mask hands a masked call
to PyTorch's SDPA.

* "sdpa": PyTorch's scaled_dot_product_attention, which picks its fastest kernel itself;
* "sdpa flash" / "sdpa cudnn" / "sdpa efficient" / "sdpa math": SDPA held to one kernel
  (torch.nn.attention.sdpa_kernel), to measure each or to rule one out;
* "xformers": xformers.ops.memory_efficient_attention;
* "sage": SageAttention's sageattn (8-bit QK^T: not exact, measured as such in the benchmark).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..errors import TempoError

SDPA_KERNELS = {"sdpa flash": "FLASH_ATTENTION", "sdpa cudnn": "CUDNN_ATTENTION",
                "sdpa efficient": "EFFICIENT_ATTENTION", "sdpa math": "MATH"}
BACKENDS = ("sdpa", *SDPA_KERNELS, "xformers", "sage")
EXACT = ("sdpa", *SDPA_KERNELS, "xformers")  # the same sum in another order; "sage" quantizes


def sdpa(q, k, v, mask=None):
    """q, k, v: [B, H, L, D]; mask: bool [Lq, Lk] (True = may attend) or None. Returns [B, H, Lq, D]."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _sdpa_held_to(kernel: str):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = getattr(SDPBackend, kernel)

    def run(q, k, v, mask=None):
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return run


def _xformers():
    import xformers.ops as xops

    def run(q, k, v, mask=None):
        bias = None
        if mask is not None:
            bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, float("-inf"))
            bias = bias.expand(q.shape[0], q.shape[1], *mask.shape)
        out = xops.memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias)
        return out.transpose(1, 2)
    return run


def _sage():
    from sageattention import sageattn

    def run(q, k, v, mask=None):
        if mask is not None:
            return sdpa(q, k, v, mask)
        return sageattn(q, k, v, tensor_layout="HND", is_causal=False)
    return run


def _make(name: str):
    if name == "sdpa":
        return sdpa
    if name in SDPA_KERNELS:
        return _sdpa_held_to(SDPA_KERNELS[name])
    if name == "xformers":
        return _xformers()
    return _sage()


def probe_inputs(device_type: str, dtype: torch.dtype, head_dim: int):
    """q, k, v laid out as the causal path calls a kernel: [B, H, L, D] views of [B, L, H, D] tensors
    (strided, not contiguous), the keys and values a slice of a larger cache buffer, at the model's head
    size; 2 heads, 64 queries over 160 keys (small, so the probe is quick on any device)."""
    g = torch.Generator().manual_seed(0)
    heads = 2
    q = torch.randn(1, 64, heads, head_dim, generator=g).to(device_type, dtype).transpose(1, 2)
    cache = torch.randn(2, 1, 224, heads, head_dim, generator=g).to(device_type, dtype)
    k, v = (cache[i, :, 32:192].transpose(1, 2) for i in range(2))
    return q, k, v


@functools.lru_cache(maxsize=None)
def _checked(name: str, device_type: str, dtype: torch.dtype, head_dim: int = 128):
    """The backend, once a call of it as the causal path makes it (see :func:`probe_inputs`) has run on
    this device and dtype and agreed with PyTorch's math kernel (or the reason it cannot)."""
    if name not in BACKENDS:
        raise TempoError(f"attention '{name}' is not one of: {', '.join(BACKENDS)}")
    try:
        fn = _make(name)
    except ImportError:
        raise TempoError(f"attention '{name}' needs the {name} package, which is not installed; pick 'sdpa' "
                         f"(PyTorch's own) or install it (pip install {'sageattention' if name == 'sage' else name})") from None
    q, k, v = probe_inputs(device_type, dtype, head_dim)
    what = f"on this {device_type} in {str(dtype).split('.')[-1]} at head size {head_dim}"
    try:
        got = fn(q, k, v).float()
    except Exception as e:  # noqa: BLE001 - the kernel says why it cannot run here; we name the fix
        raise TempoError(f"attention '{name}' cannot run {what} ({str(e).splitlines()[0][:160]}); pick 'sdpa', "
                         "which chooses a kernel that can") from None
    want = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    tol = 0.1 if name == "sage" else 3e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-4
    if got.shape != want.shape or not torch.allclose(got, want, rtol=tol, atol=tol):
        raise TempoError(f"attention '{name}' gives wrong results {what} (strided queries and a cache slice, "
                         f"off by up to {(got - want).abs().max().item() if got.shape == want.shape else 'shape'}); "
                         "pick 'sdpa'")
    return fn


def attention_backend(name: str, device=None, dtype: torch.dtype = torch.bfloat16, head_dim: int = 128):
    """The attention function called ``name``, checked to run on ``device`` in ``dtype`` at ``head_dim``
    (Wan 2.1's heads are 128 wide, the 1.3B's and the 14B's alike)."""
    dev = torch.device(device if device is not None else "cpu").type
    if dev == "cpu" and dtype == torch.float16:  # the pack computes in fp32 on the CPU
        dtype = torch.float32
    return _checked(name, dev, dtype, head_dim)


def probe_all(device=None, dtype: torch.dtype = torch.bfloat16, head_dim: int = 128) -> dict:
    """{backend: None when it runs here, else why not} for every backend (the benchmark names them all)."""
    out = {}
    for name in BACKENDS:
        try:
            attention_backend(name, device, dtype, head_dim)
            out[name] = None
        except TempoError as e:
            out[name] = str(e)
    return out


def available(device=None, dtype: torch.dtype = torch.bfloat16, head_dim: int = 128) -> list[str]:
    """The backends that run on this device (for the benchmark and the node's info)."""
    return [name for name, why in probe_all(device, dtype, head_dim).items() if why is None]

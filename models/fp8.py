"""fp8 matrix multiplication for linear layers (Hopper and Ada tensor cores): weights and activations
in float8_e4m3fn with a float32 scale, multiplied by ``torch._scaled_mm``. Plain torch.

Scaling, the two forms ``_scaled_mm`` takes:
* "per-tensor": one scale for the whole weight and one for the whole activation;
* "per-row": one scale per output channel of the weight and one per token of the activation,
  so one large row no longer costs every other row its precision.

What the CUDA kernels accept, and what this module does about it (PyTorch
aten/src/ATen/native/cuda/Blas.cpp, ``_scaled_mm_out_cuda``):
* the inner size K and the output size N must be multiples of 16; the row count M need not be
  (no padding: a layer whose K or N is not is multiplied in the activations' dtype instead);
* per-row scaling writes bf16 only: another activation dtype is multiplied into bf16 and cast;
* a bias is not taken with a float32 output: it is added after.

On the CPU, PyTorch's ``_scaled_mm`` takes per-tensor scales only (2.11) and is slow (seconds for one
1536-wide layer), so the CPU runs the same product as the kernel defines it, in float32: the
dequantized activation times the dequantized weight (``emulated_scaled_mm``). The tests check the
CUDA kernel against that product on a GPU.

Inside ComfyUI the same job is ComfyUI's own (weight_dtype "fp8_e4m3fn_fast" sets
``fp8_optimizations``; its ``fp8_linear`` is per-tensor). This module is the operations the pure
core, the tests and the benchmark build :class:`models.causal_wan.CausalWanModel` with
(``operations=fp8_operations("per-row")``), and the way the drift against bf16 is measured.
"""

from __future__ import annotations

import types

import torch
import torch.nn as nn

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max
SCALINGS = ("per-tensor", "per-row")
STORAGE = "storage"  # fp8 weights (per-row scaled) dequantized per call, multiplied in the activations' dtype


def quantize(x: torch.Tensor, scaling: str):
    """(x in fp8, float32 scale) with x ~= fp8 * scale; rows are the last-but-one dimension.

    No float32 copy of ``x``: its absolute maximum is read in x's own dtype, then one multiply by the
    reciprocal scale (in x's dtype), the clamp and the cast. The scale returned is the reciprocal of the
    factor actually applied, so fp8 * scale reproduces x to fp8's own precision in any dtype."""
    if scaling not in SCALINGS:
        raise ValueError(f"fp8 scaling {scaling!r} is not one of {SCALINGS}")
    amax = torch.linalg.vector_norm(x, float("inf"), dim=None if scaling == "per-tensor" else -1,
                                    keepdim=scaling != "per-tensor", dtype=torch.float32)
    factor = (FP8_MAX / amax.clamp(min=FP8_MAX / torch.finfo(x.dtype).max)).to(x.dtype)  # finite in x's dtype
    return torch.clamp(x * factor, -FP8_MAX, FP8_MAX).to(FP8), factor.float().reciprocal()


def kernel_fits(in_features: int, out_features: int) -> bool:
    """Whether the CUDA fp8 kernel takes a layer of this size (K and N multiples of 16)."""
    return in_features % 16 == 0 and out_features % 16 == 0


def emulated_scaled_mm(x8, w8t, scale_a, scale_b, bias=None, out_dtype=torch.float32):
    """``torch._scaled_mm``'s result computed in float32: (x8 * scale_a) @ (w8t * scale_b) + bias."""
    out = (x8.float() * scale_a) @ (w8t.float() * scale_b)
    return (out if bias is None else out + bias.float()).to(out_dtype)


def fp8_matmul(x: torch.Tensor, w8: torch.Tensor, w_scale: torch.Tensor, bias, scaling: str):
    """x [..., in] @ W.T (+ bias) in x's dtype, with W = w8 * w_scale ([out, in] fp8; scale scalar or
    [out, 1]); on CUDA by the fp8 tensor-core kernel, elsewhere by :func:`emulated_scaled_mm`."""
    shape, out_dtype = x.shape, x.dtype
    x8, x_scale = quantize(x.reshape(-1, shape[-1]), scaling)
    if scaling == "per-tensor":
        sa, sb = x_scale.reshape(()), w_scale.reshape(())
    else:
        sa, sb = x_scale.reshape(-1, 1), w_scale.reshape(1, -1)
    if x.device.type != "cuda":
        out = emulated_scaled_mm(x8, w8.t(), sa, sb, bias, out_dtype)
    else:
        kernel_dtype = torch.bfloat16 if scaling == "per-row" else out_dtype  # rowwise writes bf16 only
        fused_bias = bias is not None and kernel_dtype != torch.float32       # no bias with a float32 output
        out = torch._scaled_mm(x8, w8.t(), scale_a=sa, scale_b=sb, out_dtype=kernel_dtype,
                               bias=bias.to(kernel_dtype) if fused_bias else None)
        if bias is not None and not fused_bias:
            out = out + bias.to(out.dtype)
        out = out.to(out_dtype)
    return out.reshape(*shape[:-1], w8.shape[0])


class FP8Linear(nn.Linear):
    """nn.Linear whose weight is quantized to fp8 on first use (after loading) and multiplied in fp8;
    the weight then stays in fp8 (its memory is fp8 storage's) with its scale beside it. A layer the
    kernel cannot take (K or N not a multiple of 16) keeps fp8 storage and multiplies in the
    activations' dtype."""

    scaling = "per-tensor"

    def quantize_(self):
        if self.weight.dtype != FP8:
            w8, scale = quantize(self.weight.detach(), "per-row" if self.scaling == STORAGE else self.scaling)
            self.weight = nn.Parameter(w8, requires_grad=False)
            self.register_buffer("w_scale", scale, persistent=False)
        return self

    def forward(self, x):
        self.quantize_()
        if self.scaling == STORAGE or not kernel_fits(self.in_features, self.out_features):
            w = (self.weight.to(torch.float32) * self.w_scale).to(x.dtype)
            return torch.nn.functional.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))
        return fp8_matmul(x, self.weight, self.w_scale, self.bias, self.scaling)


def fp8_operations(scaling: str = "per-row"):
    """An ``operations`` namespace (as ComfyUI's) whose Linear multiplies in fp8 (``scaling`` one of
    SCALINGS) or only stores its weight in fp8 (``STORAGE``); the rest is torch.nn."""
    if scaling not in (*SCALINGS, STORAGE):
        raise ValueError(f"fp8 scaling {scaling!r} is not one of {SCALINGS}")
    linear = type(f"FP8Linear_{scaling.replace('-', '_')}", (FP8Linear,), {"scaling": scaling})
    return types.SimpleNamespace(Linear=linear, Conv3d=nn.Conv3d, LayerNorm=nn.LayerNorm, RMSNorm=nn.RMSNorm)


def quantize_model_(model: nn.Module) -> nn.Module:
    """Quantize every fp8 linear layer now (its high-precision weight is dropped)."""
    for m in model.modules():
        if isinstance(m, FP8Linear):
            m.quantize_()
    return model

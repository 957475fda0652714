"""fp8 matrix multiplication for linear layers (Hopper and Ada tensor cores; PyTorch runs the same
call on the CPU): weights and activations in float8_e4m3fn with a float32 scale, multiplied by
``torch._scaled_mm`` into the activations' dtype. Plain torch.

Scaling, the two forms ``_scaled_mm`` takes:
* "per-tensor": one scale for the whole weight and one for the whole activation;
* "per-row": one scale per output channel of the weight and one per token of the activation,
  so one large row no longer costs every other row its precision.

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
    """(x in fp8, float32 scale) with x ~= fp8 * scale; rows are the last-but-one dimension."""
    if scaling not in SCALINGS:
        raise ValueError(f"fp8 scaling {scaling!r} is not one of {SCALINGS}")
    xf = x.float()
    amax = xf.abs().amax() if scaling == "per-tensor" else xf.abs().amax(dim=-1, keepdim=True)
    scale = (amax / FP8_MAX).clamp(min=1e-12)
    return (xf / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale


def fp8_matmul(x: torch.Tensor, w8: torch.Tensor, w_scale: torch.Tensor, bias, scaling: str, out_dtype):
    """x [..., in] @ W.T with W = w8 * w_scale ([out, in] fp8; scale scalar or [out, 1])."""
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])
    rows = x2.shape[0]
    pad = (-rows) % 16  # the tensor-core kernels take row counts in multiples of 16
    if pad:
        x2 = torch.cat([x2, x2.new_zeros(pad, x2.shape[1])])
    x8, x_scale = quantize(x2, scaling)
    if scaling == "per-tensor":
        sa, sb = x_scale.reshape(()), w_scale.reshape(())
    else:
        sa, sb = x_scale.reshape(-1, 1), w_scale.reshape(1, -1)
    out = torch._scaled_mm(x8, w8.t(), scale_a=sa, scale_b=sb, out_dtype=out_dtype,
                           bias=None if bias is None else bias.to(out_dtype))
    return out[:rows].reshape(*shape[:-1], w8.shape[0])


class FP8Linear(nn.Linear):
    """nn.Linear whose weight is quantized to fp8 on first use (after loading) and multiplied in fp8;
    the weight then stays in fp8 (its memory is fp8 storage's) with its scale beside it."""

    scaling = "per-tensor"

    def quantize_(self):
        if self.weight.dtype != FP8:
            w8, scale = quantize(self.weight.detach(), "per-row" if self.scaling == STORAGE else self.scaling)
            self.weight = nn.Parameter(w8, requires_grad=False)
            self.register_buffer("w_scale", scale, persistent=False)
        return self

    def forward(self, x):
        self.quantize_()
        if self.scaling == STORAGE:
            w = (self.weight.to(torch.float32) * self.w_scale).to(x.dtype)
            return torch.nn.functional.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))
        out_dtype = x.dtype if x.dtype in (torch.bfloat16, torch.float16, torch.float32) else torch.bfloat16
        return fp8_matmul(x, self.weight, self.w_scale, self.bias, self.scaling, out_dtype)


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

"""Test scaffolding: import an authors' repository tree (Self Forcing, Causal Forcing, LongLive) on the
CPU, with only what cannot run here stood in, and their re-noising fed the pack's own noise."""

from __future__ import annotations

import contextlib
import os
import sys
import types

import torch

from tempo_pack.samplers import causal

PACKAGES = ("wan", "wan.modules", "utils", "pipeline", "demo_utils")
_NO_CUDA = dict(gpu=torch.device("cpu"), get_cuda_free_memory_gb=lambda *a: 0.0, DynamicSwapInstaller=object,
                log_gpu_memory=lambda *a, **k: None, move_model_to_device_with_memory_preservation=lambda *a, **k: None)
# modules that touch CUDA at import, or load real weights (T5, the VAE) when built
STUBS = {"utils.memory": _NO_CUDA, "demo_utils.memory": _NO_CUDA,
         "utils.wan_wrapper": dict(WanDiffusionWrapper=object, WanTextEncoder=object, WanVAEWrapper=object)}


def sdpa(q, k, v, *args, **kwargs):
    """[B, L, H, D] in and out, fp32 (flash attention's signature; no padding masks are used here)."""
    return torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                                            v.transpose(1, 2)).transpose(1, 2)


@contextlib.contextmanager
def authors_tree(root: str):
    """The tree's packages importable without their __init__ (which loads T5, the VAE...), the stubs in
    place, the attention kernel SDPA; everything removed again afterwards."""
    owned = lambda k: k.split(".")[0] in {p.split(".")[0] for p in PACKAGES}  # noqa: E731
    saved = {k: v for k, v in sys.modules.items() if owned(k)}
    for pkg in PACKAGES:
        m = types.ModuleType(pkg)
        m.__path__ = [os.path.join(root, *pkg.split("."))]
        sys.modules[pkg] = m
    for name, attrs in STUBS.items():
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
    sys.path.insert(0, root)
    try:
        import wan.modules.causal_model as cm
        import wan.modules.model as wm

        cm.attention, wm.flash_attention = sdpa, sdpa
        yield cm
    finally:
        sys.path.remove(root)
        for k in [k for k in sys.modules if owned(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


class BlockRenoise:
    """Stands for the scheduler's add_noise: x = (1 - sigma) x0 + sigma eps, sigma = t / 1000, with eps
    from the pack's re-noise generator of the block being made (``current['block']``), drawn
    [B, C, F, H, W] as the pack draws it."""

    def __init__(self, seed: int, shape: tuple, current: dict):
        self.seed, self.shape, self.current, self.gens = seed, shape, current, {}

    def add_noise(self, x0, noise, t):
        blk = self.current["block"]
        gen = self.gens.setdefault(blk, causal.block_generator(self.seed, blk, kind=1))
        eps = torch.randn(self.shape, generator=gen).permute(0, 2, 1, 3, 4).flatten(0, 1)
        s = t.float()[:, None, None, None] / 1000.0
        return (1 - s) * x0 + s * eps

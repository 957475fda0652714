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


# The tiny Wan both sides run: 12 heads of 128 because the authors' pipelines allocate their KV cache
# [B, tokens, 12, 128] (Wan 1.3B's heads); 4x6 latents -> 2x3 = 6 tokens per frame.
CFG = dict(dim=1536, num_heads=12, ffn_dim=256, num_layers=2, in_dim=4, out_dim=4, text_dim=32, freq_dim=32)
H, W, TPF = 4, 6, 6


def random_ours(seed: int = 0):
    """The pack's CausalWanModel of CFG with random weights (norm weights 1)."""
    from tempo_pack.models.causal_wan import CausalWanModel

    torch.manual_seed(seed)
    ours = CausalWanModel(**CFG).eval()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            p.copy_(torch.ones_like(p) if "norm" in name and name.endswith("weight") else torch.randn_like(p) * 0.05)
    return ours


def authors_model(cm, ours, local: int, sink: int, fpb: int):
    """The authors' CausalWanModel (module ``cm``) holding the same weights as ``ours``."""
    model = cm.CausalWanModel(model_type="t2v", patch_size=(1, 2, 2), text_len=512, local_attn_size=local,
                              sink_size=sink, **CFG).eval()
    model.load_state_dict(ours.state_dict(), strict=True)
    model.num_frame_per_block = fpb
    return model


class FlowGenerator(torch.nn.Module):
    """WanDiffusionWrapper's job: [B, F, C, H, W] <-> the model, flow -> x0 (x0 = x - t / 1000 * flow);
    also notes which block a denoising pass makes, for ``BlockRenoise``. Extra keyword arguments (LongLive's
    sink_recache_after_switch) go to the model."""

    def __init__(self, model, fpb: int, current: dict, scheduler=None):
        super().__init__()
        self.model, self.fpb, self.current, self._scheduler = model, fpb, current, scheduler

    def get_scheduler(self):
        return self._scheduler

    def forward(self, noisy_image_or_video, conditional_dict, timestep, kv_cache, crossattn_cache, current_start,
                **extra):
        if timestep.float().max() > 0:
            self.current["block"] = current_start // TPF // self.fpb
        x = noisy_image_or_video.permute(0, 2, 1, 3, 4)
        flow = self.model(x, t=timestep.float(), context=conditional_dict["prompt_embeds"], seq_len=10 ** 6,
                          kv_cache=kv_cache, crossattn_cache=crossattn_cache, current_start=current_start, **extra)
        x0 = x - timestep.float()[:, None, :, None, None] / 1000.0 * flow
        return flow.permute(0, 2, 1, 3, 4), x0.permute(0, 2, 1, 3, 4)


def video_noise(seed: int, shape: tuple, blocks: int) -> torch.Tensor:
    """The pack's start noise of every block, [B, F, C, H, W] as the authors' pipelines take it."""
    return torch.cat([causal.block_noise(shape, seed, b) for b in range(blocks)], dim=2).permute(0, 2, 1, 3, 4)


def no_text_encoder(text_prompts):
    return {"prompt_embeds": text_prompts}


NO_VAE = types.SimpleNamespace(decode_to_pixel=lambda x, use_cache=False: x)

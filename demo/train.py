"""Training the demo's causal video model: a Wan 2.1 network of tiny width (128 wide, 4 layers) that
makes the demo world's videos (demo/world.py) block by block, as the pack's causal sampler runs it.

Teacher forcing at the sampler's own schedule, on the latents of the demo's codec (the VAE space the
demo's Wan VAE file computes), in the diffusion model's space (ComfyUI's Wan 2.1 latent format):

- A clip is blocks of 3 latent frames. The network sees, in one pass, the clean frames of every block
  (timestep 0, as the sampler's refill pass writes them to the cache: Self Forcing's context_noise 0)
  and a noisy copy of every block (a flow noise level: one of the Self Forcing schedule's four, or any
  level down to 0.2, which video-to-video starts from); a mask lets each noisy block see only what the
  sampler's cache would hold when it makes that block: the first block's frames (the sink), the last
  9 frames before it, and itself. Clean frames see the same plus themselves (the refill pass).
- Loss: the clean latent the flow output implies (x0 = x - sigma v), mean squared.
- Half the clips switch prompt at a block boundary, the shape going on from where it is (what the
  timeline and the live page's switch ask); the switched blocks see the earlier frames under either
  prompt (LongLive's re-cache recomputes them under the new one). A quarter are "rolled": the sink
  block, then blocks far later in the video (up to about 40 s), as a long rolling video's cache holds
  them, with loss only on blocks whose window is complete. Prompts sometimes carry extra words, which
  the model learns to ignore (the live page takes typed text).

Deterministic on one machine: fixed seeds, two threads; ``python tempo.py train-demo``
writes demo/trained/causal_demo.safetensors and prints the losses (the README gives its wall time).
"""

from __future__ import annotations

import json
import math
import os
import random
import time

import torch

from ..models.causal_wan import CausalWanModel, layer_after_attention, layer_before_attention, rope_freqs
from ..samplers import causal
from . import text_encoder, world

MODEL = dict(dim=128, ffn_dim=384, num_heads=1, num_layers=4, in_dim=16, out_dim=16, text_dim=4096, freq_dim=256)
FPB = 3                 # latent frames per block (Self Forcing's chunk-wise models)
SINK, WINDOW = 3, 15    # frames the cache keeps: Self Forcing's preset (3 sink frames, 21 with the block)
PRESET = causal.CAUSAL_PRESETS["Self Forcing"]
SCHEDULE = tuple(causal.schedule_sigmas(list(PRESET.timesteps), PRESET.shift))
TRAINED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trained", "causal_demo.safetensors")
FILLERS = ["a", "the", "slowly", "bright", "on", "dark", "ground", "simple", "tiny", "video", "of", "scene"]
STEPS, BATCH, LR = 2000, 4, 2e-3


def frame_mask(clip_blocks: list[int]) -> torch.Tensor:
    """[2F, 2F] bool (True = may attend) over frames [clean frames; noisy frames] of a clip whose blocks sit
    at the video's block indices ``clip_blocks`` (block 0, the sink, first): what the sampler's cache
    (SINK + WINDOW frames) holds when each block is made or refilled."""
    n = len(clip_blocks) * FPB
    m = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
    start = [b * FPB for b in clip_blocks]      # video frame index of each clip block's first frame
    for i, s in enumerate(start):
        own = slice(i * FPB, (i + 1) * FPB)
        seen = [j for j, t in enumerate(start) if t < s and (t < SINK or t >= s - WINDOW)]
        for q in (own, slice(n + i * FPB, n + (i + 1) * FPB)):  # the clean (refill) pass and the noisy one
            for j in seen:
                m[q, j * FPB:(j + 1) * FPB] = True
        m[own, own] = True
        m[n + i * FPB:n + (i + 1) * FPB, n + i * FPB:n + (i + 1) * FPB] = True
    return m


def different(prompt: str, rng: random.Random) -> str:
    while True:
        other = rng.choice(world.PROMPTS)
        if other != prompt:
            return other


def sample_batch(rng: random.Random, process_in, size: int = BATCH):
    """(x0 [B, 16, F, h, w] diffusion space, contexts per clip block [blocks][B, L, 4096],
    context prompts for the clean frames [blocks][B, L, 4096], video block indices, loss weight per block)."""
    rolled = rng.random() < 0.2
    if rolled:
        gap = rng.randint(6, 200)                       # blocks between the sink and the recent ones
        clip_blocks = [0] + [gap + i for i in range(WINDOW // FPB + 1)]
        weights = [0.0] * (len(clip_blocks) - 1) + [1.0]  # only the block whose window is whole
    else:
        k = rng.choices([2, 3, 4, 5, 6, 7], weights=[3, 3, 3, 2, 1, 1])[0]  # up to 81 frames
        clip_blocks = list(range(k))
        weights = [1.0] * k
    fill = rng.randint(0, 3) if rng.random() < 0.3 else 0
    words = [rng.sample(FILLERS, fill) for _ in range(size)]
    x0s, noisy_ctx, clean_ctx = [], [[] for _ in clip_blocks], [[] for _ in clip_blocks]
    for b in range(size):
        a = rng.choice(world.PROMPTS)
        timeline, per_block = [(0, a)], [a] * len(clip_blocks)
        if rng.random() < 0.5 and len(clip_blocks) > 1:
            s = rng.randint(1, len(clip_blocks) - 1)
            if rolled:
                s = rng.randint(len(clip_blocks) - 2, len(clip_blocks) - 1)
            other = different(a, rng)
            switch_latent = clip_blocks[s] * FPB
            timeline.append((4 * switch_latent - 3, other))
            per_block = [a] * s + [other] * (len(clip_blocks) - s)
            recached = rng.random() < 0.5               # earlier frames seen under the new prompt (re-cache)
        else:
            recached = False
        idx = [f for blk in clip_blocks for f in range(blk * FPB, (blk + 1) * FPB)]
        x0s.append(process_in(world.latents_at(timeline, idx)))
        for i, p in enumerate(per_block):
            noisy_ctx[i].append(text_encoder.encode(" ".join([p] + words[b])))
            clean_ctx[i].append(text_encoder.encode(" ".join([per_block[-1] if recached else p] + words[b])))
    return (torch.cat(x0s), [torch.cat(c) for c in noisy_ctx], [torch.cat(c) for c in clean_ctx], clip_blocks,
            torch.tensor(weights))


def teacher_forcing(runner, x0, noisy, sigmas, noisy_ctx, clean_ctx, clip_blocks):
    """The network's flow output for the noisy frames, with the clean frames as the cache would hold them
    (one pass over [clean; noisy] frames, masked by :func:`frame_mask`)."""
    b, _, n, h, w = x0.shape
    x = torch.cat([x0, noisy], dim=2)
    tokens, grid = runner.patchify(x)
    tpf = grid[1] * grid[2]
    t = torch.cat([torch.zeros(b, n), (sigmas * 1000).repeat_interleave(FPB, dim=1)], dim=1)
    e, e0 = runner.time_embed(t, x.dtype)
    positions = torch.tensor([blk * FPB + i for blk in clip_blocks for i in range(FPB)])
    freqs = rope_freqs(torch.cat([positions, positions]), grid[1], grid[2], runner.head_dim, "cpu")
    mask = frame_mask(clip_blocks).repeat_interleave(tpf, 0).repeat_interleave(tpf, 1)
    kv = {id(c): runner.cross_kv(runner.embed_context(c)[0]) for c in [*noisy_ctx, *clean_ctx]}
    segments = ([(slice(i * FPB * tpf, (i + 1) * FPB * tpf), clean_ctx[i]) for i in range(len(clip_blocks))]
                + [(slice((n + i * FPB) * tpf, (n + (i + 1) * FPB) * tpf), noisy_ctx[i])
                   for i in range(len(clip_blocks))])
    h_ = tokens
    for layer, blk in enumerate(runner.net.blocks):
        q, k, v, mod = layer_before_attention(blk, h_, e0, freqs, 2 * n, runner.num_heads)
        attn = runner._kernel(q, k, v, mask)
        parts = []
        for seg, ctx in segments:
            f0, f1 = seg.start // tpf, seg.stop // tpf
            parts.append(layer_after_attention(blk, h_[:, seg], attn[:, :, seg], tuple(m[:, f0:f1] for m in mod),
                                               kv[id(ctx)][layer], f1 - f0, runner.num_heads, runner.attention))
        h_ = torch.cat(parts, dim=1)
    out = runner.head(h_[:, n * tpf:], e[:, n:], (n, grid[1], grid[2]))
    return out


def add_command(sub):
    """``train-demo`` on tempo.py's command line."""
    p = sub.add_parser("train-demo", help="train the demo's causal video model from scratch (CPU, seeded; "
                                          "writes demo/trained/causal_demo.safetensors)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"optimiser steps (default {STEPS}, what is committed)")
    p.add_argument("--output", default=TRAINED, help="where to write the weights")
    p.add_argument("--comfyui", default=None, help="ComfyUI folder (default: $COMFYUI_PATH or /opt/ComfyUI)")
    p.set_defaults(func=lambda args: (train(args.output, args.steps, comfyui=args.comfyui), 0)[1])


def init_weights(model):
    """Wan's own initialisation (Wan2.1 wan/modules/model.py init_weights): xavier-uniform linear layers with
    zero biases, the embeddings normal(0.02) (the patch embedding xavier over its flattened kernel), the
    output layer zero, the modulations normal / sqrt(dim); norms start at one."""
    dim = MODEL["dim"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("modulation"):
                p.normal_(0, dim ** -0.5)
            elif "norm" in name:
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            elif name.startswith("head.head."):
                p.zero_()
            elif name.startswith(("text_embedding", "time_embedding")) and p.ndim == 2:
                p.normal_(0, 0.02)
            elif name == "patch_embedding.weight":
                torch.nn.init.xavier_uniform_(p.view(p.shape[0], -1))
            elif p.ndim == 2:
                torch.nn.init.xavier_uniform_(p)
    return model


def train(out_path: str = TRAINED, steps: int = STEPS, log=print, comfyui: str | None = None) -> dict:
    """Train from scratch (seeded) and write the weights (Wan key names, float32 safetensors)."""
    from ..factory import checkpoints as factory
    from safetensors.torch import save_file

    factory.import_comfy(comfyui)
    import comfy.latent_formats

    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = random.Random(0)
    fmt = comfy.latent_formats.Wan21()
    model = init_weights(CausalWanModel(**MODEL))
    runner = model.causal
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    gen = torch.Generator().manual_seed(1)
    t0, losses = time.time(), []
    for step in range(steps):
        x0, noisy_ctx, clean_ctx, clip_blocks, weights = sample_batch(rng, fmt.process_in)
        bsz, blocks = x0.shape[0], len(clip_blocks)
        pick = torch.randint(0, len(SCHEDULE) + 2, (bsz, blocks), generator=gen)
        uniform = 0.2 + 0.8 * torch.rand(bsz, blocks, generator=gen)
        table = torch.tensor(SCHEDULE, dtype=torch.float32)
        sigmas = torch.where(pick < len(SCHEDULE), table[pick.clamp(max=len(SCHEDULE) - 1)], uniform)
        s = sigmas.repeat_interleave(FPB, dim=1)[:, None, :, None, None]
        eps = torch.randn(x0.shape, generator=gen)
        noisy = (1 - s) * x0 + s * eps
        v = teacher_forcing(runner, x0, noisy, sigmas, noisy_ctx, clean_ctx, clip_blocks)
        err = ((noisy - s * v) - x0).pow(2).mean(dim=(1, 3, 4))                   # [B, F]
        per_block = err.view(bsz, blocks, FPB).mean(-1)
        loss = (per_block * weights).sum() / (weights.sum() * bsz)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss))
        if step % 100 == 0 or step == steps - 1:
            recent = sum(losses[-100:]) / len(losses[-100:])
            log(f"step {step}: loss {recent:.5f} ({time.time() - t0:.0f} s)")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    record = {"steps": steps, "batch": BATCH, "final_loss": sum(losses[-100:]) / len(losses[-100:]),
              "seconds": round(time.time() - t0), "model": MODEL}
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, out_path,
              {"tempo.demo": json.dumps(record), "tempo.frames_per_block": str(FPB), "tempo.causal": "1",
               "tempo.family": "Self Forcing"})
    log(f"wrote {out_path}: {record}")
    return record

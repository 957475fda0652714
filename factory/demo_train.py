"""Training the demo's causal video model: a Wan 2.1 network of tiny width (256 wide, 4 layers, 2 heads of
128 as in every Wan model: ComfyUI reads the head count as width / 128) that makes the demo world's videos
(demo/world.py) block by block, as the pack's causal sampler runs it. It sits in the factory, beside the
demo's decoders (demo_codec.py): it writes a committed file, and it reads ComfyUI's Wan 2.1 latent format.

Two phases, on the latents of the demo's codec (the VAE space the demo's Wan VAE file computes), in the
diffusion model's space (ComfyUI's Wan 2.1 latent format). First, teacher forcing at the sampler's own
schedule:

- A clip is blocks of 3 latent frames. The network sees, in one pass, the clean frames of every block
  (timestep 0, as the sampler's refill pass writes them to the cache: Self Forcing's context_noise 0)
  and a noisy copy of every block (a flow noise level: one of the Self Forcing schedule's four, or any
  level down to 0.2, which video-to-video starts from); a mask lets each noisy block see only what the
  sampler's cache would hold when it makes that block: the first block's frames (the sink), the last
  15 frames before it, and itself. Clean frames see the same plus themselves (the refill pass).
- The clean frames of half the clips carry a little noise (up to CONTEXT_JITTER), still at timestep 0: in
  a long video the cache holds what the model made, never quite the truth, and a model that has only
  seen the truth there drifts block after block.
- Loss: the clean latent the flow output implies (x0 = x - sigma v), squared error on the codec's colour
  channels with the shape's patches weighted (:func:`shape_weighted_error`).
- Half the clips switch prompt at a block boundary, the shape going on from where it is (what the
  timeline and the live page's switch ask); the switched blocks see the earlier frames under either
  prompt (LongLive's re-cache recomputes them under the new one). A fifth are "rolled": the sink
  block, then blocks far later in the video (up to about 40 s), as a long rolling video's cache holds
  them, with loss only on blocks whose window is complete. Prompts sometimes carry extra words, which
  the model learns to ignore (the live page takes typed text).

Then self-forcing (:func:`self_forcing`): the network makes whole clips block by block through the pack's
own KV cache, four steps a block as the sampler runs them, each block from the blocks it made itself, and
learns at one step a block against the world's truth. It feeds the prompt as the sampler does, padded
to umT5's 512 tokens (:func:`sampler_context_kv`); the teacher-forcing phase reads the prompt's words
alone (cheaper; the model learns the world there, and how the sampler reads prompts here). Teacher
forcing alone gave a model whose shape faded within two blocks of its own making.

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

from ..demo import text_encoder, world
from ..models.causal_wan import CausalWanModel, layer_after_attention, layer_before_attention, rope_freqs
from ..samplers import causal, causal_plan
from .checkpoints import DEMO_TRAINED as TRAINED
from .checkpoints import import_comfy

MODEL = dict(dim=256, ffn_dim=512, num_heads=2, num_layers=4, in_dim=16, out_dim=16, text_dim=4096, freq_dim=256)
PRESET = causal.CAUSAL_PRESETS["Self Forcing"]
FPB = PRESET.frames_per_block  # latent frames per block (3: Self Forcing's chunk-wise models)
# frames the cache keeps besides the block: the preset's sink (3) and the window before the block (15; 21 in all)
SINK = PRESET.sink_size
WINDOW = causal.window_in_cache_terms(PRESET.local_attn_size, SINK, FPB)
SCHEDULE = tuple(causal.schedule_sigmas(list(PRESET.timesteps), PRESET.shift))
FILLERS = ["a", "the", "slowly", "bright", "on", "dark", "ground", "simple", "tiny", "video", "of", "scene"]
# Teacher forcing: 1251 updates of a cosine schedule 3000 long (the phase hands over to self-forcing part way,
# where the first full training of this recipe showed the self-forcing phase helped more than more teacher
# forcing), then SF_STEPS of self-forcing.
STEPS, HORIZON, BATCH, LR = 1251, 3000, 4, 2e-3
SHAPE_WEIGHT, SHAPE_THRESHOLD, REST_WEIGHT = 10.0, 0.05, 0.1
SF_STEPS, SF_BATCH, SF_LR, SF_BLOCKS = 1000, 4, 3e-4, 10  # the self-forcing phase
CONTEXT_JITTER = 0.5    # the largest noise (diffusion units) on the clean frames the noisy ones see


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
            timeline.append((causal_plan.frames_of(switch_latent, "text"), other))
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
    """The network's flow output for the noisy frames, with the clean frames ``x0`` as the cache would hold
    them (one pass over [clean; noisy] frames, masked by :func:`frame_mask`)."""
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


def shape_weighted_error(fmt, x0_hat, x0):
    """[B, F] the squared error of a predicted clean latent, per frame: on the codec's colour channels (0..2,
    in its colour units, -1..1) with the shape's patches weighing ``SHAPE_WEIGHT`` times the ground's (the
    shape covers 2 to 8 % of a frame; a plain mean is nearly satisfied by the ground alone, and a first
    training that used one learnt nothing but the ground), plus ``REST_WEIGHT`` times the mean error of the
    13 channels the codec keeps constant (in the diffusion model's space, so they stay put in the cache)."""
    raw, raw_hat = fmt.process_out(x0) / world.GAIN, fmt.process_out(x0_hat) / world.GAIN
    ground = torch.tensor(world.BACKGROUND * 2 - 1)
    shape = ((raw[:, :3] - ground).abs().amax(1) > SHAPE_THRESHOLD).to(x0.dtype)  # [B, F, h, w]
    w = 1 + (SHAPE_WEIGHT - 1) * shape
    colour = ((raw_hat[:, :3] - raw[:, :3]).pow(2).sum(1) * w).sum((-2, -1)) / (3 * w.sum((-2, -1)))
    rest = (x0_hat[:, 3:] - x0[:, 3:]).pow(2).mean(dim=(1, 3, 4))
    return colour + REST_WEIGHT * rest


def rollout_batch(rng: random.Random, process_in, size: int):
    """(true x0 [B, 16, F, h, w] from the video's start, the first prompts' contexts [B, L, 4096], the
    contexts switched to, the block they play from or None) for the self-forcing phase: 2 to SF_BLOCKS
    blocks; in half the batches every clip switches prompt at one block boundary."""
    k = rng.randint(2, SF_BLOCKS)
    switch = rng.randint(1, k - 1) if rng.random() < 0.5 else None
    firsts = [rng.choice(world.PROMPTS) for _ in range(size)]
    thens = [different(a, rng) for a in firsts]
    x0s = []
    for a, b in zip(firsts, thens):
        timeline = [(0, a)] + ([] if switch is None else [(causal_plan.frames_of(switch * FPB, "text"), b)])
        x0s.append(process_in(world.latents_at(timeline, list(range(k * FPB)))))
    encode = lambda prompts: torch.cat([text_encoder.encode(p) for p in prompts])  # noqa: E731
    return torch.cat(x0s), encode(firsts), encode(thens), switch


def sampler_context_kv(runner, cond: torch.Tensor) -> list:
    """The cross-attention keys and values of ``cond`` [B, L, 4096] as the sampler feeds it: padded with zero
    rows to umT5's 512 tokens (samplers/causal.py text_context). The text embedding works row by row, so
    the padding's rows are embedded once and repeated (the same values, 100x less work)."""
    n = cond.shape[1]
    rows = runner.embed_context(torch.cat([cond, cond.new_zeros(cond.shape[0], 1, cond.shape[2])], dim=1))[0]
    pad = rows[:, n:].expand(-1, causal.TEXT_TOKENS - n, -1)
    return runner.cross_kv(torch.cat([rows[:, :n], pad], dim=1))


def self_forcing(model, fmt, steps: int = SF_STEPS, log=print, batch: int = SF_BATCH) -> list[float]:
    """The second phase: the network makes each block as the pack's sampler does (its KV cache with the
    Self Forcing preset's sink and window, the schedule's four steps, the refill pass), from its own earlier
    blocks, and learns at one step picked at random per block, the cache held fixed (Self Forcing's
    training, arXiv 2506.08009 Sec. 3, gradient through one exit step). In this world the truth is one
    video per prompt, so the loss is the regression to it (:func:`shape_weighted_error`) where Self
    Forcing needs a distribution-matching loss."""
    from ..models.kv_cache import RollingKVCache

    runner = model.causal
    rng, gen = random.Random(2), torch.Generator().manual_seed(3)
    opt = torch.optim.AdamW(model.parameters(), lr=SF_LR, weight_decay=0.01, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    t0, losses = time.time(), []
    for step in range(steps):
        x0, cond, cond_then, switch = rollout_batch(rng, fmt.process_in, batch)
        b, blocks = x0.shape[0], x0.shape[2] // FPB
        tpf = (x0.shape[3] // runner.patch_size[1]) * (x0.shape[4] // runner.patch_size[2])
        cache = RollingKVCache(runner.num_layers, b, runner.num_heads, runner.head_dim, tpf, SINK, WINDOW,
                               full=False, in_place=False)
        with torch.no_grad():
            ctx_kv, kv_then = sampler_context_kv(runner, cond), sampler_context_kv(runner, cond_then)
        history = {}
        opt.zero_grad(set_to_none=True)
        loss = 0.0
        for k in range(blocks):
            frames = slice(k * FPB, (k + 1) * FPB)
            if k == switch:  # the timeline's switch: LongLive's re-cache under the new prompt, as the sampler
                ctx_kv = kv_then
                with torch.no_grad():
                    causal.recache(runner, history, ctx_kv, cache, k * FPB, FPB, False)
            exit_step = int(torch.randint(0, len(SCHEDULE), (1,), generator=gen))
            x = torch.randn(x0[:, :, frames].shape, generator=gen)
            for i, sigma in enumerate(SCHEDULE):
                with torch.set_grad_enabled(i == exit_step):
                    v = runner.forward_frames(x, torch.full((b, FPB), sigma * 1000.0), ctx_kv, k * FPB, cache)
                    block = x - sigma * v
                if i == exit_step:  # backward now: the cache it read changes with the next write
                    block_loss = shape_weighted_error(fmt, block, x0[:, :, frames]).mean() / blocks
                    block_loss.backward()
                    loss += float(block_loss.detach())
                block = block.detach()
                if i + 1 < len(SCHEDULE):
                    x = (1 - SCHEDULE[i + 1]) * block + SCHEDULE[i + 1] * torch.randn(block.shape, generator=gen)
            with torch.no_grad():
                runner.forward_frames(block, torch.zeros(b, FPB), ctx_kv, k * FPB, cache, write=True)
            history.update({k * FPB + i: block[:, :, i:i + 1] for i in range(FPB)})
        cache.clear()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss)
        if step % 25 == 0 or step == steps - 1:
            recent = sum(losses[-25:]) / len(losses[-25:])
            log(f"self-forcing step {step}: loss {recent:.5f} ({time.time() - t0:.0f} s)")
    return losses


def add_command(sub):
    """``train-demo`` on tempo.py's command line."""
    p = sub.add_parser("train-demo", help="train the demo's causal video model from scratch (CPU, seeded; "
                                          "writes demo/trained/causal_demo.safetensors)")
    p.add_argument("--steps", type=int, default=STEPS,
                   help=f"teacher-forcing steps (default {STEPS}, what is committed)")
    p.add_argument("--sf-steps", type=int, default=SF_STEPS,
                   help=f"self-forcing steps after them (default {SF_STEPS}, what is committed)")
    p.add_argument("--output", default=TRAINED, help="where to write the weights")
    p.add_argument("--comfyui", default=None, help="ComfyUI folder (default: $COMFYUI_PATH or /opt/ComfyUI)")
    p.set_defaults(func=_train_command)


def _train_command(args) -> int:
    train(args.output, args.steps, comfyui=args.comfyui, sf_steps=args.sf_steps)
    return 0


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


def train(out_path: str = TRAINED, steps: int = STEPS, log=print, comfyui: str | None = None,
          sf_steps: int = SF_STEPS) -> dict:
    """Train from scratch (seeded): ``steps`` of teacher forcing, then ``sf_steps`` of self-forcing; write
    the weights (Wan key names, float32 safetensors)."""
    import_comfy(comfyui)
    import comfy.latent_formats

    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = random.Random(0)
    fmt = comfy.latent_formats.Wan21()
    model = init_weights(CausalWanModel(**MODEL))
    runner = model.causal
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / HORIZON)))
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
        # the cache holds what the model made, not the truth: half the clips see their clean frames jittered
        jitter = CONTEXT_JITTER * torch.rand(bsz, generator=gen) * (torch.rand(bsz, generator=gen) < 0.5)
        context = x0 + jitter[:, None, None, None, None] * torch.randn(x0.shape, generator=gen)
        v = teacher_forcing(runner, context, noisy, sigmas, noisy_ctx, clean_ctx, clip_blocks)
        err = shape_weighted_error(fmt, noisy - s * v, x0)                        # [B, F]
        per_block = err.view(bsz, blocks, FPB).mean(-1)
        loss = (per_block * weights).sum() / (weights.sum() * bsz)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0 or step == steps - 1:
            recent = sum(losses[-100:]) / len(losses[-100:])
            log(f"step {step}: loss {recent:.5f} ({time.time() - t0:.0f} s)")
    sf_losses = self_forcing(model, fmt, sf_steps, log) if sf_steps else []
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    record = {"steps": steps, "horizon": HORIZON, "batch": BATCH, "sf_steps": sf_steps, "sf_batch": SF_BATCH,
              "model": MODEL}
    _save(model, out_path, record)
    tail = lambda xs: round(sum(xs[-100:]) / max(1, len(xs[-100:])), 5)  # noqa: E731
    log(f"wrote {out_path} after {time.time() - t0:.0f} s: {record}; final losses (mean of the last 100 steps): "
        f"teacher forcing {tail(losses)}, self-forcing {tail(sf_losses)}")
    return record


def _save(model, path: str, record: dict):
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, path,
              {"tempo.demo": json.dumps(record), "tempo.frames_per_block": str(FPB), "tempo.causal": "1",
               "tempo.family": "Self Forcing"})

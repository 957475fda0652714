"""Causal KV-cache video in real time: the whole table in one command. Random weights, one process.

    python benchmarks/causal_video.py                  # GPU: Wan 1.3B shape, 832x480, bf16, + a 14B-shape row
    python benchmarks/causal_video.py --scale small    # CPU: the same table at a small shape (always runnable)
    python benchmarks/causal_video.py --json out.json  # also write the rows

Per configuration (81 frames with the full cache, Self Forcing's 4 steps + refill, blocks of 3):
frames per second without decode and with decode (the streamed Wan VAE; the TAEHV tiny decoder;
each inline or on a worker overlapped with the next block), time to the first decoded frames,
per-block latency p50 / p95, peak GPU memory, KV-cache bytes. Also: a 30-second video (477 frames)
with the rolling cache (memory flat in length), fp8 matmul's drift from bf16 on the same weights
and noise (max / mean abs difference of the latents), where the time of a block goes
(torch.profiler: attention, linear layers, other kernels, host overhead), one 14B-shape row with
fp8 storage, and, with ``SELF_FORCING_PATH`` naming a guandeh17/Self-Forcing checkout, the
official ``CausalInferencePipeline`` on the same weights and GPU in the same run (its attention
falls back to PyTorch SDPA without flash-attn): pack / official is the headline ratio.

Published bars on one H100 at 832x480, 1.3B: Self Forcing 17.0 FPS and 0.69 s to the first frame
(chunk-wise); LongLive 20.7 FPS. Targets: >= 30 FPS with TAEHV decode, >= 20 FPS with the Wan VAE
streaming, first frame <= 0.35 s, p95 <= 1.2 x p50, >= 1.5 x the official pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import tempo  # noqa: E402

tempo.load_pack()
from tempo_pack.models import attention as attn  # noqa: E402
from tempo_pack.models import fp8  # noqa: E402
from tempo_pack.models.causal_wan import CausalWanModel  # noqa: E402
from tempo_pack.samplers import causal  # noqa: E402
from tempo_pack.video.overlap import run_in_order  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

# 12 heads of 128 in every shape but 14B: the official pipeline allocates its cache [B, tokens, 12, 128]
SCALES = {
    "small": dict(model=dict(dim=1536, ffn_dim=2048, num_heads=12, num_layers=2), width=128, height=96),
    "1.3b": dict(model=dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30), width=832, height=480),
    "14b": dict(model=dict(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40), width=832, height=480),
}
FRAMES = 21          # latent frames: 81 video frames, the trained length (the full cache)
LONG_FRAMES = 120    # 477 video frames: 30 s at 16 fps (the rolling cache)
FPB = 3
PRESET = causal.CAUSAL_PRESETS["Self Forcing"]
SIGMAS = tuple(causal.schedule_sigmas(list(PRESET.timesteps), PRESET.shift))


def sync(device):
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


def build(cfg, device, dtype, operations=None, seed=0):
    torch.manual_seed(seed)
    m = CausalWanModel(**cfg, in_dim=16, out_dim=16, text_dim=4096, freq_dim=256, device=device, dtype=dtype,
                       operations=operations).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.ones_like(p) if "norm" in name and name.endswith("weight") else torch.randn_like(p) * 0.02)
    return m


def video_frames(latent_frames: int) -> int:
    return 1 + 4 * (latent_frames - 1)


def measure(model, scale, device, dtype, cond, speed=causal.Speed(), frames=FRAMES, window=None, decoder=None,
            overlap=False, keep=False):
    """One video: the dict of a table row (and the latents when ``keep``)."""
    h, w = scale["height"] // 8, scale["width"] // 8
    spec = causal.VideoSpec(h, w, frames, FPB, SIGMAS, seed=0, sink=0 if window is None else PRESET.sink_size,
                            window=window)
    session = causal.CausalSession(model.causal, spec, device, dtype, speed)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    blocks, decoded, latents = [], [], []
    with torch.no_grad():
        sync(device)
        t0 = time.perf_counter()

        def made():
            last = t0
            for kind, latent in session.run(cond):
                sync(device)
                now = time.perf_counter()
                blocks.append(now - last)
                last = now
                if keep:
                    latents.append(latent.float().cpu())
                yield kind, latent

        def finish(kind, latent):
            if decoder is not None:
                decoder(latent)
                sync(device)
            decoded.append(time.perf_counter() - t0)

        run_in_order(finish, made(), overlap, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        total = time.perf_counter() - t0
    steady = blocks[1:] or blocks
    row = {"fps": video_frames(frames) / total, "first_s": decoded[0], "p50_ms": 1000 * statistics.median(steady),
           "p95_ms": 1000 * quantile(steady, 0.95), "cache_mib": session.cache_bytes() / 2**20,
           "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}
    return (row, torch.cat(latents, dim=2)) if keep else row


def quantile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def profile_block(model, scale, device, dtype, cond, speed):
    """Where one block's time goes: ms per block in attention, linear layers, other kernels, and the
    host's overhead (wall time the device sat idle), from torch.profiler over a 4-block video."""
    from torch.profiler import ProfilerActivity, profile

    measure(model, scale, device, dtype, cond, speed, frames=4 * FPB)  # warm
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync(device)
    t0 = time.perf_counter()
    with profile(activities=acts) as prof:
        measure(model, scale, device, dtype, cond, speed, frames=4 * FPB)
    wall = (time.perf_counter() - t0) * 1e3
    cuda = device.type == "cuda"
    groups = {"attention": 0.0, "linear": 0.0, "other kernels": 0.0}
    for ev in prof.key_averages():
        if cuda:
            t = getattr(ev, "self_device_time_total", 0.0) or getattr(ev, "self_cuda_time_total", 0.0)
        else:
            if not ev.key.startswith("aten::") or ev.key in ("aten::copy_", "aten::to", "aten::_to_copy"):
                continue
            t = ev.self_cpu_time_total
        k = ev.key.lower()
        if any(s in k for s in ("attention", "sdpa", "flash", "fmha", "cudnn_attn", "sage")):
            groups["attention"] += t
        elif any(s in k for s in ("gemm", "aten::mm", "aten::addmm", "aten::linear", "scaled_mm", "matmul", "cutlass")):
            groups["linear"] += t
        else:
            groups["other kernels"] += t
    per = {k: v / 1e3 / 4 for k, v in groups.items()}  # us -> ms, 4 blocks
    per["host overhead"] = max(0.0, wall / 4 - sum(per.values())) if cuda else None
    return per


def drift(a, b):
    d = (a - b).abs()
    return {"max_abs": d.max().item(), "mean_abs": d.mean().item(), "scale": a.abs().mean().item()}


# -- the official pipeline (guandeh17/Self-Forcing), on the same weights ---------------------------

def official_fps(state, cfg, scale, device, dtype, cond):
    """FPS of Self Forcing's CausalInferencePipeline.inference (no decode) on the same weights, or the
    reason it did not run."""
    root = os.environ.get("SELF_FORCING_PATH", "")
    if not os.path.isfile(os.path.join(root, "pipeline", "causal_inference.py")):
        return None, "SELF_FORCING_PATH does not name a guandeh17/Self-Forcing checkout"
    from authors_code import FlowGenerator, authors_tree, no_text_encoder

    class SameDtype(FlowGenerator):  # WanDiffusionWrapper hands x0 back in the flow's dtype
        def forward(self, *a, **k):
            flow, x0 = super().forward(*a, **k)
            return flow, x0.to(flow.dtype)

    h, w = scale["height"] // 8, scale["width"] // 8
    with authors_tree(root) as cm:
        import pipeline.causal_inference as ci
        import utils.scheduler as sch

        model = cm.CausalWanModel(model_type="t2v", patch_size=(1, 2, 2), text_len=512, local_attn_size=-1,
                                  sink_size=0, in_dim=16, out_dim=16, text_dim=4096, freq_dim=256, **cfg)
        model.load_state_dict(state, strict=True)
        model = model.to(device, dtype).eval()
        scheduler = sch.FlowMatchScheduler(shift=PRESET.shift, sigma_min=0.0, extra_one_step=True)
        scheduler.set_timesteps(1000, training=True)
        args = types.SimpleNamespace(denoising_step_list=list(PRESET.timesteps), warp_denoising_step=True,
                                     denoising_step_list_first_chunk=None, num_frame_per_block=FPB,
                                     independent_first_frame=False, context_noise=0)
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            pipe = ci.CausalInferencePipeline(args, str(device), generator=SameDtype(model, FPB, {"block": 0}, scheduler),
                                              text_encoder=no_text_encoder,
                                              vae=types.SimpleNamespace(decode_to_pixel=lambda x, use_cache=False: x))
        pipe.num_transformer_blocks, pipe.frame_seq_length = cfg["num_layers"], (h // 2) * (w // 2)
        noise = torch.randn(1, FRAMES, 16, h, w, device=device, dtype=dtype)
        with torch.no_grad(), contextlib.redirect_stdout(open(os.devnull, "w")):  # it prints every timestep
            pipe.inference(noise[:, :FPB], text_prompts=cond)  # warm-up (allocates its caches)
            pipe.kv_cache1 = None
            sync(device)
            t0 = time.perf_counter()
            pipe.inference(noise, text_prompts=cond)
            sync(device)
        total = time.perf_counter() - t0
    del model, pipe
    return video_frames(FRAMES) / total, None


# -- steering and the no-cache baseline -----------------------------------------------------------

def recompute_fps(model, scale, device, dtype, cond):
    """FPS with no cache: every call runs the whole context again with a block-causal mask (the tests' reference)."""
    from causal_reference import RecomputeModel

    h, w = scale["height"] // 8, scale["width"] // 8
    with torch.no_grad():
        ctx_kv = model.causal.cross_kv(model.causal.embed_context(causal.text_context(cond))[0])
        ref = RecomputeModel(model.causal, FPB, (h // 2) * (w // 2))
        settings = causal.RolloutSettings(FPB, SIGMAS, 0, FRAMES // FPB)
        sync(device)
        t0 = time.perf_counter()
        for _ in causal.rollout(ref, (1, 16, FPB, h, w), ctx_kv, None, settings, device, dtype):
            pass
        sync(device)
    return video_frames(FRAMES) / (time.perf_counter() - t0)


def switch_cost(model, scale, device, dtype, cond, speed):
    """(seconds of one re-cache, seconds per block) with LongLive's cache (3 sink frames, local_attn_size
    12), switching after the window has rolled."""
    h, w = scale["height"] // 8, scale["width"] // 8
    ll = causal.CAUSAL_PRESETS["LongLive"]
    window = causal.window_in_cache_terms(ll.local_attn_size, ll.sink_size, FPB)
    spec = causal.VideoSpec(h, w, FRAMES, FPB, SIGMAS, seed=0, sink=ll.sink_size, window=window)
    session = causal.CausalSession(model.causal, spec, device, dtype, speed)
    other = torch.randn(cond.shape, generator=torch.Generator().manual_seed(123)).to(cond)  # not the global RNG: build() reseeds it
    spent, original = [], causal.recache

    def timed_recache(*a, **k):
        sync(device)
        t = time.perf_counter()
        original(*a, **k)
        sync(device)
        spent.append(time.perf_counter() - t)

    causal.recache = timed_recache
    try:
        with torch.no_grad():
            sync(device)
            t0 = time.perf_counter()
            for _ in session.run(cond, switches={spec.num_blocks - 2: other}):
                pass
            sync(device)
    finally:
        causal.recache = original
    return spent[0], (time.perf_counter() - t0 - spent[0]) / spec.num_blocks


def v2v_fps(model, scale, device, dtype, cond, speed, vae):
    """Output FPS of streaming video-to-video at strength 0.7 with the Wan VAE's streamed encode and decode."""
    from tempo_pack.nodes.wan_models import StreamingWanDecoder, StreamingWanEncoder

    h, w = scale["height"] // 8, scale["width"] // 8
    video = torch.rand(video_frames(FRAMES), scale["height"], scale["width"], 3)
    spec = causal.VideoSpec(h, w, FRAMES, FPB, causal.strength_sigmas(SIGMAS, 0.7), seed=0)
    session = causal.CausalSession(model.causal, spec, device, dtype, speed)
    dec, enc = StreamingWanDecoder(vae), StreamingWanEncoder(vae)

    def source():
        for b in range(spec.num_blocks):
            a, e = b * FPB, (b + 1) * FPB
            yield enc.encode(video[0 if a == 0 else 4 * a - 3:4 * (e - 1) + 1]).to(device, dtype)

    with torch.no_grad():
        sync(device)
        t0 = time.perf_counter()
        for _, latent in session.run(cond, source=source()):
            dec.decode(latent)
        sync(device)
    return video_frames(FRAMES) / (time.perf_counter() - t0)


# -- decoders (ComfyUI's Wan VAE, the TAEHV architecture), when ComfyUI is importable -------------

def decoders():
    """{"Wan VAE": decoder factory, "TAEHV": ...} or the reason there are none."""
    try:
        from tempo_pack.factory import checkpoints as factory
        factory.import_comfy(cpu=not torch.cuda.is_available())  # on a GPU, ComfyUI uses it
        import comfy.sd
        from tempo_pack.nodes.wan_models import StreamingTAEHVDecoder, StreamingWanDecoder
    except Exception as e:  # noqa: BLE001 - the benchmark reports and goes on
        return {}, None, f"decode rows skipped: {e}"
    vae = comfy.sd.VAE(sd=factory.wan_vae_state_dict())
    taehv = factory.write_taehv(os.path.join(tempfile.mkdtemp(), "taew2_1.pth"))

    def wan():
        d = StreamingWanDecoder(vae)
        d.decode(torch.zeros(1, 16, 1, 8, 8))  # loads the VAE
        d.close()
        d = StreamingWanDecoder(vae)
        return lambda latent: d.decode(latent, load=False)

    def tiny():
        StreamingTAEHVDecoder(taehv).decode(torch.zeros(1, 16, 1, 8, 8))  # first-call costs out of the rows
        d = StreamingTAEHVDecoder(taehv)
        return lambda latent: d.decode(latent, load=False)
    return {"Wan VAE": wan, "TAEHV": tiny}, vae, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=("small", "1.3b"), default=None, help="default: 1.3b on a GPU, small on the CPU")
    ap.add_argument("--no-14b", action="store_true", help="skip the 14B-shape row")
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled rows")
    ap.add_argument("--json", default=None, help="write the rows here too")
    a = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scale_name = a.scale or ("1.3b" if device.type == "cuda" else "small")
    scale = SCALES[scale_name]
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (no GPU figures)"
    print(f"# {gpu}; torch {torch.__version__}; scale {scale_name}: {scale['width']}x{scale['height']}, "
          f"{video_frames(FRAMES)} frames, blocks of {FPB}, {len(SIGMAS)} steps + refill, {dtype}")
    model = build(scale["model"], device, dtype)
    cond = torch.randn(1, 512, 4096, device=device, dtype=dtype)
    rows, notes = [], {}

    def row(name, **kw):
        t = time.perf_counter()
        r = measure(model if "model" not in kw else kw.pop("model"), scale, device, dtype, cond, **kw)
        r["name"] = name
        rows.append(r)
        print(f"  {name}: {r['fps']:.2f} FPS, first {r['first_s']:.3f} s, p50 {r['p50_ms']:.1f} ms, "
              f"p95 {r['p95_ms']:.1f} ms ({time.perf_counter() - t:.1f} s)", flush=True)
        return r

    measure(model, scale, device, dtype, cond, frames=FPB)  # warm-up
    joined = row("joined cache (the authors' way), eager, no decode", speed=causal.Speed(in_place_cache=False))
    best = row("in-place cache, eager, no decode")
    best_speed = causal.Speed()
    for name in attn.available(device, dtype):
        if name != "sdpa":
            row(f"in-place cache, attention '{name}', no decode", speed=causal.Speed(attention=name))
    if not a.no_compile:
        modes = ["layers"] + (["layers + CUDA graphs"] if device.type == "cuda" else [])
        for mode in modes:
            t = time.perf_counter()
            measure(model, scale, device, dtype, cond, causal.Speed(compile=mode), frames=2 * FPB)
            notes[f"compile '{mode}': first video (compiling)"] = f"{time.perf_counter() - t:.1f} s"
            r = row(f"in-place cache, compiled '{mode}', no decode", speed=causal.Speed(compile=mode))
            if r["fps"] > best["fps"]:
                best, best_speed = r, causal.Speed(compile=mode)
    notes["fastest"] = best["name"]
    notes["in-place / joined (no decode)"] = f"{best['fps'] / joined['fps']:.2f}x"

    dec, vae, why = decoders()
    if why:
        notes["decode"] = why
    blocks = FRAMES // FPB
    for dname, make in dec.items():
        for overlap in (False, True):
            r = row(f"fastest + {dname} decode{' on a worker' if overlap else ''}", speed=best_speed, decoder=make(),
                    overlap=overlap)
            if not overlap:
                spent = video_frames(FRAMES) / r["fps"] - video_frames(FRAMES) / best["fps"]
                notes[f"{dname} decode per block, inline"] = f"{1000 * spent / blocks:.1f} ms"

    window = causal.window_in_cache_terms(PRESET.local_attn_size, PRESET.sink_size, FPB)
    short = row("fastest, rolling cache (21-frame window, 3 sinks), 81 frames", speed=best_speed, window=window)
    long = row(f"fastest, rolling cache, 30 s ({video_frames(LONG_FRAMES)} frames)", speed=best_speed, window=window,
               frames=LONG_FRAMES)
    notes["rolling cache bytes, 81 vs 477 frames"] = f"{short['cache_mib']:.1f} / {long['cache_mib']:.1f} MiB"

    # fp8 matmul on the same weights and noise: speed and drift from bf16
    _, ref = measure(model, scale, device, dtype, cond, best_speed, keep=True)
    state = model.state_dict()
    for scaling in fp8.SCALINGS:
        try:
            m8 = build(scale["model"], device, dtype, fp8.fp8_operations(scaling))
            m8.load_state_dict(state)
            fp8.quantize_model_(m8)
            r = row(f"fp8 matmul ({scaling}), eager, no decode", model=m8, speed=causal.Speed())
            _, lat = measure(m8, scale, device, dtype, cond, causal.Speed(), keep=True)
            notes[f"fp8 {scaling} drift vs {str(dtype).split('.')[-1]} (latents)"] = drift(ref, lat)
            del m8
        except Exception as e:  # noqa: BLE001 - e.g. no fp8 kernel on this GPU
            notes[f"fp8 {scaling}"] = f"skipped: {type(e).__name__}: {str(e)[:160]}"

    recache_s, block_s = switch_cost(model, scale, device, dtype, cond, best_speed)
    notes["prompt switch with LongLive's re-cache (after the window rolled)"] = \
        f"{recache_s:.3f} s = {recache_s / block_s:.2f} of a block's time (target: at most 1)"
    if vae is not None:
        notes["video-to-video, strength 0.7, streamed Wan VAE encode + decode"] = \
            f"{v2v_fps(model, scale, device, dtype, cond, best_speed, vae):.2f} FPS"
    notes["no cache (recompute the context every block), no decode"] = \
        f"{recompute_fps(model, scale, device, dtype, cond):.2f} FPS"
    notes["where a block's time goes (ms, in-place eager)"] = profile_block(model, scale, device, dtype, cond,
                                                                           causal.Speed())
    fps, why = official_fps(state, scale["model"], scale, device, dtype, cond)
    if fps is None:
        notes["official pipeline"] = f"not run: {why}"
    else:
        rows.append({"name": "official Self Forcing CausalInferencePipeline, no decode", "fps": fps})
        notes["pack / official (no decode, fastest)"] = f"{best['fps'] / fps:.2f}x"
        print(f"  official pipeline: {fps:.2f} FPS", flush=True)

    if device.type == "cuda" and not a.no_14b:
        del model
        torch.cuda.empty_cache()
        try:
            big = build(SCALES["14b"]["model"], device, dtype, fp8.fp8_operations(fp8.STORAGE))
            fp8.quantize_model_(big)
            r = row("14B shape, fp8 storage, in-place, eager, no decode", model=big, speed=causal.Speed())
            notes["14B weights (fp8)"] = f"{sum(p.numel() * p.element_size() for p in big.parameters()) / 2**30:.1f} GiB"
        except torch.cuda.OutOfMemoryError as e:
            notes["14B shape"] = f"does not fit: {str(e)[:160]}"

    print()
    print("| configuration | FPS | first frames (s) | block p50 (ms) | block p95 (ms) | peak GPU (GiB) | KV cache (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r['fps']:.2f}"] + [("–" if r.get(k) is None else f"{r[k]:.{p}f}") for k, p in
                                      (("first_s", 3), ("p50_ms", 1), ("p95_ms", 1), ("peak_gib", 2), ("cache_mib", 1))]
        print(f"| {r['name']} | " + " | ".join(cells) + " |")
    print()
    for k, v in notes.items():
        print(f"- {k}: {v}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": gpu, "scale": scale_name, "rows": rows, "notes": notes}, f, indent=1)


if __name__ == "__main__":
    main()

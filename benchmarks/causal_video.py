"""Causal KV-cache video: frames per second, first-frame latency, cache memory, and where the
time goes, against recomputing the context every block. Random weights, one process.

    python benchmarks/causal_video.py                    # CPU: a small model at 128x96 (always runnable)
    python benchmarks/causal_video.py --scale 1.3b       # GPU: Wan 1.3B shape at 832x480, 81 frames, bf16

First bar on one H100 (Self Forcing's published figures): 17.0 FPS, 0.69 s to the first frame.
Steering: the cost of a prompt switch with LongLive's re-cache (target: at most one block's time),
and video-to-video FPS including the streamed Wan VAE encode and decode; FPS with the TAEHV
tiny decoder (taew2_1's architecture) in place of the Wan VAE.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import tempo  # noqa: E402

tempo.load_pack()
from tempo_pack.models.causal_wan import CausalWanModel  # noqa: E402
from tempo_pack.samplers import causal  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from causal_reference import RecomputeModel  # noqa: E402  the baseline is the tests' reference

SCALES = {
    "small": dict(model=dict(dim=256, ffn_dim=1024, num_heads=2, num_layers=4), width=128, height=96, frames=21),
    "1.3b": dict(model=dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30), width=832, height=480, frames=21),
}


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def build(cfg, device, dtype):
    m = CausalWanModel(**cfg, in_dim=16, out_dim=16, text_dim=4096, freq_dim=256, device=device, dtype=dtype).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.ones_like(p) if "norm" in name and name.endswith("weight") else torch.randn_like(p) * 0.02)
    return m


def run(model, args, device, dtype, recompute=False, decoder=None):
    """Returns (seconds total, seconds to first decoded block, cache bytes)."""
    fpb, h, w = 3, args.height // 8, args.width // 8
    sigmas = causal.schedule_sigmas(*causal.SCHEDULES["Self Forcing"])
    spec = causal.VideoSpec(h, w, args.frames, fpb, tuple(sigmas), seed=0)
    session = causal.CausalSession(model.causal, spec, device, dtype)
    cond = torch.randn(1, 512, 4096, device=device, dtype=dtype)
    with torch.no_grad():
        if recompute:  # no cache: every call runs the whole context again with a block-causal mask
            ctx_kv = model.causal.cross_kv(model.causal.embed_context(cond)[0])
            ref = RecomputeModel(model.causal, fpb, session.tokens_per_frame)
            settings = causal.RolloutSettings(fpb, tuple(sigmas), 0, spec.num_blocks)
            blocks = (b.latent for b in causal.rollout(ref, (1, 16, fpb, h, w), ctx_kv, None, settings, device, dtype))
        else:
            blocks = (latent for _, latent in session.run(cond))
        sync(device)
        t0 = time.perf_counter()
        first = None
        for latent in blocks:
            if decoder is not None:
                decoder(latent)
            if first is None:
                sync(device)
                first = time.perf_counter() - t0
        sync(device)
        return time.perf_counter() - t0, first, session.cache_bytes()


def switch_cost(model, args, device, dtype):
    """(seconds of one re-cache, seconds per block) in a rolling run with LongLive's cache (3 sink
    frames, local_attn_size 12 = window 6 + one block of 3), switching where the window has rolled."""
    fpb, h, w = 3, args.height // 8, args.width // 8
    sigmas = causal.schedule_sigmas(*causal.SCHEDULES["Self Forcing"])
    spec = causal.VideoSpec(h, w, args.frames, fpb, tuple(sigmas), seed=0, sink=3, window=6)
    session = causal.CausalSession(model.causal, spec, device, dtype)
    cond, other = (torch.randn(1, 512, 4096, device=device, dtype=dtype) for _ in range(2))
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
    total = time.perf_counter() - t0
    return spent[0], (total - spent[0]) / spec.num_blocks


def v2v_fps(model, args, device, dtype, vae):
    """Output FPS of streaming video-to-video with encode and decode, and of text-to-video with decode."""
    from tempo_pack.nodes.wan_models import StreamingWanDecoder, StreamingWanEncoder

    fpb, h, w = 3, args.height // 8, args.width // 8
    frames_out = 1 + 4 * (args.frames - 1)
    video = torch.rand(frames_out, args.height, args.width, 3)
    sigmas = causal.strength_sigmas(causal.schedule_sigmas(*causal.SCHEDULES["Self Forcing"]), 0.7)
    out = {}
    for name in ("t2v", "v2v"):
        spec = causal.VideoSpec(h, w, args.frames, fpb, tuple(sigmas) if name == "v2v" else
                                tuple(causal.schedule_sigmas(*causal.SCHEDULES["Self Forcing"])), seed=0)
        session = causal.CausalSession(model.causal, spec, device, dtype)
        cond = torch.randn(1, 512, 4096, device=device, dtype=dtype)
        dec, enc = StreamingWanDecoder(vae), StreamingWanEncoder(vae)

        def source():
            for b in range(spec.num_blocks):
                a, e = b * fpb, (b + 1) * fpb
                yield enc.encode(video[0 if a == 0 else 4 * a - 3:4 * (e - 1) + 1]).to(device, dtype)

        with torch.no_grad():
            sync(device)
            t0 = time.perf_counter()
            for _, latent in session.run(cond, source=source() if name == "v2v" else None):
                dec.decode(latent)
            sync(device)
        out[name] = frames_out / (time.perf_counter() - t0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=list(SCALES), default=None)
    ap.add_argument("--no-vae", action="store_true", help="skip the Wan VAE (needs ComfyUI)")
    args0 = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scale = args0.scale or ("1.3b" if device.type == "cuda" else "small")
    s = SCALES[scale]
    args = argparse.Namespace(width=s["width"], height=s["height"], frames=s["frames"])
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build(s["model"], device, dtype)
    frames_out = 1 + 4 * (args.frames - 1)
    print(f"{device} scale {scale}: {args.width}x{args.height}, {args.frames} latent frames ({frames_out} frames), "
          f"blocks of 3, 4 steps + refill, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params")
    run(model, argparse.Namespace(width=args.width, height=args.height, frames=3), device, dtype)  # warm-up

    total, first, cache_bytes = run(model, args, device, dtype)
    print(f"cached rollout: {frames_out / total:.2f} FPS, first block after {first:.2f} s, "
          f"cache {cache_bytes / 2**20:.1f} MiB (full), no VAE")
    total_r, first_r, _ = run(model, args, device, dtype, recompute=True)
    print(f"recomputing the context every block: {frames_out / total_r:.2f} FPS ({total_r / total:.1f}x slower)")
    recache_s, block_s = switch_cost(model, args, device, dtype)
    print(f"prompt switch with re-cache (9 frames recomputed, LongLive's cache): {recache_s:.3f} s = "
          f"{recache_s / block_s:.2f} of a block's time ({block_s:.3f} s per block)")

    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    small = argparse.Namespace(width=args.width, height=args.height, frames=min(args.frames, 6))
    with profile(activities=acts) as prof:
        run(model, small, device, dtype)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    groups = {"attention": 0.0, "linear": 0.0, "other": 0.0}
    for ev in prof.key_averages():
        t = getattr(ev, key, 0.0)
        if "attention" in ev.key or "sdpa" in ev.key or "flash" in ev.key or "bmm" in ev.key:
            groups["attention"] += t
        elif ev.key in ("aten::addmm", "aten::mm", "aten::linear", "aten::matmul") or "gemm" in ev.key:
            groups["linear"] += t
        elif ev.key.startswith("aten::") and ev.key not in ("aten::copy_", "aten::to", "aten::_to_copy"):
            groups["other"] += t
    tot = sum(groups.values()) or 1.0
    print("time in the network: " + ", ".join(f"{k} {100 * v / tot:.0f}%" for k, v in groups.items()))

    if not args0.no_vae:
        try:
            from tempo_pack.factory import checkpoints as factory
            factory.import_comfy()
            import comfy.sd
            from tempo_pack.nodes.wan_models import StreamingWanDecoder
            vae = comfy.sd.VAE(sd=factory.wan_vae_state_dict())
        except Exception as e:  # noqa: BLE001 - the benchmark reports and goes on
            print(f"VAE part skipped: {e}")
            return
        dec = StreamingWanDecoder(vae)
        total_v, first_v, _ = run(model, args, device, dtype, decoder=dec.decode)
        print(f"with streaming decode: {frames_out / total_v:.2f} FPS, first decoded frames after {first_v:.2f} s; "
              f"VAE share {100 * (total_v - total) / total_v:.0f}% of the time")
        import tempfile

        from tempo_pack.nodes.wan_models import StreamingTAEHVDecoder
        tiny = StreamingTAEHVDecoder(factory.write_taehv(os.path.join(tempfile.mkdtemp(), "taew2_1.pth")))
        total_t, first_t, _ = run(model, args, device, dtype, decoder=tiny.decode)
        print(f"with the TAEHV decoder (taew2_1 architecture, random weights): {frames_out / total_t:.2f} FPS, first "
              f"decoded frames after {first_t:.2f} s; decoder share {100 * (total_t - total) / total_t:.0f}% of the time")
        fps = v2v_fps(model, args, device, dtype, vae)
        print(f"video-to-video at strength 0.7 (2 steps + refill), streamed encode + decode: {fps['v2v']:.2f} FPS; "
              f"text-to-video (4 steps) with decode in the same run: {fps['t2v']:.2f} FPS")


if __name__ == "__main__":
    main()

"""Check the hand-set Wan 2.1 VAE codec (wan_codec.py) in real ComfyUI trees.

    python check_codec.py                 # every tree below, one subprocess each, then a table
    python check_codec.py --smooth        # also decode with the smooth (bilinear-like) decoder
                                          # and compare it with a plain-torch reference
    COMFYUI_PATH=/opt/ComfyUI python check_codec.py --one   # one tree, in this process (JSON line)

Per tree: comfy.sd.VAE(sd=codec_wan_vae_state_dict()) on the CPU, encode a synthetic 33-frame
128x96 clip (24x24 red square moving right 2 px/frame on dark grey), compare latent channels 0..2
with the direct 8x8 / (1, 4, 4, ...)-frame averages of 2x-1, decode, compare with that average
upsampled back (nearest, frames repeated), and decode again block by block with the pack's
tempo_pack.nodes.wan_models.StreamingWanDecoder and compare with the whole decode.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACK = os.environ.get("TEMPO_PACK", "/work/wt")
TREES = ["/opt/ComfyUI", "/opt/ComfyUI-0.8", "/opt/ComfyUI-0.27"]
FRAMES, H, W = 33, 96, 128
BLOCKS = (1, 3, 3, 2)  # latent frames per streaming block (9 latent frames in all)


def synthetic_video():
    import torch

    x = torch.full((FRAMES, H, W, 3), 0.2)
    for t in range(FRAMES):
        x0, y0 = 5 + 2 * t, 37  # not aligned to the 8x8 grid, so patches hold fractional means
        x[t, y0:y0 + 24, x0:x0 + 24] = torch.tensor([1.0, 0.0, 0.0])
    return x


def pooled_reference(x):
    """[T, H, W, 3] in 0..1 -> ([3, F, H/8, W/8] means of 2x-1, [T, H, W, 3] in 0..1 blown back up)."""
    import torch
    import torch.nn.functional as F

    v = (x * 2 - 1).permute(3, 0, 1, 2)  # [3, T, H, W]
    groups = [v[:, :1]] + [v[:, 1 + 4 * i:5 + 4 * i] for i in range((x.shape[0] - 1) // 4)]
    means = torch.stack([g.mean(1) for g in groups], 1)  # [3, F, H, W]
    pooled = F.avg_pool2d(means, 8)  # [3, F, H/8, W/8]
    up = pooled.repeat_interleave(8, -1).repeat_interleave(8, -2)
    reps = torch.tensor([1] + [4] * (pooled.shape[1] - 1))
    up = up.repeat_interleave(reps, 1)  # [3, T, H, W]
    return pooled, ((up + 1) / 2).clamp(0, 1).permute(1, 2, 3, 0)


def smooth_reference(pooled, frames: int):
    """What the smooth decoder computes, in plain torch: three times (nearest x2, then the separable
    [1/4, 1/2, 1/4] 3x3 conv with zero padding) on the colour and on a constant 1 alike, then their
    ratio (the decoder head's RMS_norm divides by the carried constant's local value)."""
    import torch
    import torch.nn.functional as F

    k1 = torch.tensor([0.25, 0.5, 0.25])
    k = torch.outer(k1, k1)[None, None]
    x = torch.cat([pooled, torch.ones_like(pooled[:1])]).transpose(0, 1)  # [F, 4, h, w]
    for _ in range(3):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest-exact")
        x = F.conv2d(x.reshape(-1, 1, *x.shape[-2:]), k, padding=1).reshape(x.shape)
    v = (x[:, :3] / x[:, 3:]).transpose(0, 1)  # [3, F, H, W]
    reps = torch.tensor([1] + [4] * (v.shape[1] - 1))
    v = v.repeat_interleave(reps, 1)[:, :frames]
    return ((v + 1) / 2).clamp(0, 1).permute(1, 2, 3, 0)


def _progress(what: str):
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"[{time.strftime('%H:%M:%S')}] {what} (peak RSS so far {rss:.0f} MiB)", file=sys.stderr, flush=True)


def run_one(smooth: bool) -> dict:
    import torch

    torch.set_num_threads(int(os.environ.get("CHECK_THREADS", "2")))
    spec = importlib.util.spec_from_file_location("tempo_launcher", os.path.join(PACK, "tempo.py"))
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    launcher.load_pack()
    from tempo_pack.factory.checkpoints import import_comfy

    comfy_path = os.environ["COMFYUI_PATH"]
    import_comfy(comfy_path)
    import comfy.sd
    from tempo_pack.nodes.wan_models import StreamingWanDecoder

    sys.path.insert(0, HERE)
    from wan_codec import codec_wan_vae_state_dict

    with open(os.path.join(comfy_path, "comfyui_version.py")) as f:
        version = f.read().split('"')[1]
    res = {"tree": comfy_path, "version": version}

    vae = comfy.sd.VAE(sd=codec_wan_vae_state_dict())
    net = vae.first_stage_model
    res["model"] = f"{type(net).__module__}.{type(net).__name__}"
    res["dtype"] = str(vae.vae_dtype).replace("torch.", "")

    x = synthetic_video()
    pooled, target = pooled_reference(x)

    _progress("built VAE")
    t0 = time.perf_counter()
    lat = vae.encode(x)
    res["encode_s"] = time.perf_counter() - t0
    res["latent_shape"] = list(lat.shape)
    lat = lat.float()
    res["lat_rgb_max"] = (lat[0, :3] - pooled).abs().max().item()
    res["lat_rest_max"] = lat[0, 3:].abs().max().item()

    _progress("encoded")
    t0 = time.perf_counter()
    out = vae.decode(lat)
    res["decode_s"] = time.perf_counter() - t0
    res["decode_shape"] = list(out.shape)
    out = out.reshape(-1, H, W, 3).float()
    err = (out - target).abs()
    res["dec_mean"], res["dec_max"] = err.mean().item(), err.max().item()
    res["finite"] = bool(torch.isfinite(out).all() and torch.isfinite(lat).all())

    _progress("decoded")
    # the pack's streaming decoder, block by block, against the whole decode
    t0 = time.perf_counter()
    dec = StreamingWanDecoder(vae)
    parts, start = [], 0
    for n in BLOCKS:
        parts.append(dec.decode(lat[:, :, start:start + n]))
        start += n
    dec.close()
    res["stream_s"] = time.perf_counter() - t0
    stream = torch.cat(parts, 0).float()
    res["stream_frames"] = [p.shape[0] for p in parts]
    if stream.shape == out.shape:
        d = (stream - out).abs()
        res["stream_mean"], res["stream_max"] = d.mean().item(), d.max().item()
    else:
        res["stream_mean"] = res["stream_max"] = float("nan")
        res["stream_shape"] = list(stream.shape)

    _progress("stream-decoded")
    if smooth:
        svae = comfy.sd.VAE(sd=codec_wan_vae_state_dict(smooth=True))
        t0 = time.perf_counter()
        sout = svae.decode(lat).reshape(-1, H, W, 3).float()
        res["smooth_s"] = time.perf_counter() - t0
        d = (sout - target).abs()
        res["smooth_mean_vs_nearest"], res["smooth_max_vs_nearest"] = d.mean().item(), d.max().item()
        d = (sout - smooth_reference(pooled, FRAMES)).abs()
        res["smooth_mean_vs_ref"], res["smooth_max_vs_ref"] = d.mean().item(), d.max().item()
    return res


def main():
    smooth = "--smooth" in sys.argv
    if "--one" in sys.argv:
        print("RESULT " + json.dumps(run_one(smooth)))
        return
    rows = []
    for tree in TREES:
        env = dict(os.environ, COMFYUI_PATH=tree)
        cmd = [sys.executable, os.path.abspath(__file__), "--one"] + (["--smooth"] if smooth else [])
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
        if p.returncode or not line:
            print(f"{tree}: FAILED (rc {p.returncode})\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
            continue
        rows.append(json.loads(line[-1][len("RESULT "):]))

    print()
    print(f"video {FRAMES}x{H}x{W} (T x H x W), latent blocks for streaming {BLOCKS}; errors in 0..1 pixel units "
          "for decodes, in the VAE's -1..1 units for latents")
    hdr = (f"{'ComfyUI':>8} {'dtype':>7} {'latent':>18} {'lat rgb max':>11} {'lat 3..15':>9} "
           f"{'dec mean':>9} {'dec max':>9} {'stream mean':>11} {'stream max':>10} "
           f"{'enc s':>6} {'dec s':>6} {'strm s':>6}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['version']:>8} {r['dtype']:>7} {str(r['latent_shape']):>18} {r['lat_rgb_max']:11.2e} "
              f"{r['lat_rest_max']:9.1e} {r['dec_mean']:9.2e} {r['dec_max']:9.2e} {r['stream_mean']:11.2e} "
              f"{r['stream_max']:10.2e} {r['encode_s']:6.1f} {r['decode_s']:6.1f} {r['stream_s']:6.1f}")
    for r in rows:
        extra = f"  {r['version']}: {r['model']}, decode -> {r['decode_shape']}, finite={r['finite']}, " \
                f"stream frames per block {r['stream_frames']}"
        print(extra)
        if "smooth_s" in r:
            print(f"     smooth decoder (smooth=True): vs its plain-torch reference mean {r['smooth_mean_vs_ref']:.2e} "
                  f"max {r['smooth_max_vs_ref']:.2e}; vs the nearest target mean {r['smooth_mean_vs_nearest']:.3f} "
                  f"max {r['smooth_max_vs_nearest']:.3f} (interpolation, expected); {r['smooth_s']:.1f} s")


if __name__ == "__main__":
    main()

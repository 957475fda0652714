"""One-step 512x512 (random weights): the pack's node path against a bare UNet forward plus VAE
decode, measured side by side in one process. SD-Turbo's shape (SD 2.1 base: 1024-wide context,
64-wide heads, linear projections; its preset, t = 999) by default; DMD2's SD 1.5 with --arch sd15.

    python benchmarks/onestep_image.py                 # GPU if there is one, else CPU at reduced size
    python benchmarks/onestep_image.py --size 512 --batches 1,8 --repeats 10

Reports per batch size: seconds per batch for both paths, the pack's overhead over the bare
path, images per second, and peak memory. The target is an overhead of at most 3%.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import tempo  # noqa: E402

tempo.load_pack()
from tempo_pack.factory import checkpoints as factory  # noqa: E402

sys.path.insert(0, HERE)
from _timing import peak_gib, reset_peak, timed  # noqa: E402

SD15_UNET = {
    "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "in_channels": 4, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1,
    "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8, "num_head_channels": -1,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "use_temporal_attention": False,
    "use_temporal_resblock": False,
}
# SD 2.1 base, as SD-Turbo ships it (stabilityai/sd-turbo unet/config.json: attention_head_dim [5, 10, 20, 20]
# i.e. 64-wide heads, cross_attention_dim 1024, use_linear_projection true)
SD21_UNET = {**SD15_UNET, "context_dim": 1024, "num_heads": -1, "num_head_channels": 64, "use_linear_in_transformer": True}
ARCHS = {"sd-turbo": ("SD21", SD21_UNET, "SD-Turbo", 1024, "stable-diffusion-v2-1-base"),
         "sd15": ("SD15", SD15_UNET, "DMD2", 768, "stable-diffusion-v1")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=None, help="image side (default 512 on GPU, 256 on CPU)")
    ap.add_argument("--batches", default=None, help="batch sizes (default 1,8 on GPU, 1 on CPU)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--arch", choices=list(ARCHS), default="sd-turbo")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    factory.import_comfy(cpu=not torch.cuda.is_available())  # on a GPU, ComfyUI uses it
    import comfy.model_management as mm
    import comfy.sd

    from tempo_pack.nodes.onestep import apply_preset
    from tempo_pack.nodes.unet_models import load_image_model
    from tempo_pack.nodes.onestep import OneStepGenerate
    from tempo_pack.samplers.onestep import PRESETS

    device = mm.get_torch_device()
    gpu = device.type == "cuda"
    size = args.size or (512 if gpu else 256)
    batches = [int(b) for b in (args.batches or ("1,8" if gpu else "1")).split(",")]
    repeats = args.repeats or (10 if gpu else 3)

    import tempfile
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "sd15_random_unet.safetensors")
    base, unet, preset, ctx_dim, spec = ARCHS[args.arch]
    factory.save_safetensors(factory.unet_state_dict(base, unet, 0), path,
                             {"modelspec.architecture": spec, "tempo.preset": preset}, torch.float16)
    model = apply_preset(load_image_model(path, "default")[0], PRESETS[preset])
    t_bare_step = float(PRESETS[preset].timestep)
    vae = comfy.sd.VAE(sd=factory.sd_vae_state_dict())
    os.remove(path)

    results = {"device": torch.cuda.get_device_name() if gpu else "cpu", "size": size, "arch": args.arch, "rows": []}
    for b in batches:
        latent = {"samples": torch.zeros(b, 4, size // 8, size // 8)}
        ctx = torch.randn(b, 77, ctx_dim)
        cond = [[ctx, {}]]

        def node_path():
            out = OneStepGenerate.execute(model=model, positive=cond, seed=0, steps=1, strength=1.0, cfg=1.0,
                                          latent=latent).args[0]
            return vae.decode(out["samples"])

        def bare_path():
            mm.load_models_gpu([model])
            dm = model.model.diffusion_model
            dtype = model.model.get_dtype()
            with torch.no_grad():
                x = torch.randn(latent["samples"].shape, device=device, dtype=dtype)
                eps = dm(x, torch.full((b,), t_bare_step, device=device), context=ctx.to(device, dtype))
                x0 = (x - 0.2 * eps) / 0.18215
            return vae.decode(x0)

        reset_peak(device)
        t_bare = timed(bare_path, device, repeats)
        t_node = timed(node_path, device, repeats)
        peak, where = peak_gib(device)
        row = {"batch": b, "bare_s": t_bare, "node_s": t_node, "overhead": t_node / t_bare - 1,
               "images_per_s": b / t_node, "peak_gib": peak}
        results["rows"].append(row)
        print(f"{results['device']} {args.arch} {size}x{size} batch {b}: bare {t_bare:.3f} s, node path {t_node:.3f} s, "
              f"overhead {100 * row['overhead']:+.1f}%, {row['images_per_s']:.2f} images/s, "
              f"peak {where} {peak:.2f} GiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

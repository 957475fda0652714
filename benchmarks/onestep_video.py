"""One-step video, random weights: APT-style text-to-video on the Wan 2.1 shape and SVD-XT image-to-video,
the pack's node path (Tempo One-Step Generate) against a bare network forward plus VAE decode; the
few-step Wan rules (a 4-step row per update rule, FastWan's 3, and a Wan 2.2 two-expert row) against
a bare loop of the same forwards and updates.

    python benchmarks/onestep_video.py        # GPU: Wan 1.3B at 832x480x81 and SVD-XT at 1024x576x25; CPU: small

Reports time per clip for both paths, the pack's overhead, and peak memory.
"""

from __future__ import annotations

import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import tempo  # noqa: E402

tempo.load_pack()
from tempo_pack.factory import checkpoints as factory  # noqa: E402

sys.path.insert(0, HERE)
from _timing import peak_gib, reset_peak, timed  # noqa: E402

WAN_13B = dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30)
WAN_SMALL = dict(dim=256, ffn_dim=1024, num_heads=2, num_layers=2)
SVD_XT_UNET = dict(factory.SVD_TINY_UNET, model_channels=320, num_res_blocks=[2, 2, 2, 2], channel_mult=[1, 2, 4, 4],
                   transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0], transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])


def node_path(model, cond, latent, vae):
    """The pack's path: Tempo One-Step Generate, then the VAE decode."""
    from tempo_pack.nodes.onestep import OneStepGenerate

    def run():
        out = OneStepGenerate.execute(model=model, positive=cond, seed=0, steps=1, strength=1.0, cfg=1.0,
                                      latent=latent).args[0]
        return vae.decode(out["samples"])
    return run


def report(name, device, t_bare, t_node):
    peak, where = peak_gib(device)
    print(f"{name}: bare {t_bare:.3f} s/clip, node path {t_node:.3f} s/clip, overhead {100 * (t_node / t_bare - 1):+.1f}%, "
          f"peak {where} {peak:.2f} GiB")


def bench_apt(device, gpu, repeats):
    import comfy.model_management as mm
    import comfy.sd

    from tempo_pack.nodes.onestep_video import load_onestep_video

    shape = WAN_13B if gpu else WAN_SMALL
    w, h, frames = (832, 480, 81) if gpu else (128, 96, 17)
    path = os.path.join(tempfile.mkdtemp(), "apt.safetensors")
    factory.save_safetensors(factory.causal_wan_state_dict(0, **shape), path, {"tempo.timestep": "1000"}, torch.bfloat16)
    model, _ = load_onestep_video(path, "default")
    os.remove(path)
    vae = comfy.sd.VAE(sd=factory.wan_vae_state_dict())
    t_lat = (frames - 1) // 4 + 1
    latent = {"samples": torch.zeros(1, 16, t_lat, h // 8, w // 8)}
    cond = [[torch.randn(1, 512, 4096) * 0.1, {}]]
    node = node_path(model, cond, latent, vae)

    def bare():
        mm.load_models_gpu([model])
        net, dtype = model.model.diffusion_model, model.model.get_dtype()
        with torch.no_grad():
            z = torch.randn(latent["samples"].shape, device=device, dtype=dtype)
            v = net(z, torch.full((1,), 1000.0, device=device), cond[0][0].to(device, dtype))
        return vae.decode(model.model.process_latent_out((z - v).float()))

    reset_peak(device)
    report(f"APT one-step t2v, Wan {shape['dim']}x{shape['num_layers']}, {w}x{h}x{frames}", device,
           timed(bare, device, repeats), timed(node, device, repeats))


def bench_svd(device, gpu, repeats):
    import comfy.model_management as mm
    import comfy.sd

    from tempo_pack.nodes.onestep import apply_preset
    from tempo_pack.samplers.onestep import PRESETS

    config = SVD_XT_UNET if gpu else factory.SVD_TINY_UNET
    w, h, frames = (1024, 576, 25) if gpu else (256, 144, 8)
    import comfy.model_patcher
    import comfy.supported_models as sm

    mc = sm.SVD_img2vid(dict(config))
    mc.set_inference_dtype(torch.float16 if gpu else torch.float32, None)
    base = mc.get_model({}, device=mm.unet_offload_device())
    base.diffusion_model.load_state_dict(factory.randomize(base.diffusion_model, 0))
    model = apply_preset(comfy.model_patcher.ModelPatcher(base, mm.get_torch_device(), mm.unet_offload_device()),
                         PRESETS["SVD"])
    vae = comfy.sd.VAE(sd=factory.svd_vae_state_dict())
    latent = {"samples": torch.zeros(frames, 4, h // 8, w // 8)}
    image_latent = torch.randn(1, 4, h // 8, w // 8)
    extra = {"concat_latent_image": image_latent, "fps": 7, "motion_bucket_id": 127, "augmentation_level": 0.02}
    cond = [[torch.randn(1, 1, 1024), extra]]
    node = node_path(model, cond, latent, vae)

    def bare():
        mm.load_models_gpu([model])
        net, dtype = model.model.diffusion_model, model.model.get_dtype()
        with torch.no_grad():
            x = torch.randn(latent["samples"].shape, device=device, dtype=dtype)
            adm = model.model.encode_adm(fps=7, motion_bucket_id=127, augmentation_level=0.02).to(device, dtype)
            inp = torch.cat([x, image_latent.to(device, dtype).expand(frames, -1, -1, -1)], 1)
            out = net(inp, torch.full((frames,), 0.25 * 6.551, device=device), context=cond[0][0].to(device, dtype)
                      .expand(frames, -1, -1), y=adm.expand(frames, -1), num_video_frames=frames,
                      image_only_indicator=torch.zeros(1, frames, device=device))
        # a cost proxy for the rule's arithmetic (a few elementwise ops): only the timing matters here
        return vae.decode((x - out).float() / 0.18215)

    reset_peak(device)
    report(f"SVD one-step i2v, UNet {config['model_channels']} ch, {w}x{h}x{frames}", device,
           timed(bare, device, repeats), timed(node, device, repeats))


def bench_fewstep(device, gpu, repeats):
    """A 4-step row per update rule (rCM fresh, lightx2v Wan 2.1 fresh, Lightning deterministic; FastWan
    at its 3 steps) and a two-expert row (Lightning T2V, two networks): Tempo One-Step Generate / Two-Expert
    Generate against a bare loop of the same forwards and updates, decode included."""
    import comfy.model_management as mm
    import comfy.sd

    from tempo_pack.nodes.onestep import TwoExpertGenerate, onestep_sigmas
    from tempo_pack.nodes.onestep_preset import OneStepPreset
    from tempo_pack.nodes.onestep_video import load_onestep_video

    shape = WAN_13B if gpu else WAN_SMALL
    w, h, frames = (832, 480, 81) if gpu else (128, 96, 17)
    models = []
    for seed in (0, 1):
        path = os.path.join(tempfile.mkdtemp(), f"wan{seed}.safetensors")
        factory.save_safetensors(factory.causal_wan_state_dict(seed, **shape), path, {}, torch.bfloat16)
        models.append(load_onestep_video(path, "default")[0])
        os.remove(path)
    vae = comfy.sd.VAE(sd=factory.wan_vae_state_dict())
    latent = {"samples": torch.zeros(1, 16, (frames - 1) // 4 + 1, h // 8, w // 8)}
    cond = [[torch.randn(1, 512, 4096) * 0.1, {}]]

    def bare_loop(nets, sigmas, fresh, high_steps):
        def run():
            mm.load_models_gpu(nets)
            dtype = nets[0].model.get_dtype()
            s = sigmas.tolist()
            with torch.no_grad():
                x = s[0] * torch.randn(latent["samples"].shape, device=device, dtype=dtype)
                for i in range(len(s) - 1):
                    net = (nets[0] if i < high_steps else nets[-1]).model.diffusion_model
                    v = net(x, torch.full((1,), 1000.0 * s[i], device=device), cond[0][0].to(device, dtype))
                    x0 = x - s[i] * v
                    if s[i + 1] == 0:
                        x = x0
                    elif fresh:
                        x = (1 - s[i + 1]) * x0 + s[i + 1] * torch.randn_like(x)
                    else:
                        x = x + (s[i + 1] - s[i]) * v
            return vae.decode(nets[0].model.process_latent_out(x.float()))
        return run

    for name, steps in (("rCM", 4), ("lightx2v Wan 2.1", 4), ("Wan2.2-Lightning T2V", 4), ("FastWan", 3)):
        model = OneStepPreset.execute(model=models[0], preset=name).args[0]
        sigmas = onestep_sigmas(model, steps, 1.0)
        fresh = name != "Wan2.2-Lightning T2V"

        def node(model=model, steps=steps):
            from tempo_pack.nodes.onestep import OneStepGenerate
            out = OneStepGenerate.execute(model=model, positive=cond, seed=0, steps=steps, strength=1.0, cfg=1.0,
                                          latent=latent).args[0]
            return vae.decode(out["samples"])

        reset_peak(device)
        report(f"{name} {steps}-step t2v, Wan {shape['dim']}x{shape['num_layers']}, {w}x{h}x{frames}", device,
               timed(bare_loop([model], sigmas, fresh, steps), device, repeats), timed(node, device, repeats))
    high, low = (OneStepPreset.execute(model=m, preset="Wan2.2-Lightning T2V").args[0] for m in models)
    sigmas = onestep_sigmas(high, 4, 1.0)

    def two():
        out = TwoExpertGenerate.execute(model_high=high, model_low=low, positive=cond, latent=latent, seed=0, steps=4,
                                        cfg=1.0).args[0]
        return vae.decode(out["samples"])

    reset_peak(device)
    report(f"Wan2.2-Lightning two experts 4-step t2v, 2 x Wan {shape['dim']}x{shape['num_layers']}, {w}x{h}x{frames}",
           device, timed(bare_loop([high, low], sigmas, False, 2), device, repeats), timed(two, device, repeats))


def main():
    factory.import_comfy(cpu=not torch.cuda.is_available())  # on a GPU, ComfyUI uses it
    import comfy.model_management as mm

    device = mm.get_torch_device()
    gpu = device.type == "cuda"
    repeats = 5 if gpu else 2
    print(f"device: {torch.cuda.get_device_name() if gpu else 'cpu (small scale)'}")
    bench_apt(device, gpu, repeats)
    bench_svd(device, gpu, repeats)
    bench_fewstep(device, gpu, repeats)


if __name__ == "__main__":
    main()

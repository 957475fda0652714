"""Judge a trained demo model by eye and by number, without ComfyUI's sampler: the pure core's
CausalSession with the Self Forcing schedule, the demo codec's decode, demo/quality.py's measures.

    python wip31/judge.py WEIGHTS [OUT.png]

Prints, for a few prompts: the mean step per latent frame (x, y; the truth is 8 px in the prompt's
direction), the largest seam against the largest in-block step, the colour error, the size drift over a
30-second rolling run, and where a prompt switch shows; writes a strip of frames to OUT.png.
"""

import importlib.util
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("tempo_pack", os.path.join(ROOT, "__init__.py"),
                                              submodule_search_locations=[ROOT])
pack = importlib.util.module_from_spec(spec)
sys.modules["tempo_pack"] = pack
spec.loader.exec_module(pack)

from safetensors.torch import load_file  # noqa: E402

from tempo_pack.demo import quality, text_encoder, train, world  # noqa: E402
from tempo_pack.factory import checkpoints as factory  # noqa: E402
from tempo_pack.models.causal_wan import CausalWanModel  # noqa: E402
from tempo_pack.samplers import causal  # noqa: E402

PRESET = causal.CAUSAL_PRESETS["Self Forcing"]
SIGMAS = tuple(causal.schedule_sigmas(list(PRESET.timesteps), PRESET.shift))


def generate(model, fmt, prompt, latent_frames, switches=None, window=None, seed=0):
    spec = causal.VideoSpec(world.HEIGHT // 8, world.WIDTH // 8, latent_frames, 3, SIGMAS, seed=seed,
                            sink=0 if window is None else PRESET.sink_size, window=window)
    session = causal.CausalSession(model.causal, spec, torch.device("cpu"), torch.float32, causal.Speed())
    sw = {b: text_encoder.encode(p) for b, p in (switches or {}).items()}
    cond = text_encoder.encode(prompt)
    with torch.no_grad():
        blocks = [lat for kind, lat in session.run(cond, switches=sw or None) if kind == "block"]
    return world.codec_frames(fmt.process_out(torch.cat(blocks, dim=2)))


def main(weights, out_png=None):
    factory.import_comfy(os.environ.get("COMFYUI_PATH", "/opt/ComfyUI-0.27"))
    import comfy.latent_formats

    fmt = comfy.latent_formats.Wan21()
    model = CausalWanModel(**train.MODEL).eval()
    model.load_state_dict(load_file(weights))
    strips = []
    for prompt in ("red square moving right", "blue circle moving up", "yellow square moving left"):
        video = generate(model, fmt, prompt, 21)
        s = quality.seams(video)
        color = world.parse(prompt)[0]
        print(f"{prompt}: mean step {s['steps'][1:].mean(0).tolist()}, seam max {s['boundary'].max():.2f} "
              f"vs in-block max {s['inside'][1:].max():.2f}, colour error max "
              f"{quality.color_error(quality.per_latent_frame(video), color).max():.3f}")
        strips.append(torch.cat(list(quality.per_latent_frame(video)[::3]), dim=1))
    video = generate(model, fmt, "red square moving right", 21, switches={3: "green square moving up"})
    print("switch to green at block 3: colours by block", quality.colors_by_block(video))
    window = causal.window_in_cache_terms(PRESET.local_attn_size, PRESET.sink_size, 3)
    long = generate(model, fmt, "red square moving right", 120, window=window)
    size = quality.blob_size(quality.per_latent_frame(long))[1:]
    print(f"30 s rolling: size first/last block {size[:3].mean():.0f} / {size[-3:].mean():.0f} px, colour error "
          f"last block {quality.color_error(quality.per_latent_frame(long)[-3:], 'red').max():.3f}")
    if out_png:
        from PIL import Image

        img = (torch.cat(strips, dim=0).clamp(0, 1) * 255).byte().numpy()
        Image.fromarray(img).save(out_png)
        print("wrote", out_png)


if __name__ == "__main__":
    main(*sys.argv[1:])

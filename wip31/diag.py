"""Is the collapse training's or sampling's? Denoise true clips in teacher forcing at each schedule sigma and
compare the predicted x0 with the truth, on the shape's patches and on the ground's."""
import importlib.util, os, random, sys
import torch
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("tempo_pack", os.path.join(ROOT, "__init__.py"), submodule_search_locations=[ROOT])
pack = importlib.util.module_from_spec(spec); sys.modules["tempo_pack"] = pack; spec.loader.exec_module(pack)
from safetensors.torch import load_file
from tempo_pack.demo import train
from tempo_pack.factory import checkpoints as factory
from tempo_pack.models.causal_wan import CausalWanModel
factory.import_comfy("/opt/ComfyUI-0.27")
import comfy.latent_formats
fmt = comfy.latent_formats.Wan21()
model = CausalWanModel(**train.MODEL).eval(); model.load_state_dict(load_file(sys.argv[1]))
rng = random.Random(5)
with torch.no_grad():
    for trial in range(3):
        x0, noisy_ctx, clean_ctx, clip_blocks, w = train.sample_batch(rng, fmt.process_in, size=1)
        raw = fmt.process_out(x0)[0, :3]                           # codec units: colour in -1..1
        shape = (raw - raw.flatten(1).median(1).values[:, None, None, None]).abs().amax(0) > 0.2
        for sig in train.SCHEDULE:
            s = torch.full((1, len(clip_blocks)), float(sig))
            sf = s.repeat_interleave(train.FPB, dim=1)[:, None, :, None, None]
            eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(trial))
            noisy = (1 - sf) * x0 + sf * eps
            v = train.teacher_forcing(model.causal, x0, noisy, s, noisy_ctx, clean_ctx, clip_blocks)
            hat = fmt.process_out(noisy - sf * v)[0, :3]
            err = (hat - raw).abs().amax(0)
            print(f"trial {trial} blocks {clip_blocks} sigma {sig:.3f}: shape patches {int(shape.sum())}, "
                  f"error on shape {err[shape].mean():.3f}, on ground {err[~shape].mean():.3f}, "
                  f"shape contrast true {(raw.abs().amax(0)[shape]).mean():.3f} predicted {(hat.abs().amax(0)[shape]).mean():.3f}")

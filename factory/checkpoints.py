"""Tiny random checkpoints in the exact on-disk formats users download.

Used by the tests and by ``tempo.py demo``. The tensors are random (seeded, so files are
reproducible) but names, shapes, containers and metadata are those of the released files:
full single-file checkpoints (UNet + CLIP + VAE, as Stability publishes them), UNet-only
files in ComfyUI or diffusers naming, torch pickles, diffusers folders. The UNet is tiny;
the text encoder and VAE are full size, because ComfyUI builds those at fixed sizes.

Building the networks needs ComfyUI's model classes, imported from ``comfyui_path``.
"""

from __future__ import annotations

import json
import os
import sys

import torch

from ..demo import world as demo_world
from . import released

# Bump when the files the factory writes change, so cached demo models are rebuilt.
FACTORY_VERSION = "9"

# The demo's stand-ins take the released files' names (factory/released.py), so the shipped workflows
# run on them as they are: tiny weights in the released layouts. The Wan text encoder (umT5-XXL, 5.7B)
# cannot be tiny: the demo and the tests swap in a small stand-in encoder when they queue a workflow
# (demo/comfy_nodes), and saved conditionings stand in for it where a test feeds one.
SD15_CKPT = released.SD15
HYPER_SD15_LORA = released.HYPER_SD15_1STEP
SD15_CONTROLNET = released.SD15_CANNY
EXAMPLE_IMAGE = "example.png"  # ComfyUI ships input/example.png; the demo uploads its own
EXAMPLE_VIDEO = "tempo-example-clip.mp4"  # the video-to-video workflow's input; the demo uploads it
# the demo's causal model as `tempo.py train-demo` (factory/demo_train.py) writes it; self_forcing_dmd.pt is made from it
DEMO_TRAINED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo", "trained",
                            "causal_demo.safetensors")
CAUSAL_MODEL = released.SELF_FORCING
SVD_CKPT = released.SVD_XT
WAN_VAE = released.WAN_VAE
# The demo world's prompts, saved encoded by the demo's text encoder (the live page's switch lists them)
DEMO_PROMPT_FILES = {p: p.replace(" ", "-") + ".safetensors" for p in demo_world.PROMPTS}
WAN_PROMPT = DEMO_PROMPT_FILES["red square moving right"]  # a saved conditioning standing in for the Wan text encoder
WAN22_HIGH = released.WAN22_T2V_HIGH
WAN22_LOW = released.WAN22_T2V_LOW
LIGHTNING_HIGH_LORA = released.LIGHTNING_HIGH
LIGHTNING_LOW_LORA = released.LIGHTNING_LOW
WAN21_I2V_BASE = released.WAN21_I2V_14B
CLIP_VISION_H = released.CLIP_VISION_H
LIGHTX2V_I2V_LORA = released.LIGHTX2V_I2V_LORA
RCM_MODEL = released.RCM_1_3B
TAEHV_DEMO = released.TAEW2_1
# two more, so a prompt timeline run through a server really switches
WAN_PROMPTS_MORE = [DEMO_PROMPT_FILES["blue circle moving right"], DEMO_PROMPT_FILES["green square moving up"]]

# 64 channels: ComfyUI builds ControlNets of unknown size with 64-channel heads.
SD15_TINY_UNET = {
    "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
    "legacy": False, "adm_in_channels": None, "in_channels": 4, "model_channels": 64, "num_res_blocks": [1, 1],
    "transformer_depth": [1, 0], "channel_mult": [1, 2], "transformer_depth_middle": 1,
    "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8, "num_head_channels": -1,
    "transformer_depth_output": [1, 1, 0, 0], "use_temporal_attention": False, "use_temporal_resblock": False,
}
# The demo's SD 1.5 file: one level of SD 1.5's own width (320 channels, 768-wide context), which
# is what ComfyUI's detection matches (comfy/supported_models.py, SD15.unet_config: model_channels
# 320, context_dim 768), so ComfyUI's own Load Checkpoint takes the file as SD 1.5 too.
SD15_DEMO_UNET = {**SD15_TINY_UNET, "model_channels": 320, "num_res_blocks": [1], "transformer_depth": [1],
                  "channel_mult": [1], "transformer_depth_output": [1, 1]}
MODELSPEC = {"SD15": "stable-diffusion-v1", "SD21": "stable-diffusion-v2-1-base", "SDXL": "stable-diffusion-xl-v1-base"}


def import_comfy(comfyui_path: str | None = None, cpu: bool = True):
    """Make ComfyUI's packages importable in this process and return ``comfy``: CPU only (the tests,
    the factory), or with ``cpu=False`` on the device ComfyUI picks (the benchmarks on a GPU). The
    first import decides."""
    if "comfy" not in sys.modules:
        from ..client.local import require_comfyui

        path = require_comfyui(comfyui_path)
        if path not in sys.path:
            sys.path.insert(0, path)
        import comfy.cli_args

        comfy.cli_args.args.cpu = cpu
    import comfy

    return comfy


def randomize(module: torch.nn.Module, seed: int, std: float = 0.02) -> dict:
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for name, t in module.state_dict().items():
        if name.endswith("position_ids"):
            sd[name] = t.clone()
        elif t.ndim == 1 and ("norm" in name or name.endswith("ln_1.weight") or name.endswith("ln_2.weight")) \
                and name.endswith("weight"):
            sd[name] = torch.ones_like(t, dtype=torch.float32)
        elif t.ndim <= 1:
            sd[name] = t.clone().float() if t.ndim == 0 else torch.randn(t.shape, generator=gen) * std
        else:
            fan_in = max(t[0].numel(), 1)
            sd[name] = torch.randn(t.shape, generator=gen) * min(std * 5, fan_in ** -0.5)
    return sd


def unet_state_dict(base: str = "SD15", unet_config: dict | None = None, seed: int = 0) -> dict:
    """A tiny UNet in ComfyUI / original (LDM) naming, without prefix."""
    import_comfy()
    import comfy.supported_models as sm

    cls = {"SD15": sm.SD15, "SD21": sm.SD20, "SDXL": sm.SDXL}[base]
    config = dict(unet_config or SD15_TINY_UNET)
    mc = cls(config)
    mc.set_inference_dtype(torch.float32, None)
    model = mc.get_model({})
    return randomize(model.diffusion_model, seed)


def clip_l_state_dict(seed: int = 1) -> dict:
    """A full-size CLIP-L text encoder (SD 1.x), random, in checkpoint naming without prefix."""
    import_comfy()
    import comfy.sd1_clip

    clip = comfy.sd1_clip.SDClipModel(device="cpu", dtype=torch.float32)
    return randomize(clip, seed)


def sd_vae_state_dict(seed: int = 2) -> dict:
    """A full-size SD VAE (AutoencoderKL), random, in checkpoint naming without prefix."""
    import_comfy()
    from comfy.ldm.models.autoencoder import AutoencoderKL

    ddconfig = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    vae = AutoencoderKL(ddconfig=ddconfig, embed_dim=4)
    return randomize(vae, seed, std=0.01)


def save_safetensors(sd: dict, path: str, metadata: dict | None = None, dtype=torch.float16):
    """Write safetensors; ``dtype`` None keeps each tensor's own dtype."""
    from safetensors.torch import save_file

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file({k: v.to(dtype).contiguous() if v.is_floating_point() and dtype is not None else v.contiguous()
               for k, v in sd.items()},
              path, metadata=metadata)
    return path


def write_sd_checkpoint(path: str, base: str = "SD15", preset: str | None = None, seed: int = 0,
                        unet_config: dict | None = None, dtype=torch.float16) -> str:
    """Single-file checkpoint (UNet + CLIP-L + VAE) as Stability and most fine-tunes ship them."""
    sd = {"model.diffusion_model." + k: v for k, v in unet_state_dict(base, unet_config, seed).items()}
    sd.update({"cond_stage_model." + k: v for k, v in clip_l_state_dict(seed + 1).items()})
    sd.update({"first_stage_model." + k: v for k, v in sd_vae_state_dict(seed + 2).items()})
    meta = {"modelspec.architecture": MODELSPEC[base], "modelspec.sai_model_spec": "1.0.0"}
    if preset:
        meta["modelspec.title"] = f"tiny {preset} demo"
        meta["tempo.preset"] = preset
    return save_safetensors(sd, path, meta, dtype)


def diffusers_unet_state_dict(ldm_sd: dict) -> dict:
    """The same UNet in diffusers naming (ComfyUI's key map, inverted)."""
    import_comfy()
    import comfy.model_detection
    import comfy.utils

    config = comfy.model_detection.detect_unet_config(ldm_sd, "")
    mapping = comfy.utils.unet_to_diffusers(config)
    inverse = {v: k for k, v in mapping.items()}
    missing = set(ldm_sd) - set(inverse)
    if missing:
        raise RuntimeError(f"no diffusers name for {sorted(missing)[:4]}")
    return {inverse[k]: v for k, v in ldm_sd.items()}


def write_unet_file(path: str, base: str = "SD15", naming: str = "comfy", seed: int = 0, preset: str | None = None,
                    dtype=torch.float16) -> str:
    """UNet-only file: ``naming`` comfy (LDM keys) or diffusers; .safetensors, or a torch pickle for .pt/.bin."""
    sd = unet_state_dict(base, None, seed)
    if naming == "diffusers":
        sd = diffusers_unet_state_dict(sd)
    meta = {"modelspec.architecture": MODELSPEC[base]}
    if preset:
        meta["tempo.preset"] = preset
    if path.endswith((".pt", ".pth", ".bin", ".ckpt")):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        torch.save({k: v.to(dtype) for k, v in sd.items()}, path)
        return path
    return save_safetensors(sd, path, meta, dtype)


def write_diffusers_folder(path: str, seed: int = 0, dtype=torch.float16) -> str:
    """A diffusers pipeline folder with unet/ (tiny), as InstaFlow and DMD2 UNets are published."""
    sd = diffusers_unet_state_dict(unet_state_dict("SD15", None, seed))
    os.makedirs(os.path.join(path, "unet"), exist_ok=True)
    save_safetensors(sd, os.path.join(path, "unet", "diffusion_pytorch_model.safetensors"), None, dtype)
    config = {"_class_name": "UNet2DConditionModel", "in_channels": 4, "out_channels": 4,
              "block_out_channels": [64, 128], "layers_per_block": 1, "cross_attention_dim": 768,
              "attention_head_dim": 8, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
              "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "sample_size": 8, "norm_num_groups": 32}
    with open(os.path.join(path, "unet", "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(path, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}, f)
    return path


def write_sd_controlnet(path: str, unet_config: dict | None = None, seed: int = 5, dtype=torch.float16) -> str:
    """A ControlNet for the tiny SD 1.5 UNet, in the original (lllyasviel) single-file layout."""
    import_comfy()
    import comfy.ops
    from comfy.cldm.cldm import ControlNet

    config = {k: v for k, v in (unet_config or SD15_TINY_UNET).items()
              if k not in ("out_channels", "use_temporal_attention", "use_temporal_resblock")}
    net = ControlNet(hint_channels=3, operations=comfy.ops.disable_weight_init, **config)
    sd = {"control_model." + k: v for k, v in randomize(net, seed).items()}
    return save_safetensors(sd, path, None, dtype)


def write_example_image(path: str, size: int = 96) -> str:
    """A small picture with edges (rings and a bar), for img2img and ControlNet inputs."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size] / size
    r = np.hypot(x - 0.5, y - 0.5)
    img = np.stack([(np.sin(r * 40) > 0) * 200 + 30, x * 255, ((y > 0.4) & (y < 0.6)) * 220 + 20], -1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(img.clip(0, 255).astype("uint8")).save(path)
    return path


EXAMPLE_VIDEO_PROMPT = "green circle moving left"  # the demo world's clip the video-to-video workflow restyles


def write_example_video(path: str, frames: int = 33, prompt: str = EXAMPLE_VIDEO_PROMPT) -> str:
    """A short H.264 clip of the demo world (demo/world.py, 128x96 at 16 fps: a shape gliding over a dark
    ground), the input of the video-to-video workflow."""
    from ..video.mp4 import Mp4Writer

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    writer = Mp4Writer(path, demo_world.WIDTH, demo_world.HEIGHT, demo_world.FPS)
    try:
        for frame in demo_world.render([(0, prompt)], frames):
            writer.write(frame[None])
    finally:
        writer.close()
    return path


WAN_TINY = dict(dim=128, ffn_dim=256, num_heads=1, num_layers=2, in_dim=16, out_dim=16, text_dim=4096, freq_dim=256)


def causal_wan_state_dict(seed: int = 11, **over) -> dict:
    """A tiny Wan 2.1 DiT (Wan key names) with random weights."""
    from ..models.causal_wan import CausalWanModel

    torch.manual_seed(seed)
    model = CausalWanModel(**{**WAN_TINY, **over})
    sd = {}
    gen = torch.Generator().manual_seed(seed)
    for name, t in model.state_dict().items():
        if "norm" in name and name.endswith("weight"):
            sd[name] = torch.ones_like(t, dtype=torch.float32)
        else:
            sd[name] = torch.randn(t.shape, generator=gen) * (0.1 if t.ndim > 1 else 0.02)
    return sd


def write_self_forcing_pt(path: str, seed: int = 11, fsdp: bool = False) -> str:
    """As self_forcing_dmd.pt: a torch pickle {generator, generator_ema, ...} with ``model.`` prefixes."""
    sd = causal_wan_state_dict(seed)
    prefix = "model._fsdp_wrapped_module." if fsdp else "model."
    ema = {prefix + k: v for k, v in sd.items()}
    other = {prefix + k: v + 1.0 for k, v in sd.items()}  # a different 'generator': ema must win
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"generator": other, "generator_ema": ema, "step": torch.tensor(3000)}, path)
    return path


def write_causal_safetensors(path: str, seed: int = 11, frames_per_block: int | None = 3, causal: bool = True,
                             dtype=torch.float32) -> str:
    """As a ComfyUI repackage: Wan key names, metadata config {"transformer": {"causal_ar": ...}} (ComfyUI
    0.21+ passes every key of "transformer" to its model class, which takes no frames per block: that
    goes in Tempo's own key, tempo.frames_per_block)."""
    meta = {"config": json.dumps({"transformer": {"causal_ar": causal}}),
            **({"tempo.frames_per_block": str(frames_per_block)} if frames_per_block else {})}
    return save_safetensors(causal_wan_state_dict(seed), path, meta, dtype)


def write_causal_fp8_scaled(path: str, seed: int = 11) -> str:
    """As ComfyUI's ``*_fp8_scaled.safetensors`` repackages: every Linear weight in float8_e4m3fn
    divided by a per-tensor ``scale_weight`` (amax / 448) with a ``scale_input`` of 1, the rest in
    bf16, and the ``scaled_fp8`` marker tensor."""
    sd = causal_wan_state_dict(seed)
    out = {}
    for k, v in sd.items():
        if k.endswith(".weight") and v.ndim == 2:
            scale = v.abs().max() / 448.0
            out[k] = (v / scale).to(torch.float8_e4m3fn)
            out[k[:-len("weight")] + "scale_weight"] = scale.reshape(1).float()
            out[k[:-len("weight")] + "scale_input"] = torch.ones(1)
        else:
            out[k] = v.to(torch.bfloat16) if v.ndim > 1 else v
    out["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    meta = {"config": json.dumps({"transformer": {"causal_ar": True}}), "tempo.frames_per_block": "3"}
    return save_safetensors(out, path, meta, dtype=None)


def wan_lora_state_dict(seed: int = 37, rank: int = 4, alpha: float = 2.0,
                        targets=("blocks.0.self_attn.q", "blocks.1.ffn.0", "blocks.0.cross_attn.o")) -> dict:
    """A LoRA for the tiny Wan DiT in the common ``diffusion_model.<layer>.lora_up/lora_down/alpha`` naming."""
    ref = causal_wan_state_dict()
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for t in targets:
        out_f, in_f = ref[t + ".weight"].shape
        sd[f"diffusion_model.{t}.lora_down.weight"] = torch.randn(rank, in_f, generator=gen) * 0.1
        sd[f"diffusion_model.{t}.lora_up.weight"] = torch.randn(out_f, rank, generator=gen) * 0.1
        sd[f"diffusion_model.{t}.alpha"] = torch.tensor(alpha)
    return sd


def write_wan_gguf(path: str, seed: int = 11) -> str:
    """As the community's GGUF Wan files (ComfyUI-GGUF's convert tool): architecture "wan", Wan key
    names, Q8_0 for the Linear weights, F32 for the rest (modulations and 1-D tensors). Needs the
    ``gguf`` package."""
    import gguf

    kinds = gguf.GGMLQuantizationType
    writer = gguf.GGUFWriter(path=None, arch="wan")
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    for k, t in causal_wan_state_dict(seed).items():
        a = t.float().numpy()
        kind = kinds.Q8_0 if a.ndim == 2 and a.shape[-1] % 32 == 0 and ".modulation" not in k else kinds.F32
        writer.add_tensor(k, gguf.quants.quantize(a, kind), raw_dtype=kind)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    writer.write_header_to_file(path=path)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def wan_vae_state_dict(seed: int = 13) -> dict:
    """A full-size Wan 2.1 VAE (ComfyUI builds it at a fixed size), random."""
    import_comfy()
    from comfy.ldm.wan.vae import WanVAE

    vae = WanVAE(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                 temperal_downsample=[False, True, True], dropout=0.0)
    return randomize(vae, seed, std=0.02)


def write_wan_vae(path: str, seed: int = 13) -> str:
    return save_safetensors(wan_vae_state_dict(seed), path, None, torch.float16)


def write_conditioning(path: str, seed: int = 17, tokens: int = 512, dim: int = 4096) -> str:
    """Saved Wan text conditioning ([1, 512, 4096], as umT5-XXL gives), as Tempo Save Conditioning writes it."""
    gen = torch.Generator().manual_seed(seed)
    return save_safetensors({"cond.0": torch.randn(1, tokens, dim, generator=gen) * 0.1}, path, None, torch.float32)


def write_demo_conditioning(path: str, prompt: str) -> str:
    """A demo prompt as Tempo Save Conditioning writes it, encoded by the demo's text encoder."""
    from ..demo import text_encoder

    return save_safetensors({"cond.0": text_encoder.encode(prompt)}, path, None, torch.float32)


def write_demo_wan_vae(path: str) -> str:
    """The demo's Wan 2.1 VAE: the full architecture ComfyUI builds, its weights set by hand to the demo
    world's codec (factory/demo_codec.py), in float16 as Comfy-Org's file is."""
    from .demo_codec import codec_wan_vae_state_dict

    return save_safetensors(codec_wan_vae_state_dict(), path, None, torch.float16)


def write_demo_taehv(path: str) -> str:
    """The demo's taew2_1: TAEHV's layout, its weights set by hand to the same codec, reading the latents as
    the pack feeds them (in the Wan 2.1 latent format's diffusion space)."""
    import_comfy()
    import comfy.latent_formats

    from .demo_codec import codec_taehv_state_dict

    fmt = comfy.latent_formats.Wan21()
    return save_taehv(codec_taehv_state_dict(fmt.latents_mean, fmt.latents_std, fmt.scale_factor), path)


def write_demo_self_forcing_pt(path: str) -> str:
    """The demo's trained causal model (demo/trained/causal_demo.safetensors, written by
    ``tempo.py train-demo``) as self_forcing_dmd.pt is released: a torch pickle {generator_ema,
    generator} with ``model.`` prefixes."""
    from safetensors.torch import load_file

    if not os.path.isfile(DEMO_TRAINED):
        raise FileNotFoundError(f"{DEMO_TRAINED} is missing: run 'python tempo.py train-demo' (it writes it)")
    sd = {"model." + k: v for k, v in load_file(DEMO_TRAINED).items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"generator_ema": sd, "generator": sd}, path)
    return path


def write_apt_video(path: str, seed: int = 19, frames: int | None = None, in_dim: int = 16, dtype=torch.float16) -> str:
    """An APT-style one-step video generator: a Wan 2.1 DiT with its rule in the metadata."""
    meta = {"tempo.timestep": "1000", "tempo.shift": "5.0"}
    if frames:
        meta["tempo.frames"] = str(frames)
    sd = causal_wan_state_dict(seed, in_dim=in_dim)
    return save_safetensors(sd, path, meta, dtype)


def write_rcm_pt(path: str, seed: int = 19, in_dim: int = 16, wrapped: bool = False) -> str:
    """As rCM's released ``.pt`` (NVlabs/rcm@5b41aa9 scripts/dcp_to_pth.py:38-46): the EMA weights as
    ``net.*`` in bf16, saved with torch.save; the patch embedding a Linear [dim, in_dim * 4]
    (rcm/networks/wan2pt1.py:567); ``wrapped``: block keys still inside the activation-checkpoint
    wrapper (``blocks.0._checkpoint_wrapped_module.self_attn...``)."""
    sd = causal_wan_state_dict(seed, in_dim=in_dim)
    out = {}
    for k, v in sd.items():
        if k == "patch_embedding.weight":
            v = v.reshape(v.shape[0], -1)
        if wrapped and k.startswith("blocks."):
            i, rest = k[len("blocks."):].split(".", 1)
            k = f"blocks.{i}._checkpoint_wrapped_module.{rest}"
        out["net." + k] = v.to(torch.bfloat16)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(out, path)
    return path


def write_turbodiffusion_pth(path: str, seed: int = 19, quant: bool = False) -> str:
    """As TurboDiffusion's ``TurboWan*.pth`` (thu-ml/TurboDiffusion@aaecff5 turbodiffusion/modify_model.py:
    47-67, 162-183): Wan keys plus each block's SLA ``self_attn.attn_op.local_attn.proj_l``; ``quant``: the
    ``-quant`` files, whose block linears are ``int8_weight`` + a 128-block ``scale``."""
    sd = causal_wan_state_dict(seed)
    out = {}
    for k, v in sd.items():
        if quant and k.startswith("blocks.") and k.endswith(".weight") and v.ndim == 2:
            scale = v.abs().amax().reshape(1, 1).expand((v.shape[0] + 127) // 128, (v.shape[1] + 127) // 128) / 128
            out[k[:-len("weight")] + "int8_weight"] = (v / scale[0, 0]).round().clamp(-127, 127).to(torch.int8)
            out[k[:-len("weight")] + "scale"] = scale.float().contiguous()
        else:
            out[k] = v
    for i in range(WAN_TINY["num_layers"]):
        head = WAN_TINY["dim"] // WAN_TINY["num_heads"]
        out[f"blocks.{i}.self_attn.attn_op.local_attn.proj_l.weight"] = torch.zeros(head, head)
        out[f"blocks.{i}.self_attn.attn_op.local_attn.proj_l.bias"] = torch.zeros(head)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(out, path)
    return path


def taehv_state_dict(latent_channels: int = 16, seed: int = 71) -> dict:
    """A TAEHV decoder (taew2_1's architecture and key names) with PyTorch's default random init."""
    from ..models.taehv import TAEHVDecoder

    torch.manual_seed(seed)
    return TAEHVDecoder(latent_channels, 1 if latent_channels == 16 else 2).state_dict()


def write_taehv(path: str, latent_channels: int = 16, seed: int = 71) -> str:
    """A random TAEHV decoder, saved as :func:`save_taehv` does."""
    return save_taehv(taehv_state_dict(latent_channels, seed), path)


def save_taehv(sd: dict, path: str) -> str:
    """As madebyollin/taehv's taew2_1.pth: a torch.save'd state dict (its decoder part); a .safetensors
    name is written as the repository's safetensors/ conversions are."""
    if path.endswith(".safetensors"):
        return save_safetensors(sd, path, None, None)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(sd, path)
    return path


SVD_TINY_UNET = {
    "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
    "num_classes": "sequential", "adm_in_channels": 768, "in_channels": 8, "out_channels": 4, "model_channels": 64,
    "num_res_blocks": [1, 1], "transformer_depth": [1, 0], "transformer_depth_output": [1, 1, 0, 0],
    "channel_mult": [1, 2], "transformer_depth_middle": 1, "use_linear_in_transformer": True, "context_dim": 1024,
    "extra_ff_mix_layer": True, "use_spatial_context": True, "merge_strategy": "learned_with_images",
    "merge_factor": 0.0, "video_kernel_size": [3, 1, 1], "use_temporal_resblock": True,
    "use_temporal_attention": True, "disable_temporal_crossattention": False,
}
SVD_CLIP_PREFIX = "conditioner.embedders.0.open_clip.model.visual."


def vit_h_open_clip_state_dict(seed: int = 23) -> dict:
    """A full-size OpenCLIP ViT-H/14 image tower (SVD's image encoder), random, in open_clip naming."""
    import_comfy()
    import comfy.clip_vision

    cfg = os.path.join(os.path.dirname(comfy.clip_vision.__file__), "clip_vision_config_h.json")
    model = comfy.clip_vision.ClipVisionModel(cfg)
    hf = randomize(model.model, seed, std=0.02)
    out = {}
    rename = {"vision_model.embeddings.class_embedding": "class_embedding",
              "vision_model.embeddings.patch_embedding.weight": "conv1.weight",
              "vision_model.embeddings.position_embedding.weight": "positional_embedding",
              "vision_model.post_layernorm.weight": "ln_post.weight", "vision_model.post_layernorm.bias": "ln_post.bias",
              "vision_model.pre_layrnorm.weight": "ln_pre.weight", "vision_model.pre_layrnorm.bias": "ln_pre.bias"}
    layer_parts = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
                   "self_attn.out_proj": "attn.out_proj"}
    qkv = {}
    for k, v in hf.items():
        if k in rename:
            out[rename[k]] = v
        elif k == "visual_projection.weight":
            out["proj"] = v.t().contiguous()
        elif k.startswith("vision_model.encoder.layers."):
            n, rest = k[len("vision_model.encoder.layers."):].split(".", 1)
            for a, b in layer_parts.items():
                if rest.startswith(a + "."):
                    out[f"transformer.resblocks.{n}.{b}{rest[len(a):]}"] = v
                    break
            else:
                proj, kind = rest.rsplit(".", 1)  # self_attn.q_proj / weight
                qkv.setdefault((n, kind), {})[proj] = v
    for (n, kind), parts in qkv.items():
        out[f"transformer.resblocks.{n}.attn.in_proj_{kind}"] = torch.cat(
            [parts["self_attn.q_proj"], parts["self_attn.k_proj"], parts["self_attn.v_proj"]])
    return out


def svd_vae_state_dict(seed: int = 29) -> dict:
    """SVD's VAE (image encoder, temporal video decoder), full size as ComfyUI builds it, random."""
    import_comfy()
    from comfy.ldm.models.autoencoder import AutoencodingEngine

    enc = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
           "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    dec = dict(enc, video_kernel_size=[3, 1, 1], alpha=0.0)
    vae = AutoencodingEngine(
        regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
        encoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Encoder", "params": enc},
        decoder_config={"target": "comfy.ldm.modules.temporal_ae.VideoDecoder", "params": dec})
    return randomize(vae, seed, std=0.01)


def write_svd_checkpoint(path: str, seed: int = 31, dtype=torch.float16) -> str:
    """An SVD(-XT) single file as Stability ships it: model.diffusion_model. (tiny), the OpenCLIP
    image encoder under conditioner.embedders.0 (full size) and first_stage_model. (full size)."""
    import_comfy()
    import comfy.supported_models as sm

    mc = sm.SVD_img2vid(dict(SVD_TINY_UNET))
    mc.set_inference_dtype(torch.float32, None)
    unet = randomize(mc.get_model({}).diffusion_model, seed)
    sd = {"model.diffusion_model." + k: v for k, v in unet.items()}
    sd.update({SVD_CLIP_PREFIX + k: v for k, v in vit_h_open_clip_state_dict(seed + 1).items()})
    sd.update({"first_stage_model." + k: v for k, v in svd_vae_state_dict(seed + 2).items()})
    return save_safetensors(sd, path, {"modelspec.architecture": "stable-video-diffusion-img2vid-v1"}, dtype)


def sd_lora_state_dict(seed: int = 13, rank: int = 4, alpha: float = 4.0, unet_config: dict | None = None) -> dict:
    """A LoRA for the demo SD 1.5 UNet's attention and feed-forward layers (``diffusion_model.<layer>``
    naming, which ComfyUI's LoraLoaderModelOnly maps onto any UNet), as Hyper-SD15-1step-lora.safetensors
    stands in the shipped workflows."""
    unet = unet_state_dict("SD15", unet_config or SD15_DEMO_UNET, 0)
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, w in unet.items():
        if w.ndim == 2 and any(t in key for t in (".to_q.", ".to_k.", ".to_v.", ".to_out.0.", ".ff.net.2.")):
            layer = key[:-len(".weight")]
            sd[f"diffusion_model.{layer}.lora_down.weight"] = torch.randn(rank, w.shape[1], generator=gen) * 0.05
            sd[f"diffusion_model.{layer}.lora_up.weight"] = torch.randn(w.shape[0], rank, generator=gen) * 0.05
            sd[f"diffusion_model.{layer}.alpha"] = torch.tensor(alpha)
    return sd


def write_clip_vision_h(path: str, seed: int = 29) -> str:
    """As clip_vision_h.safetensors: OpenCLIP ViT-H/14's image tower at full size (ComfyUI's CLIPVisionLoader
    builds it at a fixed width), in open_clip naming under ``visual.``, which ComfyUI converts on load."""
    return save_safetensors({"visual." + k: v for k, v in vit_h_open_clip_state_dict(seed).items()}, path, {},
                            torch.float16)


# (models/ subfolder or "" for the models root, file name, writer) of every demo file: a stand-in under
# the name of each released file the shipped workflows use, and the example inputs.
DEMO_FILES = [
    ("checkpoints", SD15_CKPT, lambda p: write_sd_checkpoint(p, "SD15", seed=0, unet_config=SD15_DEMO_UNET)),
    ("loras", HYPER_SD15_LORA, lambda p: save_safetensors(sd_lora_state_dict(), p, {}, torch.float16)),
    ("controlnet", SD15_CONTROLNET, lambda p: write_sd_controlnet(p, unet_config=SD15_DEMO_UNET)),
    ("", EXAMPLE_IMAGE, lambda p: write_example_image(p)),
    ("", EXAMPLE_VIDEO, lambda p: write_example_video(p)),
    ("diffusion_models", CAUSAL_MODEL, lambda p: write_demo_self_forcing_pt(p)),
    ("checkpoints", SVD_CKPT, lambda p: write_svd_checkpoint(p)),
    ("vae", WAN_VAE, lambda p: write_demo_wan_vae(p)),
    ("diffusion_models", WAN22_HIGH, lambda p: save_safetensors(causal_wan_state_dict(41), p, {}, torch.float16)),
    ("diffusion_models", WAN22_LOW, lambda p: save_safetensors(causal_wan_state_dict(43), p, {}, torch.float16)),
    ("loras", LIGHTNING_HIGH_LORA, lambda p: save_safetensors(wan_lora_state_dict(47), p, {}, torch.float32)),
    ("loras", LIGHTNING_LOW_LORA, lambda p: save_safetensors(wan_lora_state_dict(53), p, {}, torch.float32)),
    ("diffusion_models", WAN21_I2V_BASE, lambda p: save_safetensors(causal_wan_state_dict(59, in_dim=36), p, {},
                                                                    torch.float16)),
    ("clip_vision", CLIP_VISION_H, lambda p: write_clip_vision_h(p)),
    ("loras", LIGHTX2V_I2V_LORA, lambda p: save_safetensors(wan_lora_state_dict(61), p, {}, torch.float32)),
    ("diffusion_models", RCM_MODEL, lambda p: write_rcm_pt(p, seed=67)),
    ("vae_approx", TAEHV_DEMO, lambda p: write_demo_taehv(p)),
] + [("tempo_conditioning", name, lambda p, prompt=prompt: write_demo_conditioning(p, prompt))
     for prompt, name in DEMO_PROMPT_FILES.items()]

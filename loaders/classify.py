"""What a state dict is: which kind of file, which architecture, which one-step family.

Plain Python; no ComfyUI import. Used to refuse the wrong file early, with a message that
says what the file is and which loader takes it.
"""

from __future__ import annotations

import os
import re


# safetensors "modelspec.architecture" values (Stability AI model spec) -> our base names.
MODELSPEC_ARCH = {
    "stable-diffusion-v1": "SD15", "stable-diffusion-v1-5": "SD15",
    "stable-diffusion-v2-512": "SD21", "stable-diffusion-v2-1-base": "SD21", "stable-diffusion-v2-768-v": "SD21",
    "stable-diffusion-v2-1": "SD21", "stable-diffusion-v2": "SD21",
    "stable-diffusion-xl-v1-base": "SDXL", "stable-diffusion-xl-v1": "SDXL", "stable-diffusion-xl-turbo": "SDXL",
    "stable-video-diffusion-img2vid-v1": "SVD",
}


def _has(sd, *patterns) -> bool:
    return any(any(k.startswith(p) or p in k for k in sd) for p in patterns)


def file_kind(sd: dict) -> str:
    """One of: checkpoint, unet, unet_diffusers, wan_dit, vae, lora, text_encoder, controlnet, unknown."""
    keys = list(sd)
    if any(".lora_up." in k or ".lora_down." in k or ".lora_A." in k or ".lora_B." in k
           or k.startswith("lora_unet_") or k.startswith("lora_te") for k in keys):
        return "lora"
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return "checkpoint"
    if _has(sd, "control_model.", "input_hint_block.", "controlnet_cond_embedding."):
        return "controlnet"
    if any(k.startswith("input_blocks.") for k in keys) and any(k.startswith("out.") for k in keys):
        return "unet"
    if "conv_in.weight" in sd and any(k.startswith("down_blocks.") for k in keys) and "time_embedding.linear_1.weight" in sd:
        return "unet_diffusers"
    if any(re.match(r"(model\.)?(_fsdp_wrapped_module\.)?blocks\.\d+\.self_attn\.q\.weight", k) for k in keys) \
            and any(k.endswith("patch_embedding.weight") for k in keys):
        return "wan_dit"
    if _has(sd, "decoder.up.", "decoder.up_blocks.", "encoder.down.", "decoder.conv_in.") \
            and not any(k.startswith("input_blocks.") for k in keys):
        return "vae"
    if _has(sd, "text_model.encoder.layers.", "encoder.block.", "transformer.text_model.", "shared.weight",
            "model.layers."):
        return "text_encoder"
    return "unknown"


KIND_HELP = {
    "vae": "a VAE: load it with ComfyUI's 'Load VAE' node",
    "lora": "a LoRA: apply it with ComfyUI's 'LoraLoaderModelOnly' node after the loader",
    "text_encoder": "a text encoder: load it with ComfyUI's 'Load CLIP' node",
    "controlnet": "a ControlNet: load it with ComfyUI's 'Load ControlNet Model' node",
    "wan_dit": "a Wan video transformer: use the Tempo video loaders",
    "unknown": "not a diffusion model this loader knows",
}


def context_dim(sd: dict, prefix: str = "") -> int | None:
    for k, v in sd.items():
        if k.startswith(prefix) and (k.endswith("attn2.to_k.weight")) and v.ndim == 2:
            return int(v.shape[1])
    return None


def image_base(sd: dict, metadata: dict | None = None) -> tuple[str | None, str]:
    """(base, reason): SD15, SD21, SDXL or SVD, from the file's metadata, else its shapes."""
    arch = (metadata or {}).get("modelspec.architecture", "")
    for key, base in MODELSPEC_ARCH.items():
        if arch.startswith(key):
            return base, f"metadata modelspec.architecture = {arch}"
    prefix = "model.diffusion_model." if any(k.startswith("model.diffusion_model.") for k in sd) else ""
    if any(".time_stack." in k or "time_mixer" in k for k in sd):
        return "SVD", "temporal layers (time_stack)"
    ctx = context_dim(sd, prefix)
    if ctx is None:
        return None, "no cross-attention found"
    if any(k.startswith(prefix + "label_emb.") or k.startswith("add_embedding.") for k in sd) and ctx == 2048:
        return "SDXL", "cross-attention width 2048 and a pooled-text embedding"
    return {768: "SD15", 1024: "SD21"}.get(ctx), f"cross-attention width {ctx}"


# What the file names (and metadata titles) of public checkpoints say about their family, first
# match wins: the causal video families (a Self Forcing file is "self_forcing_dmd.pt"), then the
# one-step image and video families, whose names are the presets'.
CAUSAL_FAMILIES = ("Self Forcing", "CausVid", "Causal Forcing", "One-Forcing")
FAMILY_HINTS = [
    (r"self[-_ ]?forcing", "Self Forcing"),
    (r"one[-_ ]?forcing", "One-Forcing"),
    (r"causvid", "CausVid"),
    (r"causal[-_ ]?forcing", "Causal Forcing"),
    (r"animate[-_ ]?lcm", "AnimateLCM-SVD"),
    (r"lightning.*1[-_ ]?step|1[-_ ]?step.*lightning", "SDXL-Lightning-1step"),
    (r"lightning", "SDXL-Lightning"),
    (r"hyper.?sd.*1[-_ ]?step|hyper.*1step", "Hyper-SD-1step"),
    (r"dmd2?", "DMD2"),
    (r"instaflow|rectified[-_ ]?flow|2_rectified", "InstaFlow"),
    (r"swiftbrush", "SwiftBrush"),
    (r"ufogen", "UFOGen"),
    (r"(^|[^a-z])lcm([^a-z]|$)", "LCM"),
    (r"sd_?xl[-_ ]?turbo|sdxl.?turbo", "SDXL-Turbo"),
    (r"sd[-_ ]?turbo|sd2.?1.?turbo", "SD-Turbo"),
]


def family_from_name(text: str) -> str | None:
    """The family a file name or title names, or None."""
    for pattern, family in FAMILY_HINTS:
        if text and re.search(pattern, text, re.IGNORECASE):
            return family
    return None


def detect_preset(path: str, metadata: dict | None = None, base: str | None = None) -> tuple[str | None, str]:
    """(preset name, reason) from explicit metadata, else from the file name. (None, why) if unknown."""
    metadata = metadata or {}
    if metadata.get("tempo.preset"):
        return metadata["tempo.preset"], "metadata tempo.preset"
    texts = [metadata.get("modelspec.title", ""), metadata.get("modelspec.description", ""),
             os.path.basename(os.path.normpath(path))]
    for text in texts:
        name = family_from_name(text)
        if name is not None and name not in CAUSAL_FAMILIES:
            if name == "SD-Turbo" and base == "SDXL":
                name = "SDXL-Turbo"
            return name, f"name '{text}' matches {name}"
    return None, f"nothing in the file name '{os.path.basename(path)}' or its metadata names a one-step family"


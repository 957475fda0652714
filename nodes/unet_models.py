"""Build native ComfyUI MODEL / CLIP / VAE objects from UNet checkpoints (SD 1.5 / 2.1 / SDXL, SVD).

One path for every size: the base architecture comes from the file (metadata, else
shapes), the UNet configuration from ComfyUI's own detector, and the model class from
ComfyUI's supported models. ComfyUI's automatic matcher only accepts released sizes; going
through the class directly also loads distilled UNets with other depths (and the tiny ones
the tests build) the same way as the released ones.
"""

from __future__ import annotations

import logging
import os


import comfy.clip_vision
import comfy.model_management as mm
import comfy.sd
import comfy.utils
import folder_paths

from ..loaders.classify import KIND_HELP, file_kind, image_base
from ..loaders.files import CheckpointError, read_checkpoint
from ..loaders.sd_unet import diffusers_unet_structure
from ..loaders.svd import is_svd_diffusers, split_svd_diffusers, svd_vae_diffusers_to_sgm
from . import compat
from .common import WEIGHT_DTYPES, check_choice

BASE_CONFIGS = {
    "SD15": compat.SD15,
    "SD21": compat.SD20,
    "SDXL": compat.SDXL,
    "SVD": compat.SVD_img2vid,
}
IMAGE_BASES = ("SD15", "SD21", "SDXL")


def _diffusers_to_ldm(sd: dict) -> dict:
    """A diffusers UNet (image, or SVD's spatio-temporal one) in the original layout ComfyUI uses."""
    temporal = []
    if is_svd_diffusers(sd):
        sd, temporal = split_svd_diffusers(sd)
    structure = diffusers_unet_structure(sd)
    mapping = comfy.utils.unet_to_diffusers(structure)
    out = {dst: sd[src] for src, dst in mapping.items() if src in sd}
    leftover = set(sd) - set(mapping)
    if leftover:
        raise CheckpointError(f"the diffusers UNet has tensors this layout does not place: {sorted(leftover)[:5]}")
    for anchor, suffix, tensor in temporal:
        target = mapping.get(anchor)
        if target is None:
            raise CheckpointError(f"a temporal layer hangs off {anchor}, which this UNet does not have")
        block = target.rsplit(".", 3 if ".in_layers." in target else 2)[0]  # drop in_layers.2.weight / proj_in.weight
        out[f"{block}.{suffix}"] = tensor
    return out


def load_image_model(path: str, dtype: str = "default", output_clip: bool = True, output_vae: bool = True,
                     bases: tuple = IMAGE_BASES, extras: dict | None = None):
    """(model_patcher, clip or None, vae or None, base, metadata) for a UNet checkpoint of ``bases``.
    ``extras``, when given, receives the CLIP vision model of SVD files and folders."""
    sd, metadata = read_checkpoint(path)
    name = os.path.basename(os.path.normpath(path))
    kind = file_kind(sd)
    if kind not in ("checkpoint", "unet", "unet_diffusers"):
        raise CheckpointError(f"{name} is {KIND_HELP.get(kind, kind)}, not a one-step image model")
    base, why = image_base(sd, metadata)
    if base == "SVD" and "SVD" not in bases:
        raise CheckpointError(f"{name} is a Stable Video Diffusion model ({why}); load it with 'Tempo SVD Loader'")
    if base != "SVD" and "SVD" in bases:
        raise CheckpointError(f"{name} is not a Stable Video Diffusion UNet (it is {base or 'unknown'}: {why}); "
                              "load it with 'Tempo One-Step Image Loader'")
    if base not in BASE_CONFIGS:
        raise CheckpointError(f"{name}: cannot tell its architecture ({why}); one-step image models are "
                              "SD 1.5, SD 2.1 or SDXL UNets")
    prefix = "model.diffusion_model." if kind == "checkpoint" else ""
    full = sd
    if kind == "unet_diffusers":
        sd = _diffusers_to_ldm(sd)
    unet_config = compat.detect_unet_config(sd, prefix, metadata=metadata)
    if unet_config is None:
        raise CheckpointError(f"{name}: ComfyUI could not read a UNet configuration from it")
    model_config = BASE_CONFIGS[base](unet_config)
    load_device = mm.get_torch_device()
    offload_device = mm.unet_offload_device()
    params = comfy.utils.calculate_parameters(sd, prefix)
    unet_dtype = WEIGHT_DTYPES[check_choice(dtype, WEIGHT_DTYPES, "weight_dtype")] or mm.unet_dtype(model_params=params,
                                                 supported_dtypes=list(model_config.supported_inference_dtypes),
                                                 weight_dtype=comfy.utils.weight_dtype(sd, prefix))
    manual_cast = mm.unet_manual_cast(unet_dtype, load_device, model_config.supported_inference_dtypes)
    model_config.set_inference_dtype(unet_dtype, manual_cast)
    model = model_config.get_model(sd, prefix, device=offload_device)
    model.load_model_weights(sd, prefix)
    patcher = compat.ModelPatcher(model, load_device=load_device, offload_device=offload_device)

    clip = vae = None
    if kind == "checkpoint" and output_vae:
        vae_sd = comfy.utils.state_dict_prefix_replace(full, {k: "" for k in model_config.vae_key_prefix},
                                                       filter_keys=True)
        if vae_sd:
            vae = comfy.sd.VAE(sd=model_config.process_vae_state_dict(vae_sd), metadata=metadata)
    if kind == "checkpoint" and extras is not None and model_config.clip_vision_prefix is not None:
        if any(k.startswith(model_config.clip_vision_prefix) for k in full):
            extras["clip_vision"] = comfy.clip_vision.load_clipvision_from_sd(full, model_config.clip_vision_prefix, True)
    if kind == "checkpoint" and output_clip and base != "SVD":
        target = model_config.clip_target(state_dict=full)
        clip_sd = model_config.process_clip_state_dict(full) if target is not None else {}
        if clip_sd:
            clip = comfy.sd.CLIP(target, embedding_directory=folder_paths.get_folder_paths("embeddings"),
                                 tokenizer_data=clip_sd, parameters=comfy.utils.calculate_parameters(clip_sd))
            clip.load_sd(clip_sd, full_model=True)
    if os.path.isdir(path):
        clip, vae = _diffusers_folder_extras(path, output_clip and base != "SVD", output_vae)
        if extras is not None:
            extras["clip_vision"] = _diffusers_image_encoder(path)
    logging.info(f"Tempo: loaded {name} as {base} ({why})")
    return patcher, clip, vae, base, metadata


def _diffusers_image_encoder(path: str):
    """CLIP vision model of a diffusers folder's image_encoder/ (SVD), through ComfyUI's loader."""
    for n in ("model.fp16.safetensors", "model.safetensors", "pytorch_model.fp16.bin", "pytorch_model.bin"):
        p = os.path.join(path, "image_encoder", n)
        if os.path.isfile(p):
            return comfy.clip_vision.load(p)
    return None


def _diffusers_folder_extras(path: str, want_clip: bool, want_vae: bool):
    """Text encoders and VAE of a diffusers folder (when it has them), through ComfyUI's own loaders."""
    names = ["model.fp16.safetensors", "model.safetensors", "pytorch_model.fp16.bin", "pytorch_model.bin"]
    clip = vae = None
    if want_clip:
        encoders = [os.path.join(path, sub, n) for sub in ("text_encoder", "text_encoder_2") for n in names
                    if os.path.isfile(os.path.join(path, sub, n))]
        firsts = {}
        for p in encoders:
            firsts.setdefault(os.path.dirname(p), p)
        if firsts:
            clip = comfy.sd.load_clip(list(firsts.values()),
                                      embedding_directory=folder_paths.get_folder_paths("embeddings"))
    if want_vae:
        for n in ("diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors",
                  "diffusion_pytorch_model.bin"):
            p = os.path.join(path, "vae", n)
            if os.path.isfile(p):
                vae_sd = comfy.utils.load_torch_file(p, safe_load=True)
                if any(".temporal_res_block." in k or k.startswith("decoder.time_conv_out") for k in vae_sd):
                    vae_sd = svd_vae_diffusers_to_sgm(vae_sd)
                vae = comfy.sd.VAE(sd=vae_sd)
                break
    return clip, vae

"""Shared pieces of the ComfyUI adapters: naming, model files, error wrapping."""

from __future__ import annotations

import os

import folder_paths
import torch

from ..errors import TempoError

CATEGORY = "Tempo"
PREFIX = "Tempo"

# Weight precision choices of every Tempo loader (None: ComfyUI picks for the device). fp8 keeps the
# weights in 8 bits and computes in bf16; the image loaders do not offer it (IMAGE_WEIGHT_DTYPES).
WEIGHT_DTYPES = {"default": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
                 "fp8_e4m3fn (storage)": torch.float8_e4m3fn}
IMAGE_WEIGHT_DTYPES = [k for k, v in WEIGHT_DTYPES.items() if v is None or v.itemsize > 1]

# Where each kind of model file is looked up, in order.
IMAGE_MODEL_FOLDERS = ("checkpoints", "diffusion_models", "diffusers")


class TempoInputError(TempoError):
    """Bad input to a Tempo node; the message names the input and the fix."""


def _diffusers_dirs() -> list[str]:
    names = []
    try:
        roots = folder_paths.get_folder_paths("diffusers")
    except KeyError:
        return names
    for root in roots:
        if not os.path.isdir(root):
            continue
        for d in sorted(os.listdir(root)):
            p = os.path.join(root, d)
            if os.path.isdir(p) and any(os.path.isdir(os.path.join(p, s)) for s in ("unet", "transformer")):
                names.append(d)
    return names


def model_file_list(folders=IMAGE_MODEL_FOLDERS) -> list[str]:
    names = []
    for folder in folders:
        if folder == "diffusers":
            names += _diffusers_dirs()
        else:
            try:
                names += folder_paths.get_filename_list(folder)
            except KeyError:
                pass
    seen = set()
    return [n for n in names if not (n in seen or seen.add(n))]


def resolve_model_path(name: str, folders=IMAGE_MODEL_FOLDERS) -> str:
    for folder in folders:
        if folder == "diffusers":
            for root in folder_paths.get_folder_paths("diffusers"):
                p = os.path.join(root, name)
                if os.path.isdir(p):
                    return p
            continue
        try:
            p = folder_paths.get_full_path(folder, name)
        except KeyError:
            p = None
        if p:
            return p
    places = ", ".join(f"models/{f}/" for f in folders)
    raise TempoInputError(f"model file '{name}' was not found in {places}; put it there and press R "
                          "in the editor to refresh the list")

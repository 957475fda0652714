"""Shared pieces of the ComfyUI adapters: naming, model files, error wrapping."""

from __future__ import annotations

import os

import folder_paths
import torch

from ..errors import TempoError
from ..loaders.paths import is_inside, name_problem, shown

CATEGORY = "Tempo"
CAUSAL_CATEGORY = CATEGORY + "/causal video"
PREFIX = "Tempo"
CONDITIONING_FOLDER = "tempo_conditioning"  # Tempo Save / Load Conditioning's files (models/tempo_conditioning)

# Weight precision choices of every Tempo loader (None: ComfyUI picks for the device). fp8 keeps the
# weights in 8 bits and computes in bf16; the image loaders do not offer it (IMAGE_WEIGHT_DTYPES).
WEIGHT_DTYPES = {"default": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
                 "fp8_e4m3fn (storage)": torch.float8_e4m3fn}
IMAGE_WEIGHT_DTYPES = [k for k, v in WEIGHT_DTYPES.items() if v is None or v.itemsize > 1]
# fp8 storage with fp8 matrix multiplication where the GPU has it (Ada, Hopper): ComfyUI's own
# "fp8_e4m3fn_fast" of Load Diffusion Model (model_options fp8_optimizations; fp8 storage elsewhere).
FP8_MATMUL = "fp8_e4m3fn_fast (fp8 matmul)"
CAUSAL_WEIGHT_DTYPES = [*WEIGHT_DTYPES, FP8_MATMUL]

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


def _incomplete_diffusers_dir(name: str) -> bool:
    """True when ``name`` (a plain folder name, nothing more) is a folder directly in a diffusers
    model folder that lacks the unet/ or transformer/ a model needs (a partial download)."""
    if name_problem(name) is not None or any(c in name for c in "/\\") or name in (".", ".."):
        return False
    try:
        roots = folder_paths.get_folder_paths("diffusers")
    except KeyError:
        return False
    return any(os.path.isdir(os.path.join(root, name)) for root in roots)


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


def check_choice(value, options, input_name: str):
    """A combo value must be one of its options (a ComfyUI that does not check V3 combos, or a
    direct call, may pass anything)."""
    if value not in options:
        raise TempoInputError(f"{input_name} '{shown(value)}' is not one of {', '.join(map(str, options))}")
    return value


def widget_problem(node_cls, values: dict) -> str | None:
    """ComfyUI's own checks of the widget values in ``values`` against ``node_cls``'s schema (min, max,
    combo options): a node with a ``validate_inputs(**widgets)`` takes them over, since ComfyUI skips its
    own checks for the inputs such a hook receives (execution.validate_inputs). None when all pass."""
    for spec in node_cls.define_schema().inputs:
        if spec.id not in values or isinstance(values[spec.id], (list, tuple)):
            continue  # absent, or linked: checked when the node runs
        value = values[spec.id]
        low, high, options = getattr(spec, "min", None), getattr(spec, "max", None), getattr(spec, "options", None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if low is not None and value < low:
                return f"{spec.id} {value} is below its minimum {low}"
            if high is not None and value > high:
                return f"{spec.id} {value} is above its maximum {high}"
        if options and value not in options:
            return f"{spec.id} '{shown(value)}' is not one of {', '.join(map(str, options))}"
    return None


def model_roots() -> list[str]:
    """Every folder ComfyUI assigns to models, of any kind (models/ and extra_model_paths.yaml)."""
    roots = [folder_paths.models_dir]
    for paths, _ in folder_paths.folder_names_and_paths.values():
        roots += list(paths)
    return roots


def refuse_name(name, folders, input_name: str = "model file") -> TempoInputError:
    """The one message for a name that does not resolve inside its folders, whatever the reason
    (absent, outside, malformed): it never tells whether a path exists."""
    places = ", ".join(f"models/{f}/" for f in folders)
    return TempoInputError(f"{input_name} '{shown(name)}' is not one of the files in {places}; put it there (or in a "
                           "folder for it in extra_model_paths.yaml) and press R in the editor to refresh the list")


def resolve_model_path(name: str, folders=IMAGE_MODEL_FOLDERS, input_name: str = "model file") -> str:
    """The path of ``name``, which must be one of the folders' listed files (the combo's options:
    the running ComfyUI may not check V3 combos) and resolve, symlinks included, inside the folders
    ComfyUI assigns to models."""
    if name_problem(name) is not None or name not in model_file_list(folders):
        incomplete = _incomplete_diffusers_dir(name) if "diffusers" in folders else None
        if incomplete:
            raise TempoInputError(f"{input_name} '{shown(name)}' is a folder in models/diffusers/ without unet/ or "
                                  "transformer/ inside, so it is not a whole diffusers model: download the "
                                  "repository with its unet/ (or transformer/) subfolder, or use a single-file "
                                  "checkpoint in models/checkpoints/")
        raise refuse_name(name, folders, input_name)
    for folder in folders:
        if folder == "diffusers":
            for root in folder_paths.get_folder_paths("diffusers"):
                p = os.path.join(root, name)
                if os.path.isdir(p):
                    return _confined(p, name, folders, input_name)
            continue
        try:
            p = folder_paths.get_full_path(folder, name)
        except KeyError:
            p = None
        if p:
            return _confined(p, name, folders, input_name)
    raise refuse_name(name, folders, input_name)


def name_problem_at_queue(name, folders, input_name: str = "model file") -> str | None:
    """For a loader's validate_inputs: what resolve_model_path would refuse, said as the job is queued
    (ComfyUI's own check would only say 'Value not in list'); None for a good or linked name."""
    if not isinstance(name, str):
        return None
    try:
        resolve_model_path(name, folders, input_name)
    except TempoInputError as e:
        return str(e)
    return None


def output_path(filename_prefix: str, width: int, height: int):
    """(folder, file name, counter, subfolder) for a new output file, as ComfyUI's savers make them,
    refused unless the prefix names a place inside ComfyUI's output folder (symlinks resolved)."""
    out_dir = folder_paths.get_output_directory()
    refusal = TempoInputError(f"filename_prefix '{shown(filename_prefix)}' must name a file inside ComfyUI's output "
                              "folder: no absolute path, no '..', no control characters (e.g. tempo/causal)")
    if name_problem(filename_prefix) is not None:
        raise refusal
    try:
        full_dir, filename, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, out_dir,
                                                                                      width, height)
    except Exception:  # noqa: BLE001 - ComfyUI raises a bare Exception for a path outside the output folder
        raise refusal from None
    if not is_inside(full_dir, [out_dir]):
        raise refusal
    return full_dir, filename, counter, subfolder


def _confined(path: str, name, folders, input_name) -> str:
    if not is_inside(path, model_roots()):
        raise refuse_name(name, folders, input_name)
    return path


def encode_wan_prompt(clip, text: str):
    """CONDITIONING of ``text`` as the reference causal pipelines encode it: the tokens cut to 512
    (511 and the end token, what their tokenizer's truncation keeps), then ComfyUI's own encoder
    (which pads to 512 with zeroed positions, as they do)."""
    from ..samplers.causal import truncate_tokens

    tokens = clip.tokenize(text)
    if isinstance(tokens, dict):
        tokens = {k: [truncate_tokens(b) for b in v] if isinstance(v, list) else v for k, v in tokens.items()}
    return clip.encode_from_tokens_scheduled(tokens)

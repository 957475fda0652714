"""The one-step image loader: SD 1.5 / 2.1 / SDXL one-step checkpoints as native MODEL / CLIP /
VAE, set to sample as their family was trained (sampled by the shared nodes in ``onestep.py``)."""

from __future__ import annotations



from ..loaders.classify import detect_preset
from ..samplers.onestep import (IMAGE_PRESET_NAMES, PREDICTIONS, PRESETS, Preset, custom_preset)
from .common import IMAGE_WEIGHT_DTYPES, CATEGORY, IMAGE_MODEL_FOLDERS, TempoInputError, model_file_list, resolve_model_path, check_choice
from .hub import download_to_models
from .compat import io, ui
from .onestep import apply_preset
from .unet_models import load_image_model

SUBCAT = CATEGORY + "/one-step image"
# Defaults of the loader's optional 'custom' inputs, written once for the schema and for execute().
DEFAULT_CUSTOM_TIMESTEP = 999
DEFAULT_CUSTOM_PREDICTION = "eps"


def choose_preset(name: str, path: str, metadata: dict, base: str, custom_t: float,
                  custom_pred: str) -> tuple[Preset, str]:
    """The preset to sample with and a line saying why (shown on the node)."""
    if name == "custom":
        return custom_preset(custom_t, custom_pred), "set by the user (custom)"
    if name == "auto":
        detected, why = detect_preset(path, metadata, base)
        if detected is None:
            raise TempoInputError(f"could not tell which one-step family this checkpoint is: {why}. "
                                  f"Pick it in the loader's 'preset' input ({', '.join(IMAGE_PRESET_NAMES)})")
        preset, reason = PRESETS[detected], f"auto: {why}"
    else:
        preset, reason = PRESETS[check_choice(name, IMAGE_PRESET_NAMES, "preset")], "chosen by the user"
    if base not in preset.bases:
        raise TempoInputError(f"the checkpoint is a {base} UNet but the {preset.name} preset is for "
                              f"{'/'.join(preset.bases)} models; pick the matching preset, or 'custom'")
    return preset, reason


def preset_info(preset: Preset, base: str, reason: str) -> str:
    return (f"{preset.name} on {base}: one step at t = {preset.timestep:g}, predicts {preset.prediction}, "
            f"multi-step re-noise {preset.renoise}, cfg {preset.cfg:g} [{reason}]")


class OneStepImageLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepImageLoader",
            display_name="Tempo One-Step Image Loader",
            category=SUBCAT,
            description="Loads a one-step image checkpoint (UFOGen-style, SD/SDXL-Turbo, SDXL-Lightning, Hyper-SD, "
                        "DMD2, InstaFlow, SwiftBrush) from a single file, a UNet-only file or a diffusers folder, and "
                        "sets it to sample as its family was trained. Outputs native MODEL/CLIP/VAE.",
            inputs=[
                io.Combo.Input("ckpt_name", options=model_file_list(),
                               tooltip="File in models/checkpoints or models/diffusion_models, or a diffusers "
                                       "folder in models/diffusers."),
                io.Combo.Input("preset", options=["auto"] + IMAGE_PRESET_NAMES, default="auto",
                               tooltip="One-step family: decides the timestep and what the network predicts. "
                                       "'auto' reads the file's metadata and name and says what it chose."),
                io.Combo.Input("weight_dtype", options=IMAGE_WEIGHT_DTYPES, default="default",
                               tooltip="Precision of the UNet weights; 'default' lets ComfyUI choose for the device."),
                io.Int.Input("custom_timestep", default=DEFAULT_CUSTOM_TIMESTEP, min=1, max=1000, optional=True,
                             tooltip="Only for preset 'custom': the trained one-step timestep."),
                io.Combo.Input("custom_prediction", options=list(PREDICTIONS), default=DEFAULT_CUSTOM_PREDICTION, optional=True,
                               tooltip="Only for preset 'custom': what the network predicts."),
                io.String.Input("hf_repo", default="", optional=True,
                                tooltip="Optional Hugging Face repo id (e.g. stabilityai/sd-turbo): downloads "
                                        "hf_filename into models/checkpoints first, if the server allows downloads "
                                        "(TEMPO_ALLOW_HUB_DOWNLOADS=1). Leave empty to use ckpt_name."),
                io.String.Input("hf_filename", default="", optional=True,
                                tooltip="File inside hf_repo to download (e.g. sd_turbo.safetensors)."),
            ],
            outputs=[
                io.Model.Output(tooltip="Native MODEL, set to sample as the preset says."),
                io.Clip.Output(tooltip="Text encoder from the checkpoint (empty for UNet-only files: use Load CLIP)."),
                io.Vae.Output(tooltip="VAE from the checkpoint (empty for UNet-only files: use Load VAE)."),
                io.String.Output(display_name="info", tooltip="Which preset was used and why."),
            ],
        )

    @classmethod
    def execute(cls, ckpt_name, preset, weight_dtype, custom_timestep=DEFAULT_CUSTOM_TIMESTEP,
                custom_prediction=DEFAULT_CUSTOM_PREDICTION,
                hf_repo="", hf_filename="") -> io.NodeOutput:
        if hf_repo.strip():
            path = download_to_models(hf_repo.strip(), hf_filename.strip(), "checkpoints")
        else:
            path = resolve_model_path(ckpt_name, IMAGE_MODEL_FOLDERS)
        model, clip, vae, base, metadata = load_image_model(path, weight_dtype)
        chosen, reason = choose_preset(preset, path, metadata, base, custom_timestep, custom_prediction)
        info = preset_info(chosen, base, reason)
        return io.NodeOutput(apply_preset(model, chosen), clip, vae, info, ui=ui.PreviewText(info))


NODES = [OneStepImageLoader]

"""The one-step image loader: SD 1.5 / 2.1 / SDXL one-step checkpoints as native MODEL / CLIP /
VAE, set to sample as their family was trained (sampled by the shared nodes in ``onestep.py``)."""

from __future__ import annotations



from ..loaders.classify import detect_preset
from ..samplers.onestep import (IMAGE_PRESET_NAMES, PREDICTIONS, Preset, base_name, custom_preset, preset_bases,
                                preset_for)
from .common import IMAGE_WEIGHT_DTYPES, CATEGORY, IMAGE_MODEL_FOLDERS, TempoInputError, model_file_list, \
    name_problem_at_queue, resolve_model_path, check_choice
from .hub import download_to_models
from .compat import io, ui
from .onestep import apply_preset
from .unet_models import load_image_model

SUBCAT = CATEGORY + "/one-step image"
# Defaults of the loader's optional 'custom' inputs, written once for the schema and for execute().
DEFAULT_CUSTOM_TIMESTEP = 999
DEFAULT_CUSTOM_PREDICTION = "eps"
CUSTOM_STARTS = ("scaled", "pure")
DEFAULT_CUSTOM_START = "scaled"


def choose_preset(name: str, path: str, metadata: dict, base: str, custom_t: float,
                  custom_pred: str, custom_start: str = DEFAULT_CUSTOM_START) -> tuple[Preset, str]:
    """The preset to sample with and a line saying why (shown on the node)."""
    if name == "custom":
        check_choice(custom_start, CUSTOM_STARTS, "custom_start")
        return custom_preset(custom_t, custom_pred, start=custom_start), "set by the user (custom)"
    if name == "auto":
        detected, why = detect_preset(path, metadata, base)
        if detected is None:
            raise TempoInputError(f"could not tell which one-step family this checkpoint is: {why}. "
                                  f"Pick it in the loader's 'preset' input ({', '.join(IMAGE_PRESET_NAMES)})")
        preset, reason = preset_for(detected, base), f"auto: {why}"
    else:
        preset, reason = preset_for(check_choice(name, IMAGE_PRESET_NAMES, "preset"), base), "chosen by the user"
    if base not in preset.bases:
        raise TempoInputError(f"the {preset.name} preset is published for "
                              f"{' and '.join(base_name(b) for b in preset_bases(preset.name))} models, and this model "
                              f"is {base_name(base)}; pick the preset of the model's family, or 'custom'")
    return preset, reason


def preset_info(preset: Preset, base: str, reason: str) -> str:
    steps = "; ".join(f"{n} steps at {', '.join(f'{t:g}' for t in ts)}" for n, ts in preset.published[:4]) \
        if preset.published else {"lcm": "any steps on the LCM/TCD schedule", "trailing": "any steps, trailing"}.get(
            preset.steps_rule, "")
    update = f"{preset.renoise} (eta {preset.eta:g})" if preset.renoise == "tcd" else preset.renoise
    return (f"{preset.name} on {base}: one step at t = {preset.timestep:g}, predicts {preset.prediction}, "
            f"{preset.start} noise start, update {update}, cfg {preset.cfg:g}" + (f"; {steps}" if steps else "")
            + f" [{reason}]")


class OneStepImageLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepImageLoader",
            display_name="Tempo One-Step Image Loader",
            category=SUBCAT,
            description="Loads a one-step image model (SD/SDXL-Turbo, SDXL-Lightning, Hyper-SD, DMD2, InstaFlow, "
                        "SwiftBrush, UFOGen-style) and sets it to sample the way it was trained. Outputs MODEL, CLIP "
                        "and VAE.",
            inputs=[
                io.Combo.Input("ckpt_name", options=model_file_list(),
                               tooltip="A file in models/checkpoints or models/diffusion_models, or a diffusers "
                                       "folder in models/diffusers. UNet-only file: add Load CLIP, Load VAE."),
                io.Combo.Input("preset", options=["auto"] + IMAGE_PRESET_NAMES, default="auto",
                               tooltip="Model family; auto reads the file and shows its pick. For a LoRA (LCM, "
                                       "Hyper-SD, DMD2 4-step): load the base here, pick the LoRA's family."),
                io.Combo.Input("weight_dtype", options=IMAGE_WEIGHT_DTYPES, default="default",
                               tooltip="Precision of the weights. default lets ComfyUI pick what suits your GPU; "
                                       "keep it unless you must force one."),
                io.Int.Input("custom_timestep", default=DEFAULT_CUSTOM_TIMESTEP, min=1, max=1000, optional=True,
                             tooltip="Only for preset 'custom': the timestep (1-1000) the model makes its one step "
                                     "at, from its model card; 999 for most."),
                io.Combo.Input("custom_prediction", options=list(PREDICTIONS), default=DEFAULT_CUSTOM_PREDICTION, optional=True,
                               tooltip="Only for preset 'custom': the output type its model card names; the default "
                                       "fits most SD 1.5 / SDXL models, 'v' v-models."),
                io.String.Input("hf_repo", default="", optional=True,
                                tooltip="Optional Hugging Face repo to download from (e.g. stabilityai/sd-turbo); "
                                        "the server needs TEMPO_ALLOW_HUB_DOWNLOADS=1. Empty: use ckpt_name."),
                io.String.Input("hf_filename", default="", optional=True,
                                tooltip="The file to download from hf_repo (e.g. sd_turbo.safetensors); it lands in "
                                        "models/checkpoints."),
                io.Combo.Input("custom_start", options=list(CUSTOM_STARTS), default=DEFAULT_CUSTOM_START, optional=True,
                               tooltip="Only for preset 'custom': how text-to-image starts. scaled: models made for "
                                       "an Euler scheduler; pure: LCM- or TCD-style models."),
            ],
            outputs=[
                io.Model.Output(tooltip="Native MODEL, set to sample as the preset says."),
                io.Clip.Output(tooltip="Text encoder from the checkpoint (empty for UNet-only files: use Load CLIP)."),
                io.Vae.Output(tooltip="VAE from the checkpoint (empty for UNet-only files: use Load VAE)."),
                io.String.Output(display_name="info", tooltip="Which preset was used and why."),
            ],
        )

    @classmethod
    def validate_inputs(cls, ckpt_name=None, hf_repo=None):
        if isinstance(hf_repo, str) and hf_repo.strip():
            return True  # the file comes from the hub; ckpt_name is not read
        return name_problem_at_queue(ckpt_name, IMAGE_MODEL_FOLDERS) or True

    @classmethod
    def execute(cls, ckpt_name, preset, weight_dtype, custom_timestep=DEFAULT_CUSTOM_TIMESTEP,
                custom_prediction=DEFAULT_CUSTOM_PREDICTION,
                hf_repo="", hf_filename="", custom_start=DEFAULT_CUSTOM_START) -> io.NodeOutput:
        if hf_repo.strip():
            path = download_to_models(hf_repo.strip(), hf_filename.strip(), "checkpoints")
        else:
            path = resolve_model_path(ckpt_name, IMAGE_MODEL_FOLDERS)
        model, clip, vae, base, metadata = load_image_model(path, weight_dtype)
        chosen, reason = choose_preset(preset, path, metadata, base, custom_t=custom_timestep, custom_pred=custom_prediction,
                                       custom_start=custom_start)
        info = preset_info(chosen, base, reason)
        return io.NodeOutput(apply_preset(model, chosen), clip, vae, info, ui=ui.PreviewText(info))


NODES = [OneStepImageLoader]

"""Stable Video Diffusion loader: single files (as ComfyUI reads them) and diffusers folders
(unet/, image_encoder/, vae/, as AnimateLCM-SVD is published), sampled by the one-step core."""

from __future__ import annotations

import os


from ..loaders.classify import detect_preset
from ..samplers.onestep import PRESETS, SVD_PRESET_NAMES
from .compat import io, ui
from .common import IMAGE_WEIGHT_DTYPES, CATEGORY, TempoInputError, model_file_list, name_problem_at_queue, \
    resolve_model_path, check_choice
from .onestep import apply_preset
from .unet_models import load_image_model

SUBCAT = CATEGORY + "/one-step video"
SVD_FOLDERS = ("checkpoints", "diffusers")


def load_svd(path: str, preset: str = "auto", dtype: str = "default"):
    """(MODEL, CLIP_VISION, VAE, info) for an SVD checkpoint; refuses files or folders that lack a part."""
    name = os.path.basename(os.path.normpath(path))
    extras = {}
    model, _, vae, _, metadata = load_image_model(path, dtype, output_clip=False, bases=("SVD",), extras=extras)
    clip_vision = extras.get("clip_vision")
    if clip_vision is None:
        where = "image_encoder/ folder" if os.path.isdir(path) else "CLIP image encoder"
        raise TempoInputError(f"{name} has no {where}: SVD needs the OpenCLIP ViT-H image encoder. "
                              + ("Add image_encoder/ from stabilityai/stable-video-diffusion-img2vid-xt to the folder"
                                 if os.path.isdir(path) else
                                 "Use a full SVD checkpoint (svd_xt.safetensors), or load this UNet-only file with "
                                 "ComfyUI's UNETLoader next to ImageOnlyCheckpointLoader"))
    if vae is None:
        raise TempoInputError(f"{name} has no VAE (vae/ folder or first_stage_model.); add SVD's VAE")
    if preset == "auto":
        found, why = detect_preset(path, metadata, "SVD")
        if found not in SVD_PRESET_NAMES:
            found, why = "SVD", "no distillation named: plain SVD"
        preset, reason = found, f"auto: {why}"
    else:
        reason = "chosen by the user"
    chosen = PRESETS[check_choice(preset, SVD_PRESET_NAMES, "preset")]
    info = (f"{chosen.name}: EDM v-prediction, one step at sigma {chosen.timestep:g}, several steps on Karras sigmas, "
            f"re-noise {chosen.renoise} [{reason}]")
    return apply_preset(model, chosen), clip_vision, vae, info


class SVDLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoSVDLoader",
            display_name="Tempo SVD Loader",
            category=SUBCAT,
            description="Loads Stable Video Diffusion (SVD, SVD-XT, SVD-XT 1.1, AnimateLCM-SVD) for image-to-video "
                        "in one or a few steps. Outputs MODEL, CLIP_VISION and VAE for SVD_img2vid_Conditioning.",
            inputs=[
                io.Combo.Input("ckpt_name", options=model_file_list(SVD_FOLDERS),
                               tooltip="A file in models/checkpoints (e.g. svd_xt.safetensors), or a diffusers "
                                       "folder with unet/, image_encoder/ and vae/ in models/diffusers."),
                io.Combo.Input("preset", options=["auto", *SVD_PRESET_NAMES], default="auto",
                               tooltip="SVD: steady Euler steps. AnimateLCM-SVD: 1-8 steps with fresh noise, cfg "
                                       "1.0-1.2. auto goes by the file name (else plain SVD)."),
                io.Combo.Input("weight_dtype", options=IMAGE_WEIGHT_DTYPES, default="default",
                               tooltip="Precision of the weights. default lets ComfyUI pick what suits your GPU; "
                                       "keep it unless you must force one."),
            ],
            outputs=[io.Model.Output(), io.ClipVision.Output(), io.Vae.Output(),
                     io.String.Output(display_name="info", tooltip="The preset and why.")],
        )

    @classmethod
    def validate_inputs(cls, ckpt_name=None):
        return name_problem_at_queue(ckpt_name, SVD_FOLDERS) or True

    @classmethod
    def execute(cls, ckpt_name, preset, weight_dtype) -> io.NodeOutput:
        model, clip_vision, vae, info = load_svd(resolve_model_path(ckpt_name, SVD_FOLDERS), preset, weight_dtype)
        return io.NodeOutput(model, clip_vision, vae, info, ui=ui.PreviewText(info))


NODES = [SVDLoader]

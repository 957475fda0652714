"""One-step video (APT-style) on ComfyUI's own Wan 2.1 model, sampled by the one-step core.

The loader builds ComfyUI's native Wan MODEL from any published layout and sets it to the
APT rule (flow prediction, one step at t = T: x0 = z - v; deterministic Euler refinement).
Scheduling and sampling are the same nodes as for images (Tempo One-Step Schedule, Sampler,
Generate): one implementation, not two.
"""

from __future__ import annotations

import os


from ..errors import TempoError
from ..loaders.files import CheckpointError
from ..loaders.wan import read_wan_checkpoint
from ..samplers.onestep import (WAN_PRESET_NAMES, describe_flow_preset, explicit_preset, parse_sigma_list, preset_for,
                                video_preset)
from . import compat
from .compat import io, ui
from .common import IMAGE_WEIGHT_DTYPES, CATEGORY, TempoInputError, check_choice, model_file_list, \
    name_problem_at_queue, resolve_model_path
from .onestep import apply_preset
from .wan_models import build_wan_model

SUBCAT = CATEGORY + "/one-step video"
VIDEO_FOLDERS = ("diffusion_models", "checkpoints", "diffusers")


def load_onestep_video(path: str, dtype: str = "default", timestep: float = 0.0, shift: float = 0.0,
                       frames: int = -1, disable_dynamic: bool = False):
    """(MODEL with the APT preset, info line). timestep/shift/frames <= 0 (or -1) take the file's
    metadata (``tempo.timestep``, ``tempo.shift``, ``tempo.frames``), else 1000 / 5.0 / any. A file
    may name a few-step Wan preset (``tempo.preset``) and an explicit schedule (``tempo.sigmas``:
    "1.0, 0.9375, 0.8333, 0.625")."""
    name = os.path.basename(os.path.normpath(path))
    try:
        sd, info = read_wan_checkpoint(path)
    except CheckpointError as e:
        raise TempoInputError(f"{e}. One-step video models here are Wan 2.1 DiTs; for SVD use 'Tempo SVD Loader'") \
            from None
    meta = info.get("metadata", {})
    t = timestep if timestep > 0 else float(meta.get("tempo.timestep", 1000))
    s = shift if shift > 0 else float(meta.get("tempo.shift", 5.0))
    n = frames if frames >= 0 else int(meta.get("tempo.frames", 0))
    model = build_wan_model(sd, dtype, name, disable_dynamic)
    arch = wan_architecture(model)
    try:
        if meta.get("tempo.preset"):  # a few-step Wan release whose file names its family
            preset = preset_for(check_choice(meta["tempo.preset"], WAN_PRESET_NAMES + ["APT"], "tempo.preset"), None)
        else:
            preset = video_preset(t, s, n)
        if meta.get("tempo.sigmas"):
            preset = explicit_preset(preset, parse_sigma_list(meta["tempo.sigmas"]))
    except TempoError as e:
        raise TempoInputError(f"{name}: its metadata: {e}") from None
    if preset.name == "APT" and not meta.get("tempo.sigmas"):
        text = (f"APT-style one-step video on {arch}: one step at t = {t:g}, x0 = z - v, shift {s:g}"
                + (f", trained on {n}-frame clips" if n else ""))
    else:
        text = f"{describe_flow_preset(preset)}; on {arch} [file metadata]"
    return compat.set_reload(apply_preset(model, preset), load_onestep_video, (path, dtype, timestep, shift, frames), 0), \
        text


def wan_architecture(model) -> str:
    """What ComfyUI's own detection says the Wan model is, in words."""
    config = model.model.model_config
    if isinstance(config, compat.WAN22_T2V):
        return "Wan 2.2 TI2V 5B (text- and image-to-video; the Wan 2.2 VAE, 48-channel latent)"
    net = model.model.diffusion_model
    if isinstance(config, compat.WAN21_I2V) or net.patch_embedding.weight.shape[1] > 16:  # the start image's channels
        return "the Wan 2.1 architecture, image-to-video (Wan 2.1 I2V, or a Wan 2.2 I2V A14B expert)"
    return "the Wan 2.1 architecture, text-to-video (Wan 2.1 T2V, or a Wan 2.2 T2V A14B expert)"


class OneStepVideoLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepVideoLoader",
            display_name="Tempo One-Step Video Loader",
            category=SUBCAT,
            description="Loads an APT-style one-step Wan 2.1 video model (safetensors, diffusers folder or .pt) that "
                        "makes a clip in one step. Sample it with Tempo One-Step Generate; for rCM files add Tempo "
                        "One-Step Preset.",
            inputs=[
                io.Combo.Input("model_name", options=model_file_list(VIDEO_FOLDERS),
                               tooltip="The video model: a file in models/diffusion_models (or checkpoints), or a "
                                       "diffusers folder in models/diffusers."),
                io.Combo.Input("weight_dtype", options=IMAGE_WEIGHT_DTYPES, default="default",
                               tooltip="Precision of the weights. default lets ComfyUI pick what suits your GPU; "
                                       "keep it unless you must force one."),
                io.Float.Input("timestep", default=0.0, min=0.0, max=1000.0, step=1.0,
                               tooltip="Leave at 0 to use the file's own setting (1000 if it has none); change it "
                                       "only if the model card says so."),
                io.Float.Input("shift", default=0.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Leave at 0 to use the file's own setting (5.0 if it has none); only matters "
                                       "when refining in more than one step."),
            ],
            outputs=[io.Model.Output(tooltip="Native Wan 2.1 MODEL with the APT one-step rule."),
                     io.String.Output(display_name="info", tooltip="The rule and where its numbers came from.")],
        )

    @classmethod
    def validate_inputs(cls, model_name=None):
        return name_problem_at_queue(model_name, VIDEO_FOLDERS) or True

    @classmethod
    def execute(cls, model_name, weight_dtype, timestep, shift) -> io.NodeOutput:
        model, text = load_onestep_video(resolve_model_path(model_name, VIDEO_FOLDERS), weight_dtype, timestep, shift)
        return io.NodeOutput(model, text, ui=ui.PreviewText(text))


NODES = [OneStepVideoLoader]

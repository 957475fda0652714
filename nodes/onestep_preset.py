"""Tempo One-Step Preset: sets a one-step family's published rule on any MODEL, so a base loaded by
ComfyUI's own loaders (Load Checkpoint, Load Diffusion Model, a GGUF loader) with a distillation LoRA
on it (LoraLoaderModelOnly: DMD2 4-step, Hyper-SD, LCM-LoRA, SDXL-Lightning) samples as its card says."""

from __future__ import annotations

from ..errors import TempoError
from ..samplers.onestep import (IMAGE_PRESET_NAMES, PREDICTIONS, SVD_PRESET_NAMES, WAN_PRESET_NAMES, base_name, describe_flow_preset,
                                explicit_preset, parse_sigma_list, preset_for, video_preset)
from . import compat
from .common import TempoInputError, check_choice
from .compat import io, ui
from .onestep import SUBCAT, apply_preset
from .onestep_image import (CUSTOM_STARTS, DEFAULT_CUSTOM_PREDICTION, DEFAULT_CUSTOM_START, DEFAULT_CUSTOM_TIMESTEP,
                            choose_preset, preset_info)

PRESET_CHOICES = [*IMAGE_PRESET_NAMES, "APT", *WAN_PRESET_NAMES, *SVD_PRESET_NAMES]
DEFAULT_APT_SHIFT = 5.0
# ComfyUI's model configs (comfy/supported_models.py) -> the bases the presets name; subclasses
# (SSD-1B, Vega, the Wan 2.1 image-to-video config) count as their parent.
_BASES = [("SDXL", "SDXL"), ("SD20", "SD21"), ("SD15", "SD15"), ("SVD_img2vid", "SVD"), ("WAN22_T2V", "WAN22_5B"),
          ("WAN21_T2V", "WAN21")]


def model_base(model) -> str:
    """SD15, SD21, SDXL, SVD, WAN21 (Wan 2.1 and the Wan 2.2 A14B experts) or WAN22_5B for a MODEL,
    from ComfyUI's own model config."""
    config = model.model.model_config
    for attr, base in _BASES:
        cls = getattr(compat, attr, None)
        if cls is not None and isinstance(config, cls):
            return base
    raise TempoInputError(f"this MODEL is a {type(config).__name__}; the one-step presets are published for SD 1.5, "
                          "SD 2.1, SDXL, SVD, Wan 2.1 / 2.2 A14B and Wan 2.2 5B models")


class OneStepPreset(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepPreset",
            display_name="Tempo One-Step Preset",
            category=SUBCAT,
            description="Sets a fast family (DMD2, Hyper-SD, LCM, Lightning, lightx2v, rCM...) on a model from Load "
                        "Checkpoint, Load Diffusion Model or GGUF, after its LoRA. Then use Tempo One-Step (or "
                        "Two-Expert) Generate.",
            inputs=[
                io.Model.Input("model", tooltip="Any SD 1.5 / 2.1 / SDXL, SVD or Wan 2.1 / 2.2 model, with its speed "
                                                "LoRA applied (LoraLoaderModelOnly) or not."),
                io.Combo.Input("preset", options=PRESET_CHOICES, default="DMD2",
                               tooltip="The family of your LoRA or fast model; it must be published for this base "
                                       "(e.g. DMD2 on SDXL). Details: README, published settings."),
                io.Int.Input("custom_timestep", default=DEFAULT_CUSTOM_TIMESTEP, min=1, max=1000, optional=True,
                             tooltip="Only for preset 'custom': the timestep (1-1000) the model makes its one step "
                                     "at, from its model card; 999 for most."),
                io.Combo.Input("custom_prediction", options=list(PREDICTIONS), default=DEFAULT_CUSTOM_PREDICTION,
                               optional=True, tooltip="Only for preset 'custom': the output type its model card "
                                                      "names; the default fits most SD 1.5 / SDXL models, 'v' "
                                                      "v-models."),
                io.Combo.Input("custom_start", options=list(CUSTOM_STARTS), default=DEFAULT_CUSTOM_START, optional=True,
                               tooltip="Only for preset 'custom': how text-to-image starts. scaled: models made for "
                                       "an Euler scheduler; pure: LCM- or TCD-style models."),
                io.Float.Input("shift", default=DEFAULT_APT_SHIFT, min=0.1, max=100.0, step=0.1, optional=True,
                               tooltip="Only for preset 'APT': the shift used when refining in more than one step; 5 "
                                       "by default."),
                io.String.Input("sigmas", default="", optional=True,
                                tooltip="Wan presets: your own noise level per step, 1 (pure noise) down, e.g. '1.0, "
                                        "0.9375, 0.8333, 0.625'; set steps to match. Empty: published."),
            ],
            outputs=[io.Model.Output(tooltip="The same MODEL, set to sample as the preset says."),
                     io.String.Output(display_name="info", tooltip="Which settings were set, and for which base.")],
        )

    @classmethod
    def execute(cls, model, preset, custom_timestep=DEFAULT_CUSTOM_TIMESTEP, custom_prediction=DEFAULT_CUSTOM_PREDICTION,
                custom_start=DEFAULT_CUSTOM_START, shift=DEFAULT_APT_SHIFT, sigmas="") -> io.NodeOutput:
        check_choice(preset, PRESET_CHOICES, "preset")
        base = model_base(model)
        if preset in WAN_PRESET_NAMES or (sigmas or "").strip():
            if preset not in WAN_PRESET_NAMES + ["APT"]:
                raise TempoInputError(f"an explicit sigma list is for the Wan presets ({', '.join(WAN_PRESET_NAMES)}) "
                                      f"and APT, not {preset}; clear 'sigmas'")
            chosen = preset_for(preset, base) if preset != "APT" else video_preset(1000.0, shift)
            if base not in chosen.bases:
                raise TempoInputError(f"the {preset} preset is published for "
                                      f"{' / '.join(base_name(b) for b in chosen.bases)}; this MODEL is "
                                      f"{base_name(base)}")
            try:
                if (sigmas or "").strip():
                    chosen = explicit_preset(chosen, parse_sigma_list(sigmas))
            except TempoError as e:
                raise TempoInputError(str(e)) from None
            info = f"{describe_flow_preset(chosen)}; on {base_name(base)}"
            return io.NodeOutput(apply_preset(model, chosen), info, ui=ui.PreviewText(info))
        if preset == "APT":
            if base != "WAN21":
                raise TempoInputError(f"the APT preset is for Wan 2.1 video models; this MODEL is {base_name(base)}")
            chosen, reason = video_preset(1000.0, shift), "chosen by the user"
        elif preset in SVD_PRESET_NAMES:
            if base != "SVD":
                raise TempoInputError(f"the {preset} preset is for Stable Video Diffusion; this MODEL is "
                                      f"{base_name(base)}")
            chosen, reason = preset_for(preset, base), "chosen by the user"
        else:
            chosen, reason = choose_preset(preset, "", {}, base, custom_t=custom_timestep, custom_pred=custom_prediction,
                                       custom_start=custom_start)
        info = preset_info(chosen, base, reason)
        return io.NodeOutput(apply_preset(model, chosen), info, ui=ui.PreviewText(info))


NODES = [OneStepPreset]

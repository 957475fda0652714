"""Tempo Causal Speed: how the causal sampler runs a MODEL (cache writes, attention kernel,
compilation, decode overlap). A MODEL patch as ComfyUI's own TorchCompileModel is: the options ride
on a clone of the MODEL (``model_options["tempo_speed"]``) and the causal nodes read them. None of
them changes what is computed beyond float rounding (SageAttention's 8-bit kernel aside, as its
tooltip says); fp8 matrix multiplication is the causal loader's weight_dtype "fp8_e4m3fn_fast",
as ComfyUI's Load Diffusion Model names it."""

from __future__ import annotations

import logging

from ..models.attention import BACKENDS
from ..models.causal_wan import COMPILE_MODES
from ..samplers import causal
from . import compat
from .common import CAUSAL_CATEGORY, TempoInputError, check_choice
from .compat import io, ui

SPEED_KEY = "tempo_speed"
ATTENTION_CHOICES = ("auto", *BACKENDS)
OVERLAP_CHOICES = ("auto", "on", "off")


def _options(model) -> dict:
    """What a Tempo Causal Speed node set on a MODEL (nothing when it went through none)."""
    return getattr(model, "model_options", {}).get(SPEED_KEY, {})


def speed_of(model) -> causal.Speed:
    """The Speed a MODEL carries (the defaults when it went through no Tempo Causal Speed node)."""
    return causal.Speed(**{k: v for k, v in _options(model).items() if k != "overlap_decode"})


def overlap_of(model, device) -> bool:
    """Decode on a worker (overlapped with the next block): "auto" does it on a GPU where ComfyUI keeps
    models loaded (normal or high VRAM; in its low-VRAM modes the VAE would take the model's room)."""
    import comfy.model_management as mm

    choice = _options(model).get("overlap_decode", "auto")
    roomy = mm.vram_state in (mm.VRAMState.NORMAL_VRAM, mm.VRAMState.HIGH_VRAM)
    return choice == "on" or (choice == "auto" and getattr(device, "type", str(device)) == "cuda" and roomy)


class CausalSpeed(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoCausalSpeed",
            display_name="Tempo Causal Speed",
            category=CAUSAL_CATEGORY,
            description="Speed settings for Tempo Causal Video Sampler, aimed at real time on a GPU: put it between "
                        "the loader and the sampler. The video stays the same (sage attention aside).",
            inputs=[
                io.Model.Input("model", tooltip="A causal Wan model (from Tempo Causal Video Loader or Load "
                                                "Diffusion Model)."),
                io.Boolean.Input("in_place_cache", default=True,
                                 tooltip="On (default): new frames go straight into the memory of earlier frames, no "
                                         "copying: faster, same video. Off: the original code's slower way."),
                io.Combo.Input("attention", options=list(ATTENTION_CHOICES), default="auto",
                               tooltip="auto: ComfyUI's own choice; leave it. sdpa: PyTorch picks, sdpa "
                                       "flash/cudnn/... force one. xformers/sage need installing; sage isn't exact."),
                io.Combo.Input("compile", options=list(COMPILE_MODES), default="off",
                               tooltip="Faster after a one-time compile (about a minute, first video only); needs a "
                                       "C++ compiler, and Triton on a GPU. CUDA graphs: GPU only."),
                io.Combo.Input("overlap_decode", options=list(OVERLAP_CHOICES), default="auto",
                               tooltip="Decode and save each block while the next is made; the VAE stays loaded. "
                                       "auto: on for a GPU, unless ComfyUI runs in low-VRAM mode."),
            ],
            outputs=[io.Model.Output(tooltip="The same MODEL with these settings, for Tempo Causal Video Sampler.")],
        )

    @classmethod
    def execute(cls, model, in_place_cache=True, attention="auto", compile="off", overlap_decode="auto") -> io.NodeOutput:
        check_choice(attention, ATTENTION_CHOICES, "attention")
        check_choice(compile, COMPILE_MODES, "compile")
        check_choice(overlap_decode, OVERLAP_CHOICES, "overlap_decode")
        if not hasattr(model, "clone"):
            raise TempoInputError("model must be a MODEL (from Tempo Causal Video Loader or Load Diffusion Model)")
        out, notes = model.clone(), []
        if compile != "off" and compat.is_dynamic(model):
            # compiled layers and CUDA graphs hold on to the weights they saw: never to weights ComfyUI
            # streams in per call (dynamic VRAM). As ComfyUI's TorchCompileModel does, run a resident copy.
            try:
                out = compat.resident_clone(model)
                notes.append("compiled layers run on a copy of the model whose weights stay loaded (ComfyUI's "
                             "dynamic VRAM streams weights per layer, which compiled code cannot follow)")
            except RuntimeError:
                compile = "off"
                notes.append("compile is off for this model: ComfyUI streams its weights per layer (dynamic VRAM) "
                             "and its loader cannot load a resident copy; load it with Tempo Causal Video Loader "
                             "or Load Diffusion Model, or start ComfyUI with --disable-dynamic-vram")
        notes += device_notes(model.load_device, compile, overlap_decode)
        out.model_options[SPEED_KEY] = {"in_place_cache": bool(in_place_cache), "attention": attention,
                                        "compile": compile, "overlap_decode": overlap_decode}
        if not notes:
            return io.NodeOutput(out)
        for note in notes:
            logging.info(f"Tempo Causal Speed: {note}")
        return io.NodeOutput(out, ui=ui.PreviewText("\n".join(notes)))


def device_notes(device, compile: str, overlap_decode: str) -> list[str]:
    """What of the chosen settings cannot apply on ``device``, in words (nothing is refused: the video is
    the same either way)."""
    if getattr(device, "type", str(device)) == "cuda":
        return []
    notes = []
    if "CUDA graphs" in compile:
        notes.append(f"CUDA graphs need a GPU: on {device} the layers run compiled, without graphs")
    if overlap_decode == "on":
        notes.append(f"decode overlap runs on a worker thread; on {device} it shares the cores with the model, "
                     "so it rarely helps there ('auto' turns it off)")
    return notes


NODES = [CausalSpeed]

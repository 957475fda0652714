"""One-step image nodes: loader, schedule (SIGMAS), sampler (SAMPLER) and a generate node.

Thin adapters over ``samplers.onestep`` (the rule) and ``nodes.image_models`` (building
native ComfyUI models). The SIGMAS and SAMPLER plug into ComfyUI's own SamplerCustom /
SamplerCustomAdvanced, so CFGGuider, ControlNet, LoRA and img2img latents work unchanged.
"""

from __future__ import annotations

import torch

import comfy.sample
import comfy.utils
import latent_preview

from ..loaders.classify import detect_preset
from ..samplers.onestep import (IMAGE_PRESET_NAMES, PREDICTIONS, PRESETS, RENOISE_MODES, Preset, custom_preset,
                                preset_timesteps, sample_onestep)
from .common import IMAGE_WEIGHT_DTYPES, CATEGORY, IMAGE_MODEL_FOLDERS, TempoInputError, model_file_list, resolve_model_path
from .hub import download_to_models
from . import compat
from .compat import io, ui
from .image_models import apply_preset, get_preset, load_image_model

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
        preset, reason = PRESETS[name], "chosen by the user"
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
                                        "hf_filename into models/checkpoints first. Leave empty to use ckpt_name."),
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


def model_preset(model) -> Preset:
    preset = get_preset(model)
    if preset is None:
        raise TempoInputError("this MODEL was not loaded by a Tempo loader, so its one-step family is unknown; "
                              "load it with 'Tempo One-Step Image Loader' (or set it with 'Tempo One-Step Preset')")
    return preset


def onestep_sigmas(model, steps: int, strength: float) -> torch.Tensor:
    preset = model_preset(model)
    ts = preset_timesteps(preset, steps, strength)
    ms = model.get_model_object("model_sampling")
    sigmas = [float(ms.sigma(torch.tensor(t, dtype=torch.float32))) for t in ts]
    return torch.tensor(sigmas + [0.0], dtype=torch.float32)


class OneStepSigmas(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepSigmas",
            display_name="Tempo One-Step Schedule",
            category=SUBCAT,
            description="SIGMAS for a one-step model: one step at its trained timestep; img2img strength moves "
                        "the start down; several steps divide the span evenly (trailing), as the family does.",
            inputs=[
                io.Model.Input("model", tooltip="A MODEL from a Tempo loader (it carries its family preset)."),
                io.Int.Input("steps", default=1, min=1, max=16,
                             tooltip="1 for one-step generation; more refine with the family's re-noising rule."),
                io.Float.Input("strength", default=1.0, min=0.01, max=1.0, step=0.01,
                               tooltip="1.0 generates from noise; lower keeps more of the input latent (img2img)."),
            ],
            outputs=[io.Sigmas.Output()],
        )

    @classmethod
    def execute(cls, model, steps, strength) -> io.NodeOutput:
        return io.NodeOutput(onestep_sigmas(model, steps, strength))


class OneStepKSampler(compat.KSAMPLER):
    """KSAMPLER that noises the start exactly as the published rule (x = x0 + sigma * eps),
    never with ComfyUI's max-denoise sqrt(1 + sigma^2) variant."""

    def max_denoise(self, model_wrap, sigmas):
        return False


def make_onestep_sampler(renoise: str = "auto") -> OneStepKSampler:
    if renoise not in ("auto",) + RENOISE_MODES:
        raise TempoInputError(f"renoise '{renoise}' is not one of auto, {', '.join(RENOISE_MODES)}")

    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None):
        extra_args = {} if extra_args is None else extra_args
        guider = model.inner_model
        model_sampling = guider.inner_model.model_sampling
        preset = get_preset(guider.model_patcher)
        mode = renoise
        if mode == "auto":
            mode = preset.renoise if preset is not None else "fresh"
        latent = getattr(model, "latent_image", None)
        if preset is not None and preset.start == "pure" and latent is not None \
                and torch.count_nonzero(latent) == 0 and getattr(model, "noise", None) is not None:
            # Text-to-image in an LCM/TCD-style family: x_t is pure noise, sqrt(1 + sigma^2) * eps here.
            x = model_sampling.noise_scaling(sigmas[0], model.noise.to(x), latent.to(x), max_denoise=True)
        seed = extra_args.get("seed")
        generator = torch.Generator(device="cpu").manual_seed((seed if seed is not None else 0) + 1)
        s_in = x.new_ones([x.shape[0]])

        def denoise(x_, sigma):
            return model(x_, sigma * s_in, **extra_args)

        def renoise_fn(sigma, noise, x0):
            return model_sampling.noise_scaling(sigma, noise, x0)

        cb = None
        if callback is not None:
            def cb(i, x0, x_):
                callback({"x": x_, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": x0})
        return sample_onestep(denoise, x, sigmas, renoise_fn, mode, generator, cb)

    return OneStepKSampler(sample)


class OneStepSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepSampler",
            display_name="Tempo One-Step Sampler",
            category=SUBCAT,
            description="SAMPLER for SamplerCustom / SamplerCustomAdvanced: predicts x0 at each sigma and, between "
                        "steps, re-noises with fresh noise (UFOGen, DMD2) or deterministically (Euler, as APT).",
            inputs=[
                io.Combo.Input("renoise", options=["auto", *RENOISE_MODES], default="auto",
                               tooltip="'auto' uses the model's family rule; only matters with more than one step."),
            ],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, renoise) -> io.NodeOutput:
        return io.NodeOutput(make_onestep_sampler(renoise))


def check_latent(model, samples: torch.Tensor, positive=None, what: str = "latent"):
    fmt = model.get_model_object("latent_format")
    video = getattr(fmt, "latent_dimensions", 2) == 3
    if samples.ndim != (5 if video else 4):
        raise TempoInputError(
            f"the {what} has {samples.ndim} dimensions but this {'video' if video else 'image'} model takes "
            + ("[batch, channels, frames, height, width]; use a video latent (EmptyHunyuanLatentVideo / "
               "Wan image-to-video)" if video else
               "[batch, channels, height, width]; use an image latent (Empty Latent Image or VAE Encode)"))
    if samples.shape[1] != fmt.latent_channels and torch.count_nonzero(samples) != 0:
        raise TempoInputError(f"the {what} has {samples.shape[1]} channels but this model takes "
                              f"{fmt.latent_channels}; encode the image with this model's VAE")
    preset = get_preset(model)
    if video and preset is not None and preset.frames:
        want = (preset.frames - 1) // 4 + 1
        if samples.shape[2] != want:
            raise TempoInputError(f"this one-step video model was trained on {preset.frames}-frame clips ({want} latent "
                                  f"frames) but the latent has {samples.shape[2]} ({(samples.shape[2] - 1) * 4 + 1} "
                                  f"frames); set the length to {preset.frames}")
    net = model.model.diffusion_model
    patch = getattr(net, "patch_embedding", None)
    in_channels = patch.weight.shape[1] if patch is not None else getattr(net, "in_channels", fmt.latent_channels)
    if in_channels > fmt.latent_channels and positive is not None \
            and not any("concat_latent_image" in c[1] for c in positive):
        node = "WanImageToVideo" if patch is not None else "SVD_img2vid_Conditioning"
        raise TempoInputError(f"this is an image-to-video model and no start image reaches it; pass the start image "
                              f"through {node} (its positive, negative and latent outputs)")


def generate(model, positive, negative, latent: dict, seed: int, steps: int, strength: float, cfg: float,
             renoise: str = "auto") -> dict:
    """One-step generation through ComfyUI's custom-sampling path (same as SamplerCustom)."""
    samples = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    check_latent(model, samples, positive)
    if negative is None:
        if cfg != 1.0:
            raise TempoInputError(f"cfg is {cfg:g} but no negative conditioning is connected; connect one, "
                                  "or set cfg to 1 (one-step models are distilled for cfg 1)")
        negative = positive
    sigmas = onestep_sigmas(model, steps, strength)
    noise = comfy.sample.prepare_noise(samples, seed, latent.get("batch_index"))
    x0_output = {}
    callback = latent_preview.prepare_callback(model, len(sigmas) - 1, x0_output)
    out = comfy.sample.sample_custom(model, noise, cfg, make_onestep_sampler(renoise), sigmas, positive, negative,
                                     samples, noise_mask=latent.get("noise_mask"), callback=callback,
                                     disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    result = latent.copy()
    result["samples"] = out
    return result


class OneStepGenerate(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepGenerate",
            display_name="Tempo One-Step Generate",
            category=SUBCAT,
            description="Text-to-image or img2img in one step without custom-sampler plumbing: same sampling path as "
                        "SamplerCustom with the Tempo schedule and sampler.",
            inputs=[
                io.Model.Input("model", tooltip="A MODEL from 'Tempo One-Step Image Loader'."),
                io.Conditioning.Input("positive", tooltip="Prompt conditioning (CLIP Text Encode; ControlNet works)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed; the same seed gives the same image."),
                io.Int.Input("steps", default=1, min=1, max=16, tooltip="1 for one step; more refine."),
                io.Float.Input("strength", default=1.0, min=0.01, max=1.0, step=0.01,
                               tooltip="1.0 ignores the input image; lower keeps more of it (img2img)."),
                io.Float.Input("cfg", default=1.0, min=1.0, max=20.0, step=0.1,
                               tooltip="Guidance; one-step models are distilled for 1.0 (needs 'negative' above 1)."),
                io.Conditioning.Input("negative", optional=True, tooltip="Negative prompt; only used when cfg > 1."),
                io.Latent.Input("latent", optional=True,
                                tooltip="Start latent: Empty Latent Image for txt2img, or an encoded image."),
                io.Image.Input("image", optional=True, tooltip="Start image for img2img (needs 'vae')."),
                io.Vae.Input("vae", optional=True, tooltip="VAE to encode 'image'."),
            ],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, model, positive, seed, steps, strength, cfg, negative=None, latent=None, image=None,
                vae=None) -> io.NodeOutput:
        if image is not None:
            if vae is None:
                raise TempoInputError("an 'image' is connected but no 'vae' to encode it; connect the model's VAE")
            h, w = image.shape[1], image.shape[2]
            if h % 8 or w % 8:
                raise TempoInputError(f"the image is {w}x{h}; width and height must be multiples of 8 "
                                      "(resize it with ImageScale)")
            latent = {"samples": vae.encode(image[:, :, :, :3])}
        elif latent is None:
            raise TempoInputError("connect a 'latent' (Empty Latent Image for txt2img) or an 'image' and 'vae'")
        return io.NodeOutput(generate(model, positive, negative, latent, seed, steps, strength, cfg))


NODES = [OneStepImageLoader, OneStepSigmas, OneStepSampler, OneStepGenerate]

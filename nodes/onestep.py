"""The one-step sampling every one-step family shares (images, APT-style video, SVD): the
preset a loader sets on a MODEL, the schedule (SIGMAS), the sampler (SAMPLER) and a generate node.

Thin adapters over ``samplers.onestep`` (the rule). The SIGMAS and SAMPLER plug into ComfyUI's own
SamplerCustom / SamplerCustomAdvanced, so CFGGuider, ControlNet, LoRA and img2img latents work
unchanged.
"""

from __future__ import annotations

import os

import torch

import comfy.sample
import comfy.utils
import latent_preview

from ..errors import TempoError
from ..samplers.onestep import (EXPERT_RULES, IMG2IMG_RULES, RENOISE_MODES, TCD_ETA, Preset, advance_generators,
                                batch_generators, expert_split, final_timestep, high_steps, preset_timesteps,
                                sample_onestep)
from . import compat
from .common import CATEGORY, TempoInputError, widget_problem
from .compat import io

SUBCAT = CATEGORY + "/one-step"


class INSTAFLOW(compat.model_sampling.CONST):
    """InstaFlow's rectified flow: v points from noise to data, so x0 = x_t + sigma * v."""

    def calculate_denoised(self, sigma, model_output, model_input):
        sigma = compat.model_sampling.reshape_sigma(sigma, model_output.ndim)
        return model_input + model_output * sigma


def preset_model_sampling(preset: Preset, model_config, shift: float = 1.0):
    """A model_sampling object that samples as the preset's family was trained."""
    if preset.schedule == "flow":
        pred = {"flow": compat.model_sampling.CONST, "flow_instaflow": INSTAFLOW}.get(preset.prediction)
        if pred is None:
            raise TempoInputError(f"prediction '{preset.prediction}' does not go with a flow schedule; "
                                   "use 'flow' or 'flow_instaflow'")

        class FlowSampling(compat.model_sampling.ModelSamplingDiscreteFlow, pred):
            pass

        ms = FlowSampling(model_config)
        ms.set_parameters(shift=shift, multiplier=1000)
        return ms
    pred = {"eps": compat.model_sampling.EPS, "x0": compat.model_sampling.X0,
            "v": compat.model_sampling.V_PREDICTION}.get(preset.prediction)
    if pred is None:
        raise TempoInputError(f"prediction '{preset.prediction}' does not go with a discrete schedule; "
                              "use eps, x0 or v")

    class DiscreteSampling(compat.model_sampling.ModelSamplingDiscrete, pred):
        pass

    return DiscreteSampling(model_config)


def apply_preset(model, preset: Preset):
    """A clone of ``model`` that samples with the preset's prediction and remembers the preset.
    EDM models (SVD) keep ComfyUI's own continuous EDM v-prediction sampling."""
    m = model.clone()
    if preset.schedule != "edm":
        m.add_object_patch("model_sampling", preset_model_sampling(preset, m.model.model_config, preset.shift))
    m.model_options["tempo_preset"] = preset.to_dict()
    return m


def get_preset(model) -> Preset | None:
    d = model.model_options.get("tempo_preset")
    return Preset.from_dict(d) if d else None


def model_preset(model) -> Preset:
    preset = get_preset(model)
    if preset is None:
        raise TempoInputError("this MODEL carries no one-step family (it was not loaded by a Tempo loader); set it "
                              "with 'Tempo One-Step Preset' after your loader (and LoRA), or load the file with "
                              "'Tempo One-Step Image Loader', 'Tempo One-Step Video Loader' or 'Tempo SVD Loader'")
    return preset


def onestep_sigmas(model, steps: int, strength: float, rule: str = "run steps") -> torch.Tensor:
    """SIGMAS of the preset's published timesteps (then 0, or the table's sigma at t = 0 where the
    family's scheduler ends there: DDIM with set_alpha_to_one false)."""
    preset = model_preset(model)
    ts = preset_timesteps(preset, steps, strength, rule)
    ms = model.get_model_object("model_sampling")
    sigmas = [float(ms.sigma(torch.tensor(t, dtype=torch.float32))) for t in ts]
    last = final_timestep(preset)
    sigmas.append(0.0 if last is None else float(ms.sigma(torch.tensor(last, dtype=torch.float32))))
    return torch.tensor(sigmas, dtype=torch.float32)


IMG2IMG_RULE_TOOLTIP = ("How steps and strength combine for img2img. 'run steps': 'steps' steps are run from the "
                        "strength's timestep down. 'diffusers': as diffusers' img2img pipelines and the model cards "
                        "read them: the schedule of 'steps' steps, of which the last int(steps x strength) run "
                        "(SD-Turbo's card: steps 2, strength 0.5 = one step at t = 499). Same at strength 1.")


class OneStepSigmas(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepSigmas",
            display_name="Tempo One-Step Schedule",
            category=SUBCAT,
            description="The step schedule for SamplerCustom with a Tempo model: one step, or the exact steps its "
                        "makers published for that count (DMD2 4-step: 999, 749, 499, 249). Strength below 1 for "
                        "img2img.",
            inputs=[
                io.Model.Input("model", tooltip="A model from a Tempo loader or Tempo One-Step Preset (it knows its "
                                                "family)."),
                io.Int.Input("steps", default=1, min=1, max=16,
                             tooltip="1 for one step; more refine the picture. Some families take only their "
                                     "published counts: DMD2 1 or 4, SDXL-Lightning / Hyper-SD 2, 4 or 8."),
                io.Float.Input("strength", default=1.0, min=0.01, max=1.0, step=0.01,
                               tooltip="1.0 makes a new picture from noise; lower keeps more of the input latent "
                                       "(img2img; the example workflow uses 0.6)."),
                io.Combo.Input("img2img_rule", options=list(IMG2IMG_RULES), default="run steps", optional=True,
                               tooltip="img2img: run steps always runs 'steps' steps; diffusers reads steps and "
                                       "strength as model cards do (SD-Turbo: 2 steps at 0.5 = 1 step)."),
            ],
            outputs=[io.Sigmas.Output()],
        )

    @classmethod
    def execute(cls, model, steps, strength, img2img_rule="run steps") -> io.NodeOutput:
        return io.NodeOutput(onestep_sigmas(model, steps, strength, img2img_rule))


class OneStepKSampler(compat.KSAMPLER):
    """KSAMPLER that noises the start exactly as the published rule (x = x0 + sigma * eps),
    never with ComfyUI's max-denoise sqrt(1 + sigma^2) variant."""

    def max_denoise(self, model_wrap, sigmas):
        return False


def check_sampling_memory(base_model, x: torch.Tensor, device):
    """Refuse, before the first step, a latent whose one forward pass cannot fit: ComfyUI's own
    estimate (``memory_required``, what it loads and splits batches by) against the free memory of
    the device (RAM on the CPU, where nothing else would stop it)."""
    import comfy.model_management as mm

    need = base_model.memory_required(list(x.shape))
    free = mm.get_free_memory(device)
    if need > free:
        h, w = x.shape[-2] * 8, x.shape[-1] * 8
        size = f"{w}x{h}" + (f", {(x.shape[2] - 1) * 4 + 1} frames" if x.ndim == 5 else "") \
            + (f", batch {x.shape[0]}" if x.shape[0] > 1 else "")
        raise TempoInputError(f"sampling this latent ({size}) needs about {need / 2**30:.1f} GiB by ComfyUI's own "
                              f"estimate but {device} has {free / 2**30:.1f} GiB free; lower the resolution"
                              + (" or the length" if x.ndim == 5 else "") + (" or the batch size" if x.shape[0] > 1 else ""))


def make_onestep_sampler(renoise: str = "auto", eta: float | None = None, batch_index=None,
                         skip_draws: int = 0) -> OneStepKSampler:
    """The one-step SAMPLER: ``renoise`` "auto" takes the model's preset rule (fresh, deterministic, lcm,
    tcd, ancestral); ``eta`` (TCD) defaults to the preset's; ``batch_index``: the images' indices in
    their batch (a latent's batch_index), for the per-image noise streams (default 0 .. B - 1);
    ``skip_draws``: the draws an earlier part of the same run made (the low-noise expert's part)."""
    if renoise not in ("auto",) + RENOISE_MODES:
        raise TempoInputError(f"renoise '{renoise}' is not one of auto, {', '.join(RENOISE_MODES)}")

    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None):
        extra_args = {} if extra_args is None else extra_args
        guider = model.inner_model
        model_sampling = guider.inner_model.model_sampling
        check_sampling_memory(guider.inner_model, x, guider.model_patcher.load_device)
        preset = get_preset(guider.model_patcher)
        mode = renoise
        if mode == "auto":
            mode = preset.renoise if preset is not None else "fresh"
        discrete = isinstance(model_sampling, compat.model_sampling.ModelSamplingDiscrete) and \
            not isinstance(model_sampling, compat.model_sampling.ModelSamplingDiscreteFlow)
        if mode in ("lcm", "tcd", "ancestral") and not discrete:
            raise TempoInputError(f"the '{mode}' update is defined on a DDPM timestep table (SD 1.5 / 2.1 / SDXL); "
                                  "this model samples a flow or EDM schedule: use renoise 'deterministic' or 'fresh'")
        latent = getattr(model, "latent_image", None)
        if preset is not None and preset.start == "pure" and latent is not None \
                and torch.count_nonzero(latent) == 0 and getattr(model, "noise", None) is not None:
            # Text-to-image in an LCM/TCD/DDIM-style family: x_t is pure noise, sqrt(1 + sigma^2) * eps here.
            x = model_sampling.noise_scaling(sigmas[0], model.noise.to(x), latent.to(x), max_denoise=True)
        seed = extra_args.get("seed")
        indices = list(batch_index or [])[:x.shape[0]]
        indices += range(len(indices), x.shape[0])  # positions in the batch where no batch_index says otherwise
        generators = batch_generators(seed if seed is not None else 0, indices)
        advance_generators(generators, x.shape, skip_draws)
        s_in = x.new_ones([x.shape[0]])

        def denoise(x_, sigma):
            return model(x_, sigma * s_in, **extra_args)

        def renoise_fn(sigma, noise, x0):
            return model_sampling.noise_scaling(sigma, noise, x0)

        def timestep(sigma):
            return float(model_sampling.timestep(torch.as_tensor(sigma, dtype=torch.float32).reshape(1)))

        def sigma_at(t):
            return float(model_sampling.sigma(torch.tensor([float(t)], dtype=torch.float32)))

        cb = None
        if callback is not None:
            def cb(i, x0, x_):
                callback({"x": x_, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": x0})
        step_eta = eta if eta is not None else (preset.eta if preset is not None else TCD_ETA)
        return sample_onestep(denoise, x, sigmas, renoise_fn, mode=mode, generator=generators, callback=cb, eta=step_eta,
                              timestep=timestep if discrete else None, sigma_at=sigma_at if discrete else None)

    return OneStepKSampler(sample)


class OneStepSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepSampler",
            display_name="Tempo One-Step Sampler",
            category=SUBCAT,
            description="The sampler for SamplerCustom / SamplerCustomAdvanced with a Tempo model: steps the way the "
                        "model's family was published. Use it with Tempo One-Step Schedule.",
            inputs=[
                io.Combo.Input("renoise", options=["auto", *RENOISE_MODES], default="auto",
                               tooltip="How one step leads to the next (above 1 step only). auto: as the model card "
                                       "says; leave it. lcm / tcd / ancestral: SD models only."),
            ],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, renoise) -> io.NodeOutput:
        return io.NodeOutput(make_onestep_sampler(renoise))


class TCDSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoTCDSampler",
            display_name="Tempo TCD Sampler",
            category=SUBCAT,
            description="Sampler for TCD LoRAs and Hyper-SD's unified 1-step LoRA, for SamplerCustom with any "
                        "schedule (Tempo One-Step Schedule or ComfyUI's). eta sets how much fresh noise each step "
                        "adds.",
            inputs=[
                io.Float.Input("eta", default=TCD_ETA, min=0.0, max=1.0, step=0.05,
                               tooltip="How much fresh noise each step adds: 0 none, 1 all new. 0.3 is TCD's "
                                       "default; Hyper-SD's 1-step LoRA uses 1.0, lower for more steps."),
            ],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, eta) -> io.NodeOutput:
        return io.NodeOutput(make_onestep_sampler("tcd", eta))


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
             renoise: str = "auto", rule: str = "run steps", model_low=None, expert_rule: str = "",
             expert_boundary: float | None = None) -> dict:
    """One-step generation through ComfyUI's custom-sampling path (same as SamplerCustom). With
    ``model_low``, a Wan 2.2 two-expert run: the steps above the family's boundary on ``model``
    (the high-noise expert), the rest on ``model_low``, as one run (the noise streams go on)."""
    samples = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    check_latent(model, samples, positive)
    if negative is None:
        if cfg != 1.0:
            raise TempoInputError(f"cfg is {cfg:g} but no negative conditioning is connected; connect one, "
                                  "or set cfg to 1 (one-step models are distilled for cfg 1)")
        negative = positive
    sigmas = onestep_sigmas(model, steps, strength, rule)
    parts = [(model, sigmas)]
    if model_low is not None:  # the pair checked by the node (check_expert_pair)
        k = expert_split(model_preset(model), sigmas[:-1].tolist(), expert_rule, expert_boundary)
        parts = [(model, sigmas[:k + 1]), (model_low, sigmas[k:])]
    noise = comfy.sample.prepare_noise(samples, seed, latent.get("batch_index"))
    done = 0
    for part_model, part_sigmas in parts:
        if len(part_sigmas) < 2:
            continue
        x0_output = {}
        callback = latent_preview.prepare_callback(part_model, len(part_sigmas) - 1, x0_output)
        sampler = make_onestep_sampler(renoise, batch_index=latent.get("batch_index"), skip_draws=done)
        samples = comfy.sample.sample_custom(part_model, noise, cfg, sampler, part_sigmas, positive=positive,
                                             negative=negative, latent_image=samples,
                                             noise_mask=latent.get("noise_mask"), callback=callback,
                                             disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
        noise = torch.zeros_like(noise)  # the second part goes on from the first part's latent
        done += len(part_sigmas) - 1
    result = latent.copy()
    result["samples"] = samples
    return result


def _file_of(model) -> str:
    """The file a MODEL was loaded from, where ComfyUI records it (its reload factory, 0.16 on), else ''."""
    try:
        path = model.cached_patcher_init[1][0]
    except (AttributeError, TypeError, IndexError, KeyError):
        return ""
    return os.path.basename(path) if isinstance(path, str) else ""


def _same_weights(a, b) -> bool:
    """Two Wan networks with the same weights (one file loaded twice): their patch embeddings compared."""
    if a is b:
        return True
    try:
        wa, wb = a.patch_embedding.weight, b.patch_embedding.weight
        if wa.device.type == "meta" or wb.device.type == "meta":
            return False
        return wa.shape == wb.shape and torch.equal(wa.detach().cpu(), wb.detach().cpu())
    except (AttributeError, RuntimeError):
        return False


def check_expert_pair(high, low) -> None:
    """Two experts of one Wan 2.2 model: two different networks of the same architecture, neither a
    causal (block-by-block) model, in the right roles where the files say, with one one-step family."""
    for role, m in (("model_high", high), ("model_low", low)):
        if m.model_options.get("tempo_causal") is not None or (
                compat.WAN21_CausalAR is not None and isinstance(m.model, compat.WAN21_CausalAR)):
            raise TempoInputError(f"{role} is a causal (block-by-block) Wan 2.1 model; it makes video with Tempo Causal "
                                  "Video Sampler. The two experts are Wan 2.2 A14B's high_noise and low_noise files "
                                  "(Load Diffusion Model)")
    a, b = high.model.diffusion_model, low.model.diffusion_model
    if _same_weights(a, b):
        raise TempoInputError("model_high and model_low are the same model (the same weights); connect the high_noise "
                              "file to model_high and the low_noise file to model_low")
    fa, fb = _file_of(high).lower(), _file_of(low).lower()
    if "low_noise" in fa or "high_noise" in fb:
        raise TempoInputError(f"the experts look swapped: model_high is {_file_of(high) or 'a file'} and model_low is "
                              f"{_file_of(low) or 'a file'}; connect the high_noise file to model_high and the "
                              "low_noise file to model_low")
    shape = lambda net: (type(net).__name__, tuple(net.patch_embedding.weight.shape) if hasattr(net, "patch_embedding")
                         else None, getattr(net, "dim", None), len(getattr(net, "blocks", ())))
    if shape(a) != shape(b):
        raise TempoInputError(f"the high-noise and low-noise models differ ({shape(a)} and {shape(b)}); connect the two "
                              "experts of one Wan 2.2 model (high_noise and low_noise files of the same release)")
    pa, pb = model_preset(high), get_preset(low)
    if pb is not None and (pb.name, pb.schedule, pb.prediction) != (pa.name, pa.schedule, pa.prediction):
        raise TempoInputError(f"the high-noise model is set to {pa.name} and the low-noise one to {pb.name}; set both "
                              "to the same preset (or only the high-noise one)")


RENOISE_TOOLTIP = ("The update between steps: 'auto' is the model's preset (the published rule); fresh (a new noise "
                   "draw: rCM, lightx2v Wan 2.1, DMD), deterministic (Euler: Lightning, APT), lcm / tcd / ancestral "
                   "(SD-family). Only matters with more than one step.")


class OneStepGenerate(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoOneStepGenerate",
            display_name="Tempo One-Step Generate",
            category=SUBCAT,
            description="Text-to-image or img2img in one node, no SamplerCustom needed: connect a Tempo model, a "
                        "prompt, and an empty latent or an image + VAE. Works for Tempo video models too.",
            inputs=[
                io.Model.Input("model", tooltip="A model from a Tempo loader (image, video or SVD) or from Tempo "
                                                "One-Step Preset."),
                io.Conditioning.Input("positive", tooltip="Your prompt (CLIP Text Encode; ControlNet works)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Same seed, same image."),
                io.Int.Input("steps", default=1, min=1, max=16,
                             tooltip="1 for one step; more refine. Some families take only their published counts "
                                     "(DMD2 1 or 4; Lightning, Hyper-SD 2, 4, 8)."),
                io.Float.Input("strength", default=1.0, min=0.01, max=1.0, step=0.01,
                               tooltip="1.0 ignores the input image; lower keeps more of it (img2img)."),
                io.Float.Input("cfg", default=1.0, min=1.0, max=20.0, step=0.1,
                               tooltip="Leave at 1.0: these models are made for it. Above 1 needs a 'negative' "
                                       "prompt."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Negative prompt; only used when cfg is above 1."),
                io.Latent.Input("latent", optional=True,
                                tooltip="Start latent: Empty Latent Image for text-to-image (an empty video latent "
                                        "for video), or an encoded image."),
                io.Image.Input("image", optional=True,
                               tooltip="Start image for img2img, instead of latent (also connect 'vae'). Width and "
                                       "height must be multiples of 8."),
                io.Vae.Input("vae", optional=True, tooltip="The VAE that encodes 'image' (the model's own)."),
                io.Combo.Input("img2img_rule", options=list(IMG2IMG_RULES), default="run steps", optional=True,
                               tooltip="img2img: run steps always runs 'steps' steps; diffusers reads steps and "
                                       "strength as model cards do (SD-Turbo: 2 steps at 0.5 = 1 step)."),
                io.Combo.Input("renoise", options=["auto", *RENOISE_MODES], default="auto", optional=True,
                               tooltip="Between steps (above 1 step only). auto: as published, leave it. fresh: new "
                                       "noise each step; deterministic: Euler. lcm/tcd/ancestral: SD."),
            ],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, model, positive, seed, steps, strength, cfg, negative=None, latent=None, image=None,
                vae=None, img2img_rule="run steps", renoise="auto") -> io.NodeOutput:
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
        return io.NodeOutput(generate(model, positive, negative, latent, seed=seed, steps=steps, strength=strength,
                                      cfg=cfg, renoise=renoise, rule=img2img_rule))


class TwoExpertGenerate(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoTwoExpertGenerate",
            display_name="Tempo Two-Expert Generate (Wan 2.2)",
            category=SUBCAT,
            description="Wan 2.2 A14B video in a few steps, in one node: the high-noise model makes the first steps, "
                        "the low-noise model the rest, switching where the release says. Add Tempo One-Step Preset "
                        "after each LoRA.",
            inputs=[
                io.Model.Input("model_high", tooltip="The high-noise model (its file or LoRA says high_noise), with "
                                                     "its LoRA and Tempo One-Step Preset."),
                io.Model.Input("model_low", tooltip="The low-noise model of the same release, with its LoRA (a "
                                                    "preset here is optional, but must match)."),
                io.Conditioning.Input("positive", tooltip="Your prompt (CLIP Text Encode with the Wan text encoder)."),
                io.Latent.Input("latent", tooltip="The video to fill: EmptyHunyuanLatentVideo (text-to-video) or "
                                                  "WanImageToVideo's latent (image-to-video)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Same seed, same video."),
                io.Int.Input("steps", default=4, min=1, max=16,
                             tooltip="The release's published count: 4 for Lightning and lightx2v, 1-4 for rCM; "
                                     "others are refused."),
                io.Float.Input("cfg", default=1.0, min=1.0, max=20.0, step=0.1,
                               tooltip="Leave at 1.0: the fast experts are made for it. Above 1 needs a 'negative' "
                                       "prompt."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Negative prompt; only used when cfg is above 1."),
                io.Combo.Input("expert_rule", options=["preset", *EXPERT_RULES], default="preset", optional=True,
                               tooltip="When the low-noise model takes over. preset: where the release says; leave "
                                       "it. Else expert_boundary is a timestep, noise level or step."),
                io.Float.Input("expert_boundary", default=0.0, min=0.0, max=1000.0, step=0.001, optional=True,
                               tooltip="If expert_rule isn't preset: the high-noise model runs steps at or above "
                                       "this timestep (0-1000) or noise level (0-1), or this many."),
                io.Combo.Input("renoise", options=["auto", *RENOISE_MODES], default="auto", optional=True,
                               tooltip="Between steps (above 1 step only). auto: as published, leave it. fresh: new "
                                       "noise each step; deterministic: Euler. lcm/tcd/ancestral: SD."),
            ],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def validate_inputs(cls, steps=None, expert_rule=None, expert_boundary=None):
        """A step boundary past the steps is said as the job is queued."""
        problem = widget_problem(cls, {"steps": steps, "expert_rule": expert_rule, "expert_boundary": expert_boundary})
        if problem is None and expert_rule == "step" and isinstance(steps, int) \
                and isinstance(expert_boundary, (int, float)):
            try:
                high_steps(steps, float(expert_boundary))
            except TempoError as e:
                problem = str(e)
        return True if problem is None else problem

    @classmethod
    def execute(cls, model_high, model_low, positive, latent, seed, steps, cfg, negative=None, expert_rule="preset",
                expert_boundary=0.0, renoise="auto") -> io.NodeOutput:
        rule, boundary = ("", None) if expert_rule == "preset" else (expert_rule, expert_boundary)
        check_expert_pair(model_high, model_low)
        return io.NodeOutput(generate(model_high, positive, negative, latent, seed=seed, steps=steps, strength=1.0,
                                      cfg=cfg, renoise=renoise, model_low=model_low, expert_rule=rule,
                                      expert_boundary=boundary))


NODES = [OneStepSigmas, OneStepSampler, TCDSampler, OneStepGenerate, TwoExpertGenerate]

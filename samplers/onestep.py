"""One-step sampling core, shared by the image models and the one-step video models.

Plain torch; no ComfyUI import. A *family preset* says at which timestep a one-step
generator was trained and what its network predicts; the rules below turn that into a
timestep list (one step, img2img strength, several steps) and run the sampling loop.

Sign conventions: ``x`` is in the k-diffusion form that ComfyUI uses: for discrete (DDPM)
models ``x = x0 + sigma * eps`` and for flow models ``x = (1 - sigma) * x0 + sigma * eps``.
The model's ``denoise(x, sigma)`` returns x0 whatever it predicts internally; ``renoise``
puts noise back at a level (ComfyUI's ``model_sampling.noise_scaling``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from typing import Callable, Optional

import torch

from ..errors import TempoError

# What a network outputs; how x0 follows from it.
PREDICTIONS = ("eps", "x0", "v", "flow", "flow_instaflow")
# How several steps move from one level to the next (each is one diffusers scheduler's step, written
# in ComfyUI's k-diffusion form x = x0 + sigma * eps; ``sample_onestep`` says which):
#   fresh          x0 + sigma' * new noise                          (UFOGen; LCM without its boundary terms)
#   deterministic  x0 + sigma' * eps, eps the step's own            (Euler, DDIM: SDXL-Lightning, Hyper-SD, APT)
#   lcm            LCMScheduler: c_out * x0 + c_skip * x_t, then fresh noise   (DMD2, LCM-LoRA, Hyper-SD 1-step)
#   tcd            TCDScheduler: deterministic to s = floor((1 - eta) t'), then fresh noise up to t'
#   ancestral      EulerAncestralDiscreteScheduler (eta 1)        (SDXL-Turbo's shipped scheduler)
RENOISE_MODES = ("fresh", "deterministic", "lcm", "tcd", "ancestral")
# Which timesteps a step count selects:
#   trailing   the trained timestep and even (trailing) divisions below it, any count
#   published  only the counts the authors published (``published``), each its own list
#   lcm        LCMScheduler / TCDScheduler.set_timesteps: ``original_steps`` (50) trailing points, then
#              ``steps`` of them at evenly spaced indices, any count up to 50
# How img2img's ``steps`` and ``strength`` are read:
#   run steps  ``steps`` steps are run, starting at the strength's timestep (the pack's first rule)
#   diffusers  as diffusers' img2img pipelines: the schedule of ``steps`` steps at full strength, of which
#              the last int(steps * strength) run (SD-Turbo's card: steps 2, strength 0.5 -> one step at 499)
IMG2IMG_RULES = ("run steps", "diffusers")
LCM_ORIGINAL_STEPS = 50  # LCMScheduler / TCDScheduler default original_inference_steps
TCD_ETA = 0.3  # TCDScheduler.step's default eta
TRAIN_STEPS = 1000


@dataclass(frozen=True)
class Preset:
    name: str
    timestep: float          # trained one-step timestep, in the model's own units (0..999 or 0..1000)
    prediction: str          # one of PREDICTIONS
    schedule: str            # "discrete" (DDPM table, 1000 steps), "flow" (sigma = t / 1000) or "edm"
    renoise: str = "fresh"   # the update between steps, one of RENOISE_MODES
    cfg: float = 1.0         # the guidance the family was distilled for
    bases: tuple = ()        # base architectures it is published on
    note: str = ""
    # How text-to-image starts: "pure" feeds pure noise as x_t (LCM / TCD / DDIM pipelines, whose
    # init_noise_sigma is 1: DMD2, Hyper-SD, LCM, UFOGen, SwiftBrush); "scaled" feeds x = sigma * eps
    # (Euler pipelines with trailing spacing, init_noise_sigma = sigma_max: SD/SDXL-Turbo, SDXL-Lightning).
    # img2img always noises the image to t.
    start: str = "scaled"
    shift: float = 1.0       # flow schedules: sigma' = s * sigma / (1 + (s - 1) * sigma)
    frames: int = 0          # video models trained at one clip length: that many frames (0: any)
    steps_rule: str = "trailing"   # trailing, published or lcm (above)
    published: tuple = ()    # ((steps, (t, ...)), ...): the authors' timesteps per step count
    eta: float = TCD_ETA     # TCD's eta ("gamma" in the TCD paper)
    # Where the last step lands: "zero" (sigma 0: Euler, LCM) or "t0" (the table's sigma at t = 0,
    # what DDIM and TCD reach when the scheduler's set_alpha_to_one is false, as SD's configs set it)
    final: str = "zero"
    source: str = ""         # where the numbers come from

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preset":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["bases"] = tuple(d.get("bases", ()))
        d["published"] = tuple((int(n), tuple(ts)) for n, ts in d.get("published", ()))
        return cls(**d)

    def published_steps(self) -> list[int]:
        return [n for n, _ in self.published]

    def published_for(self, steps: int):
        return next((tuple(ts) for n, ts in self.published if n == steps), None)


def _trailing_pub(*counts) -> tuple:
    return tuple((n, tuple(trailing_timesteps(n))) for n in counts)


def trailing_timesteps(steps: int, top: int = TRAIN_STEPS) -> list[int]:
    """diffusers' "trailing" spacing (EulerDiscreteScheduler / DDIMScheduler.set_timesteps):
    round(arange(T, 0, -T / n)) - 1: 4 steps -> 999, 749, 499, 249."""
    ratio = top / steps
    return [int(round(top - k * ratio)) - 1 for k in range(steps)]


def lcm_timesteps(steps: int, original_steps: int = LCM_ORIGINAL_STEPS, strength: float = 1.0,
                  train: int = TRAIN_STEPS) -> list[int]:
    """LCMScheduler / TCDScheduler.set_timesteps (diffusers 0.42, scheduling_lcm.py:455-541,
    scheduling_tcd.py:483-587): the distillation schedule k * (1 .. original * strength) - 1 with
    k = T // original, reversed, sampled at floor(linspace(0, len, steps, endpoint=False)).
    4 steps -> 999, 759, 499, 259."""
    k = train // original_steps
    origin = [i * k - 1 for i in range(1, int(original_steps * strength) + 1)][::-1]
    if steps > original_steps or len(origin) // steps < 1:
        raise TempoError(f"{steps} steps do not fit the LCM/TCD schedule of {len(origin)} distillation steps; "
                         f"use at most {len(origin)}")
    step = len(origin) / steps  # numpy's linspace: start + i * step
    return [origin[int(math.floor(i * step))] for i in range(steps)]


DIFFUSERS = "huggingface/diffusers@58eb52c"
# One entry per published model (and base, where the numbers differ by base). Every number is the
# authors': model cards (Hugging Face), their code (repository@commit file:line), and the diffusers
# scheduler the card names, whose step is the ``renoise`` rule (see RENOISE_MODES).
_ROWS = [
    Preset("UFOGen", 999, "eps", "discrete", "fresh", 1.0, ("SD15",),
           "x0 from eps; multi-step re-noises with fresh noise", "pure",
           source="UFOGen (arXiv 2311.09257): one step at t = 999 from pure noise, several steps re-noise x0 with "
                  "fresh noise at t - T/N; no public weights or code"),
    Preset("SD-Turbo", 999, "eps", "discrete", "deterministic", 1.0, ("SD21",), "ADD; cfg off",
           source="stabilityai/sd-turbo card: num_inference_steps=1 (1-4), guidance_scale=0.0; img2img "
                  "num_inference_steps=2, strength=0.5; scheduler_config.json: EulerDiscreteScheduler, "
                  "timestep_spacing trailing"),
    Preset("SDXL-Turbo", 999, "eps", "discrete", "ancestral", 1.0, ("SDXL",), "ADD; cfg off",
           source="stabilityai/sdxl-turbo card and diffusers docs sdxl_turbo.md:24-25 (1-4 steps, guidance 0, "
                  "trailing); scheduler_config.json: EulerAncestralDiscreteScheduler, timestep_spacing trailing"),
    Preset("SDXL-Lightning-1step", 999, "x0", "discrete", "deterministic", 1.0, ("SDXL",), "predicts the sample (x0)",
           steps_rule="published", published=((1, (999,)),),
           source="ByteDance/SDXL-Lightning card: EulerDiscreteScheduler(timestep_spacing='trailing', "
                  "prediction_type='sample'), num_inference_steps=1, guidance_scale=0"),
    Preset("SDXL-Lightning", 999, "eps", "discrete", "deterministic", 1.0, ("SDXL",),
           "2/4/8-step UNet or LoRA: use the steps of the file", steps_rule="published",
           published=_trailing_pub(2, 4, 8),
           source="ByteDance/SDXL-Lightning card: EulerDiscreteScheduler(timestep_spacing='trailing'), "
                  "'the same inference steps as the loaded model and CFG set to 0'"),
    Preset("Hyper-SD-1step", 800, "eps", "discrete", "lcm", 1.0, ("SDXL",), "1-step SDXL UNet at t = 800", "pure",
           steps_rule="published", published=((1, (800,)),),
           source="ByteDance/Hyper-SD card, Hyper-SDXL-1step-Unet: LCMScheduler, num_inference_steps=1, "
                  "guidance_scale=0, timesteps=[800]"),
    Preset("Hyper-SD", 999, "eps", "discrete", "deterministic", 1.0, ("SDXL", "SD15"),
           "2/4/8-step LoRAs: use the steps of the file", "pure", steps_rule="published",
           published=_trailing_pub(2, 4, 8), final="t0",
           source="ByteDance/Hyper-SD card, Hyper-SDXL/SD15-{2,4,8}steps-lora: DDIMScheduler(timestep_spacing="
                  "'trailing'), guidance_scale=0; DDIM's last step lands on alphas_cumprod[0] (set_alpha_to_one "
                  f"false, {DIFFUSERS} scheduling_ddim.py:236, :449)"),
    Preset("Hyper-SD-TCD", 999, "eps", "discrete", "tcd", 1.0, ("SDXL", "SD15"),
           "unified 1-step LoRA, 1-8 steps; lower eta for more steps", "pure", steps_rule="lcm", eta=1.0,
           source="ByteDance/Hyper-SD card, Hyper-SDXL/SD15-1step-lora: TCDScheduler, eta=1.0, "
                  "num_inference_steps=1 (1-8), guidance_scale=0; timesteps: TCDScheduler.set_timesteps "
                  f"({DIFFUSERS} scheduling_tcd.py:483-587)"),
    Preset("DMD2", 399, "eps", "discrete", "lcm", 1.0, ("SDXL",), "LCM scheduler at the trained timesteps; cfg off",
           "pure", steps_rule="published", published=((1, (399,)), (4, (999, 749, 499, 249))),
           source="tianweiy/DMD2@8d8fa55 README.md:141-143 (1-step UNet: LCMScheduler, timesteps=[399]), :98-124 "
                  "(4-step UNet and LoRA: timesteps=[999, 749, 499, 249]), main/sd_unified_model.py:31-32"),
    Preset("DMD2", 999, "eps", "discrete", "lcm", 1.0, ("SD15",), "SD 1.5 one-step at its training timestep",
           "pure", steps_rule="published", published=((1, (999,)),),
           source="tianweiy/DMD2@8d8fa55 main/train_sd.py:661 (--conditioning_timestep default 999, not overridden "
                  "by the SD 1.5 scripts), main/test_folder_sd.py:100 (t = 999, pure noise)"),
    Preset("LCM", 999, "eps", "discrete", "lcm", 1.0, ("SD15", "SDXL"), "LCM-LoRA, 2-8 steps", "pure",
           steps_rule="lcm",
           source="latent-consistency/lcm-lora-sdxl and lcm-lora-sdv1-5 cards: LCMScheduler, 2-8 steps, guidance 0 "
                  f"or 1-2; timesteps: LCMScheduler.set_timesteps, original_inference_steps 50 ({DIFFUSERS} "
                  "scheduling_lcm.py:455-541)"),
    Preset("InstaFlow", 1000, "flow_instaflow", "flow", "deterministic", 1.0, ("SD15",), "rectified flow, x0 = z + v",
           source="gnobitab/InstaFlow@f543f81 code/pipeline_rf.py:638 (t = (1 - i/N) * 1000), :655-672 "
                  "(latents + dt * v)"),
    Preset("SwiftBrush", 999, "eps", "discrete", "fresh", 1.0, ("SD21",), "variational score distillation", "pure",
           steps_rule="published", published=((1, (999,)),),
           source="VinAIResearch/SwiftBrush@686c231 infer.py:51-55 (t = 999, pure noise, x0 from eps)"),
    Preset("APT", 1000, "flow", "flow", "deterministic", 1.0, ("WAN21",), "one-step video DiT, x0 = z - v"),
    Preset("SVD", 700.0, "v", "edm", "deterministic", 1.0, ("SVD",), "EDM v-prediction, Karras sigmas, Euler",
           "pure"),
    Preset("AnimateLCM-SVD", 700.0, "v", "edm", "fresh", 1.0, ("SVD",), "consistency-distilled SVD, 1-8 steps",
           "pure"),
]
PRESETS = {}
for _p in _ROWS:
    PRESETS.setdefault(_p.name, _p)  # the first row of a name is its default (DMD2: SDXL)
EDM_SIGMA_MIN, EDM_RHO = 0.002, 7.0
PRESET_NAMES = list(PRESETS) + ["custom"]
IMAGE_PRESET_NAMES = [n for n in PRESET_NAMES if n not in ("APT", "SVD", "AnimateLCM-SVD")]
SVD_PRESET_NAMES = ["SVD", "AnimateLCM-SVD"]


def preset_for(name: str, base: str | None) -> Preset:
    """The row of preset ``name`` published for ``base`` (DMD2 differs between SDXL and SD 1.5)."""
    rows = [p for p in _ROWS if p.name == name]
    if not rows:
        raise TempoError(f"unknown preset '{name}'; one of {', '.join(PRESET_NAMES)}")
    return next((p for p in rows if base in p.bases), rows[0])


def published_table() -> list[str]:
    """The README's table of published settings (a test keeps the README equal to it)."""
    lines = ["| preset | base | steps | timesteps | update | text-to-image start | last step |",
             "|---|---|---|---|---|---|---|"]
    for r in published_rows():
        update = r["update"] + (f" (eta {r['eta']:g})" if r["eta"] is not None else "")
        lines.append(f"| {r['preset']} | {r['bases']} | {r['steps']} | {', '.join(map(str, r['timesteps']))} | "
                     f"{update} | {r['start']} | {r['last']} |")
    return lines


def published_sources() -> list[str]:
    """The README's list of where each preset's numbers come from."""
    return [f"- {p.name} ({'/'.join(p.bases)}): {p.source}" for p in _ROWS if p.source]


def published_rows() -> list[dict]:
    """The published settings, one row per preset, base and step count (the README's table)."""
    rows = []
    for p in _ROWS:
        if not p.source:  # set by their loaders (APT, SVD), not by a card's scheduler
            continue
        counts = p.published_steps() or ([1, 2, 4, 8] if p.steps_rule == "lcm" else [1, 2, 4])
        for n in counts:
            rows.append(dict(preset=p.name, bases="/".join(p.bases), steps=n,
                             timesteps=[int(t) for t in full_strength_timesteps(p, n)], update=p.renoise,
                             eta=p.eta if p.renoise == "tcd" else None, start=p.start,
                             last="t = 0" if p.final == "t0" or p.renoise == "tcd" else "sigma 0"))
    return rows


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = EDM_RHO, start: float = 0.0) -> list[float]:
    """Karras et al. (2022) noise levels, from ``start`` (0 = sigma_max) of the way down the ramp."""
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    ramp = [start + (1 - start) * i / max(n - 1, 1) for i in range(n)] if n > 1 else [start]
    return [(hi + r * (lo - hi)) ** rho for r in ramp]


def custom_preset(timestep: float, prediction: str, schedule: str = "discrete", renoise: str = "fresh",
                  start: str = "scaled") -> Preset:
    if prediction not in PREDICTIONS:
        raise TempoError(f"prediction '{prediction}' is not one of {', '.join(PREDICTIONS)}")
    limit = 1000 if schedule == "flow" else 999
    if not 0 < timestep <= limit:
        raise TempoError(f"timestep {timestep} is outside (0, {limit}] for a {schedule} schedule")
    return Preset("custom", float(timestep), prediction, schedule, renoise, start=start)


def video_preset(timestep: float = 1000.0, shift: float = 5.0, frames: int = 0) -> Preset:
    """APT-style one-step video: flow (v) prediction, x0 = z - v at t = T, deterministic Euler refinement."""
    if not 0 < timestep <= 1000:
        raise TempoError(f"final timestep {timestep} is outside (0, 1000]")
    if shift <= 0:
        raise TempoError(f"shift {shift} must be positive")
    base = PRESETS["APT"]
    return Preset(base.name, float(timestep), base.prediction, base.schedule, base.renoise, base.cfg, base.bases,
                  base.note, base.start, float(shift), int(frames))


def check_strength(strength: float) -> None:
    if not (0.0 < strength <= 1.0):
        raise TempoError(f"strength {strength} is outside (0, 1]: 1.0 generates from pure noise, "
                         "smaller values keep more of the input image (img2img)")


def _even_below(preset: Preset, top: float, steps: int) -> list[float]:
    """``steps`` timesteps from ``top`` down, evenly (trailing), in the preset's schedule."""
    if preset.schedule == "flow":
        return [top * (steps - k) / steps for k in range(steps)]
    start = top + 1
    ts = [max(round(start * (steps - k) / steps) - 1, 0) for k in range(steps)]
    if len(set(ts)) != len(ts):
        raise TempoError(f"{steps} steps do not fit below timestep {ts[0]}; use fewer steps or a higher strength")
    return [float(t) for t in ts]


def full_strength_timesteps(preset: Preset, steps: int) -> list[float]:
    """The timesteps of ``steps`` steps from pure noise, as the family was published."""
    if steps < 1:
        raise TempoError(f"steps must be at least 1, got {steps}")
    listed = preset.published_for(steps)
    if listed is not None:
        return [float(t) for t in listed]
    if preset.steps_rule == "published":
        counts = ", ".join(str(n) for n in preset.published_steps())
        raise TempoError(f"{preset.name} was published for {counts} step(s), not {steps}: set steps to one of "
                         f"those, or use the 'custom' preset for other schedules")
    if preset.steps_rule == "lcm":
        return [float(t) for t in lcm_timesteps(steps)]
    return _even_below(preset, preset.timestep, steps)


def preset_timesteps(preset: Preset, steps: int = 1, strength: float = 1.0, rule: str = "run steps") -> list[float]:
    """The timesteps a one-step family is sampled at, highest first.

    At full strength: the published list for that step count (DMD2 SDXL 4 steps: 999, 749, 499,
    249; its 1 step: 399), else the family's rule (``Preset.steps_rule``). img2img, ``rule`` "run
    steps": ``steps`` steps are run from the strength's start, for discrete schedules ``t =
    round(strength * (T + 1)) - 1`` of the top timestep T (DDPM "trailing" spacing: strength 0.5 of
    a t = 999 model starts at 499), for flow schedules ``t = strength * T``, evenly below it; rule
    "diffusers": the full-strength list of ``steps``, of which the last int(steps * strength) run
    (StableDiffusionImg2ImgPipeline.get_timesteps).
    """
    check_strength(strength)
    if rule not in IMG2IMG_RULES:
        raise TempoError(f"img2img rule '{rule}' is not one of {', '.join(IMG2IMG_RULES)}")
    if preset.schedule == "edm":  # continuous EDM (SVD): timesteps are c_noise = ln(sigma) / 4 of Karras sigmas
        if rule == "diffusers":
            return _diffusers_subset(preset_timesteps(preset, steps, 1.0), steps, strength)
        return [0.25 * math.log(s) for s in karras_sigmas(steps, EDM_SIGMA_MIN, preset.timestep, EDM_RHO, 1 - strength)]
    full = full_strength_timesteps(preset, steps)
    if strength == 1.0:
        return full
    if rule == "diffusers":
        return _diffusers_subset(full, steps, strength)
    top = full[0]
    start = strength * top if preset.schedule == "flow" else round(strength * (top + 1)) - 1
    return _even_below(preset, start, steps)


def _diffusers_subset(full: list[float], steps: int, strength: float) -> list[float]:
    n = min(int(steps * strength), steps)
    if n < 1:
        raise TempoError(f"with the diffusers img2img rule, {steps} step(s) at strength {strength:g} run "
                         f"int({steps} x {strength:g}) = 0 steps; raise steps or strength (e.g. steps "
                         f"{math.ceil(1 / strength)})")
    return full[steps - n:]


def final_timestep(preset: Preset):
    """The level the last step lands on: None for sigma 0, else a timestep (0) whose table sigma it is."""
    return 0.0 if preset.final == "t0" and preset.schedule == "discrete" else None


def lcm_scalings(timestep: float, timestep_scaling: float = 10.0, sigma_data: float = 0.5) -> tuple[float, float]:
    """LCMScheduler.get_scalings_for_boundary_condition_discrete (diffusers scheduling_lcm.py:548-567)."""
    scaled = timestep * timestep_scaling
    return sigma_data ** 2 / (scaled ** 2 + sigma_data ** 2), scaled / (scaled ** 2 + sigma_data ** 2) ** 0.5


def batch_generators(seed: int, batch_index) -> list[torch.Generator]:
    """One re-noising stream per image, seeded by (seed, the image's batch index): an image's
    result is the same alone or in a batch, as ComfyUI's own start noise is (prepare_noise with
    batch_index). Index 0 is seed + 1, wrapped so every seed the input allows works."""
    return [torch.Generator(device="cpu").manual_seed((seed + 1 + int(i) * 0x9E3779B97F4A7C15) % 2**64)
            for i in batch_index]


def _draw(generator, shape, like: torch.Tensor) -> torch.Tensor:
    """Gaussian noise of ``shape``: from one generator (as diffusers' randn_tensor draws it), or one
    generator per image of the batch."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} noise streams for a batch of {shape[0]}")
        noise = torch.cat([torch.randn((1, *shape[1:]), generator=g, dtype=torch.float32) for g in generator])
    else:
        noise = torch.randn(shape, generator=generator, dtype=torch.float32,
                            device=generator.device if generator is not None else "cpu")
    return noise.to(device=like.device, dtype=like.dtype)


def sample_onestep(denoise: Callable, x: torch.Tensor, sigmas: torch.Tensor, renoise: Callable,
                   mode: str = "fresh", generator=None, callback: Optional[Callable] = None,
                   eta: float = TCD_ETA, timestep: Optional[Callable] = None,
                   sigma_at: Optional[Callable] = None) -> torch.Tensor:
    """Run the one-step family rule over ``sigmas`` (the last one is normally 0).

    Each step predicts x0 = denoise(x, sigma) and moves to the next level by ``mode``:

    * fresh: x0 re-noised with fresh Gaussian noise (UFOGen, DMD2, LCM-style);
    * deterministic: the noise the step implies, eps = (x - renoise(sigma, 0, x0)) / sigma (the Euler
      / DDIM rule, as in APT, SeedVR, SDXL-Lightning, Hyper-SD's DDIM);
    * lcm: LCMScheduler's step: denoised = c_out * x0 + c_skip * x_t (x_t = sqrt(abar_t) x, the
      scheduler's own sample), then fresh noise; the last step returns denoised;
    * tcd: TCDScheduler's step with ``eta``: deterministic to s = floor((1 - eta) * t'), then fresh
      noise from s up to t' (variance sigma'^2 - sigma_s^2); the last step lands at s = 0, the table's
      sigma at t = 0, with no noise;
    * ancestral: EulerAncestralDiscreteScheduler's step (sigma_up / sigma_down), a draw every step.

    Discrete models only for lcm, tcd and ancestral: ``timestep(sigma)`` and ``sigma_at(t)`` read the
    model's table (sqrt(abar_t) = 1 / sqrt(1 + sigma^2)). ``generator``: a torch.Generator,
    or one per image (:func:`batch_generators`). ``callback(i, x0, x)`` sees every step.
    """
    if mode not in RENOISE_MODES:
        raise TempoError(f"re-noise mode '{mode}' is not one of {', '.join(RENOISE_MODES)}")
    if mode in ("lcm", "tcd") and (timestep is None or sigma_at is None):
        raise TempoError(f"the {mode} update needs a discrete (DDPM) model: its steps are defined on the timestep table")
    if mode == "tcd" and not 0.0 <= eta <= 1.0:
        raise TempoError(f"eta {eta} is outside [0, 1]: 0 is deterministic (DDIM), 1 fully stochastic")
    n = len(sigmas) - 1
    for i in range(n):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x0 = denoise(x, sigma)
        if callback is not None:
            callback(i, x0, x)
        last = i == n - 1
        if mode == "lcm":
            c_skip, c_out = lcm_scalings(float(timestep(sigma)))
            x0 = c_out * x0 + c_skip * x / (1.0 + float(sigma) ** 2) ** 0.5
            x = x0 if last or float(sigma_next) == 0.0 else renoise(sigma_next, _draw(generator, x.shape, x), x0)
        elif mode == "tcd":
            t_next = 0.0 if float(sigma_next) == 0.0 else float(timestep(sigma_next))
            t_s = math.floor((1 - eta) * t_next)
            sigma_s = sigma_at(t_s)
            eps = (x - x0) / sigma
            x = x0 + sigma_s * eps
            if eta > 0 and not last:
                x = x + (float(sigma_next) ** 2 - float(sigma_s) ** 2) ** 0.5 * _draw(generator, x.shape, x)
        elif mode == "ancestral":
            s, s_next = float(sigma), float(sigma_next)
            up = (s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2) ** 0.5
            down = (s_next ** 2 - up ** 2) ** 0.5
            x = x + (x - x0) / sigma * (down - s)
            x = x + _draw(generator, x.shape, x) * up
        elif float(sigma_next) == 0.0:
            x = x0
        elif mode == "fresh":
            x = renoise(sigma_next, _draw(generator, x.shape, x), x0)
        else:
            eps = (x - renoise(sigma, torch.zeros_like(x), x0)) / sigma
            x = renoise(sigma_next, eps, x0)
    return x

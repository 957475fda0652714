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

from dataclasses import dataclass, asdict
from typing import Callable, Optional

import torch

from ..errors import TempoError

# What a network outputs; how x0 follows from it.
PREDICTIONS = ("eps", "x0", "v", "flow", "flow_instaflow")
RENOISE_MODES = ("fresh", "deterministic")


@dataclass(frozen=True)
class Preset:
    name: str
    timestep: float          # trained one-step timestep, in the model's own units (0..999 or 0..1000)
    prediction: str          # one of PREDICTIONS
    schedule: str            # "discrete" (DDPM table, 1000 steps) or "flow" (sigma = t / 1000)
    renoise: str = "fresh"   # how several steps re-noise: fresh noise (UFOGen) or deterministic (Euler)
    cfg: float = 1.0         # the guidance the family was distilled for
    bases: tuple = ()        # base architectures it is published on
    note: str = ""
    # How text-to-image starts: "pure" feeds pure noise as x_t (LCM / TCD style pipelines:
    # DMD2, Hyper-SD, UFOGen, SwiftBrush); "scaled" feeds x = sigma * eps (Euler-style
    # pipelines: SD/SDXL-Turbo, SDXL-Lightning). img2img always noises the image to t.
    start: str = "scaled"
    shift: float = 1.0       # flow schedules: sigma' = s * sigma / (1 + (s - 1) * sigma)
    frames: int = 0          # video models trained at one clip length: that many frames (0: any)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {p.name: p for p in [
    Preset("UFOGen", 999, "eps", "discrete", "fresh", 1.0, ("SD15",),
           "x0 from eps; multi-step re-noises with fresh noise", "pure"),
    Preset("SD-Turbo", 999, "eps", "discrete", "fresh", 1.0, ("SD21",), "ADD; cfg off"),
    Preset("SDXL-Turbo", 999, "eps", "discrete", "fresh", 1.0, ("SDXL",), "ADD; cfg off"),
    Preset("SDXL-Lightning-1step", 999, "x0", "discrete", "fresh", 1.0, ("SDXL",), "predicts the sample (x0)"),
    Preset("Hyper-SD-1step", 800, "eps", "discrete", "fresh", 1.0, ("SDXL", "SD15"), "TCD-style, t = 800", "pure"),
    Preset("DMD2", 399, "eps", "discrete", "fresh", 1.0, ("SD15", "SDXL"), "LCM-style, t = 399; cfg off", "pure"),
    Preset("InstaFlow", 1000, "flow_instaflow", "flow", "deterministic", 1.0, ("SD15",),
           "rectified flow, x0 = z + v"),
    Preset("SwiftBrush", 999, "eps", "discrete", "fresh", 1.0, ("SD21",), "variational score distillation", "pure"),
    Preset("APT", 1000, "flow", "flow", "deterministic", 1.0, ("WAN21",), "one-step video DiT, x0 = z - v"),
    Preset("SVD", 700.0, "v", "edm", "deterministic", 1.0, ("SVD",), "EDM v-prediction, Karras sigmas, Euler",
           "pure"),
    Preset("AnimateLCM-SVD", 700.0, "v", "edm", "fresh", 1.0, ("SVD",), "consistency-distilled SVD, 1-8 steps",
           "pure"),
]}
EDM_SIGMA_MIN, EDM_RHO = 0.002, 7.0
PRESET_NAMES = list(PRESETS) + ["custom"]
IMAGE_PRESET_NAMES = [n for n in PRESET_NAMES if n not in ("APT", "SVD", "AnimateLCM-SVD")]
SVD_PRESET_NAMES = ["SVD", "AnimateLCM-SVD"]


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


def preset_timesteps(preset: Preset, steps: int = 1, strength: float = 1.0) -> list[float]:
    """The timesteps a one-step family is sampled at, highest first.

    One step at full strength is the trained timestep. ``strength`` scales where sampling
    starts (img2img): for discrete schedules ``t = round(strength * (T + 1)) - 1`` (DDPM
    "trailing" spacing, so strength 0.5 of a t = 999 model starts at 499), for flow
    schedules ``t = strength * T``. Several steps divide that span evenly, trailing:
    a t = 999 model in 4 steps runs at 999, 749, 499, 249 (UFOGen, DMD2 4-step).
    """
    check_strength(strength)
    if steps < 1:
        raise TempoError(f"steps must be at least 1, got {steps}")
    if preset.schedule == "edm":  # continuous EDM (SVD): timesteps are c_noise = ln(sigma) / 4 of Karras sigmas
        import math

        return [0.25 * math.log(s) for s in karras_sigmas(steps, EDM_SIGMA_MIN, preset.timestep, EDM_RHO, 1 - strength)]
    if preset.schedule == "flow":
        start = strength * preset.timestep
        return [start * (steps - k) / steps for k in range(steps)]
    start = strength * (preset.timestep + 1)
    ts = [max(round(start * (steps - k) / steps) - 1, 0) for k in range(steps)]
    if len(set(ts)) != len(ts):
        raise TempoError(f"{steps} steps do not fit below timestep {ts[0]}; use fewer steps or a higher strength")
    return [float(t) for t in ts]


def sample_onestep(denoise: Callable, x: torch.Tensor, sigmas: torch.Tensor, renoise: Callable,
                   mode: str = "fresh", generator: Optional[torch.Generator] = None,
                   callback: Optional[Callable] = None) -> torch.Tensor:
    """Run the one-step family rule over ``sigmas`` (the last one is normally 0).

    Each step predicts x0 = denoise(x, sigma). When a next level follows, the sample is
    re-noised to it: with fresh Gaussian noise (UFOGen, DMD2, LCM-style) or with the noise
    the step implies, eps = (x - renoise(sigma, 0, x0)) / sigma (deterministic; this is the
    Euler / DDIM rule, as in APT and SeedVR). ``callback(i, x0, x)`` sees every step.
    """
    if mode not in RENOISE_MODES:
        raise TempoError(f"re-noise mode '{mode}' is not one of {', '.join(RENOISE_MODES)}")
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x0 = denoise(x, sigma)
        if callback is not None:
            callback(i, x0, x)
        if float(sigma_next) == 0.0:
            x = x0
        elif mode == "fresh":
            noise = torch.randn(x.shape, generator=generator, dtype=torch.float32,
                                device=generator.device if generator is not None else "cpu")
            x = renoise(sigma_next, noise.to(device=x.device, dtype=x.dtype), x0)
        else:
            eps = (x - renoise(sigma, torch.zeros_like(x), x0)) / sigma
            x = renoise(sigma_next, eps, x0)
    return x

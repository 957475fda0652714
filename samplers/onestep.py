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
from dataclasses import asdict, dataclass, replace
from typing import Callable, Optional

import torch

from ..errors import TempoError
from .flow import shift_sigma

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
    # Wan 2.2 A14B two-expert models: where the high-noise expert hands over to the low-noise one.
    # expert_rule "timestep": steps at t >= expert_boundary (0..1000, after the shift) run on the
    # high-noise expert; "sigma": steps at sigma >= it; "step": the first int(it) steps; "" : one model.
    expert_rule: str = ""
    expert_boundary: float = 0.0

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


def trigflow_sigma(t: float) -> float:
    """rCM's TrigFlow time t as the rectified-flow sigma Wan is fed: sin t / (sin t + cos t)
    (NVlabs/rcm@5b41aa9 rcm/inference/wan2pt1_t2v_rcm_infer.py:154)."""
    return math.sin(t) / (math.sin(t) + math.cos(t))


def rcm_sigmas(steps: int, sigma_max: float) -> tuple:
    """rCM / TurboDiffusion: [atan(sigma_max), 1.5, 1.4, 1.0][:steps] in TrigFlow time, as sigmas
    (rcm@5b41aa9 rcm/inference/wan2pt1_t2v_rcm_infer.py:145-154; thu-ml/TurboDiffusion@aaecff5
    turbodiffusion/inference/wan2.1_t2v_infer.py:113-122)."""
    return tuple(trigflow_sigma(t) for t in [math.atan(sigma_max), 1.5, 1.4, 1.0][:steps])


def fastvideo_sigma(t: float, shift: float = 8.0, train: int = TRAIN_STEPS) -> float:
    """FastVideo's DMD stage: the sigma of the nearest timestep on FlowMatchEulerDiscreteScheduler's
    shifted 1000-step grid (hao-ai-lab/FastVideo@2f3d407 fastvideo/pipelines/stages/denoising.py:1257,
    fastvideo/models/utils.py:170-174); the shift is the stage's own 8.0 for every FastWan model."""
    best = None
    for i in range(train, 0, -1):
        sig = shift_sigma(i / train, shift)
        if best is None or abs(sig * train - t) < abs(best * train - t):
            best = sig
    return best


def _flow_pub(table: dict) -> tuple:
    """((steps, (t, ...)), ...) of sigmas given per step count, as flow timesteps (1000 sigma)."""
    return tuple((n, tuple(1000.0 * v for v in sig)) for n, sig in table.items())


WAN_BASES = ("WAN21", "WAN22_5B")
LX = "ModelTC/LightX2V@f8aee98"
LX_OLD = "ModelTC/lightx2v@0591c35"
LIGHTNING = "ModelTC/Wan2.2-Lightning@92efeb4"
RCM = "NVlabs/rcm@5b41aa9"
LX_FOUR_STEPS = ((4, (1000.0, 750.0, 500.0, 250.0)),)  # lightx2v's and Lightning's 4 steps, before shift 5
FASTVIDEO = "hao-ai-lab/FastVideo@2f3d407"
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
    # Few-step Wan video (flow prediction, x0 = x - sigma v). Timesteps 0..1000 before the preset's shift.
    Preset("rCM", 1000, "flow", "flow", "fresh", 1.0, ("WAN21",), "rCM / TurboDiffusion Wan 2.1 T2V, sigma_max 80",
           "scaled", steps_rule="published", published=_flow_pub({n: rcm_sigmas(n, 80.0) for n in (1, 2, 3, 4)}),
           source=f"{RCM} rcm/inference/wan2pt1_t2v_rcm_infer.py:145-154 (TrigFlow times [atan(sigma_max), 1.5, 1.4, "
                  "1.0][:steps] as sigma = sin t / (sin t + cos t), fed as 1000 sigma, no shift), :157 (x = sigma_0 "
                  "noise), :166-171 (x0 = x - sigma v, then fresh noise: (1 - sigma') x0 + sigma' noise), :72-81 "
                  "(4 steps, sigma_max 80; the 14B 720p examples use 120: give those sigmas as an explicit list)"),
    Preset("rCM Wan 2.2 I2V", 1000, "flow", "flow", "fresh", 1.0, ("WAN21",),
           "rCM / TurboDiffusion Wan 2.2 I2V A14B two experts, sigma_max 200", "scaled", steps_rule="published",
           published=_flow_pub({n: rcm_sigmas(n, 200.0) for n in (1, 2, 3, 4)}), expert_rule="sigma",
           expert_boundary=0.9,
           source=f"{RCM} rcm/inference/wan2pt2_i2v_rcm_infer.py:64 (boundary 0.9), :176-212 (same loop; the "
                  "high-noise expert while sigma >= 0.9), :84-85 (sigma_max 200, 4 steps)"),
    Preset("lightx2v Wan 2.1", 1000, "flow", "flow", "fresh", 1.0, ("WAN21",),
           "lightx2v 4-step Wan 2.1 (T2V / I2V models and LoRAs)", "scaled", shift=5.0, steps_rule="published",
           published=LX_FOUR_STEPS,
           source=f"{LX} configs/distill/wan21/wan_t2v_distill_model_4step_cfg.json:10-15 and "
                  "wan_i2v_distill_lora_4step_cfg.json:9-14 (steps [1000, 750, 500, 250], shift 5, cfg off); "
                  "lightx2v/models/schedulers/wan/step_distill/scheduler.py:25-33 (the list indexes the unshifted "
                  f"grid, then shift 5: sigma 1, 0.9375, 0.8333, 0.625); {LX_OLD} same file :49-56 (x0, then fresh "
                  "noise: the update these models were released with, and the LCM sampling its docs recommend, "
                  "docs/EN/source/method_tutorials/step_distill.md:94; since 753a494 the code steps by Euler: set "
                  "renoise deterministic for that)"),
    Preset("lightx2v Wan 2.2", 1000, "flow", "flow", "deterministic", 1.0, ("WAN21",),
           "lightx2v 4-step Wan 2.2 A14B two experts (models and LoRAs)", "scaled", shift=5.0, steps_rule="published",
           published=LX_FOUR_STEPS, expert_rule="step", expert_boundary=2,
           source=f"{LX} configs/distill/wan22/wan_moe_i2v_distill_model.json:14, :21-27 and "
                  "wan_moe_t2v_distill_lora.json:14, :20-26 (shift 5, [1000, 750, 500, 250], boundary_step_index 2); "
                  "runners/wan/wan_distill_runner.py:51, :60-61, :179 (the high-noise expert for steps 0-1); "
                  "step_distill/scheduler.py:80-89 (Euler: x + (sigma' - sigma) v)"),
    Preset("Wan2.2-Lightning T2V", 1000, "flow", "flow", "deterministic", 1.0, ("WAN21",),
           "Wan 2.2 Lightning T2V A14B LoRAs, two experts", "scaled", shift=5.0, steps_rule="published",
           published=LX_FOUR_STEPS, expert_rule="timestep", expert_boundary=875.0,
           source=f"{LIGHTNING} wan/configs/wan_t2v_A14B.py:34-37 (shift 5, boundary 0.875); "
                  "wan/utils/fm_solvers_euler.py:17-21, :41-45 (linspace(1000, 0, steps + 1), shifted), :84-86 (Euler); "
                  "wan/text2video.py:200-205, :320 (the high-noise expert while t >= 875), :345-347"),
    Preset("Wan2.2-Lightning I2V", 1000, "flow", "flow", "deterministic", 1.0, ("WAN21",),
           "Wan 2.2 Lightning I2V A14B LoRAs, two experts", "scaled", shift=5.0, steps_rule="published",
           published=LX_FOUR_STEPS, expert_rule="timestep", expert_boundary=900.0,
           source=f"{LIGHTNING} wan/configs/wan_i2v_A14B.py:34-37 (shift 5, boundary 0.900); the same Euler solver"),
    Preset("FastWan", 1000, "flow", "flow", "fresh", 1.0, WAN_BASES, "FastWan (DMD) Wan 2.1 1.3B / 14B and Wan 2.2 TI2V 5B",
           "scaled", steps_rule="published",
           published=_flow_pub({3: tuple(fastvideo_sigma(t) for t in (1000, 757, 522))}),
           source=f"{FASTVIDEO} fastvideo/configs/pipelines/wan.py:123-124, :277-278 (dmd_denoising_steps [1000, 757, "
                  "522]); fastvideo/pipelines/stages/denoising.py:1257 (shift 8.0 for every model), :1318, :1338 (the "
                  "steps unwarped; the network is fed 757 where the sigma is the grid's 0.75676: 0.03% apart), "
                  ":1384-1397 (x0, then fresh noise)"),
    Preset("CausVid 14B (lightx2v)", 1000, "flow", "flow", "fresh", 1.0, ("WAN21",),
           "lightx2v's bidirectional CausVid Wan 2.1 14B and the LoRAs extracted from it", "scaled", shift=8.0,
           steps_rule="published", published=((9, (999.0, 934.0, 862.0, 756.0, 603.0, 410.0, 250.0, 140.0, 74.0)),),
           source=f"{LX_OLD} configs/causvid/wan_t2v_causvid.json:2, :11-19 (9 steps [999, 934, 862, 756, 603, 410, "
                  "250, 140, 74], sample_shift 8, cfg off); lightx2v/models/schedulers/wan/step_distill/scheduler.py:"
                  "33-40 (warped on the shift-8 grid), :49-56 (fresh noise)"),
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
# The families by the models they run on (each row is in exactly one; tests/test_onestep_unit.py checks it).
IMAGE_PRESET_NAMES = ["UFOGen", "SD-Turbo", "SDXL-Turbo", "SDXL-Lightning-1step", "SDXL-Lightning", "Hyper-SD-1step",
                      "Hyper-SD", "Hyper-SD-TCD", "DMD2", "LCM", "InstaFlow", "SwiftBrush", "custom"]
WAN_PRESET_NAMES = ["rCM", "rCM Wan 2.2 I2V", "lightx2v Wan 2.1", "lightx2v Wan 2.2", "Wan2.2-Lightning T2V",
                    "Wan2.2-Lightning I2V", "FastWan", "CausVid 14B (lightx2v)"]
SVD_PRESET_NAMES = ["SVD", "AnimateLCM-SVD"]
VIDEO_PRESET_NAMES = ["APT"]  # one-step video on Wan 2.1 (the one-step video loader's own rule)


# The bases as an artist names them, for messages.
BASE_NAMES = {"SD15": "SD 1.5", "SD21": "SD 2.1", "SDXL": "SDXL", "SVD": "Stable Video Diffusion",
              "WAN21": "the Wan 2.1 architecture (Wan 2.1, or a Wan 2.2 A14B expert)",
              "WAN22_5B": "Wan 2.2 TI2V 5B (its own VAE, 48-channel latent)"}


def base_name(base: str) -> str:
    return BASE_NAMES.get(base, base)


def preset_bases(name: str) -> list[str]:
    """Every base some row of preset ``name`` is published for (DMD2: SDXL and SD 1.5)."""
    return list(dict.fromkeys(b for p in _ROWS if p.name == name for b in p.bases))


def preset_for(name: str, base: str | None) -> Preset:
    """The row of preset ``name`` published for ``base`` (DMD2 differs between SDXL and SD 1.5)."""
    rows = [p for p in _ROWS if p.name == name]
    if not rows:
        raise TempoError(f"unknown preset '{name}'; one of {', '.join(PRESET_NAMES)}")
    return next((p for p in rows if base in p.bases), rows[0])


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


EXPERT_RULES = ("timestep", "sigma", "step")
MAX_LISTED_STEPS = 16  # the step inputs' maximum


def parse_sigma_list(text: str) -> list[float]:
    """An explicit flow schedule typed by the user ("1.0, 0.9375, 0.8333, 0.625"): the sigma of each
    step, highest first, as the network is fed it (no shift applied on top); refused unless
    strictly decreasing and inside (0, 1]."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    try:
        sigmas = [float(p) for p in parts]
    except ValueError:
        raise TempoError(f"the sigma list '{text}' is not numbers separated by commas (e.g. 1.0, 0.9375, 0.8333, "
                         "0.625)") from None
    if not sigmas:
        raise TempoError("the sigma list is empty; give one sigma per step, highest first (e.g. 1.0, 0.75, 0.5)")
    if len(sigmas) > MAX_LISTED_STEPS:
        raise TempoError(f"the sigma list has {len(sigmas)} steps; at most {MAX_LISTED_STEPS}")
    bad = [v for v in sigmas if not (0.0 < v <= 1.0) or math.isnan(v)]
    if bad:
        raise TempoError(f"sigma {bad[0]:g} is outside (0, 1]: a flow schedule's sigmas run from 1 (pure noise) "
                         "down towards 0 (the image); the final 0 is added for you")
    for a, b in zip(sigmas, sigmas[1:]):
        if not b < a:
            raise TempoError(f"the sigma list must decrease strictly, step by step ({a:g} is followed by {b:g})")
    return sigmas


def explicit_preset(base: Preset, sigmas: list[float]) -> Preset:
    """``base`` sampled at exactly ``sigmas`` (one step each; flow models): its prediction, start and
    update between steps are kept; the list replaces the published timesteps and the shift."""
    if base.schedule != "flow":
        raise TempoError(f"an explicit sigma list is for flow models (Wan); the {base.name} preset samples a "
                         f"{base.schedule} schedule")
    return replace(base, shift=1.0, steps_rule="published",
                   published=((len(sigmas), tuple(1000.0 * v for v in sigmas)),),
                   note=(base.note + "; " if base.note else "") + "explicit sigmas " + ", ".join(f"{v:g}" for v in sigmas))


def high_steps(n: int, boundary: float) -> int:
    """expert_rule 'step': the ``boundary`` first of ``n`` steps run on the high-noise expert."""
    if boundary != int(boundary) or not 0 <= boundary <= n:
        raise TempoError(f"expert_boundary {boundary:g} with expert_rule step is how many of the {n} steps run on the "
                         f"high-noise model; use a whole number from 0 to {n} (the Wan 2.2 releases switch halfway)")
    return int(boundary)


def expert_split(preset: Preset, sigmas: list[float], rule: str = "", boundary: float | None = None) -> int:
    """How many of the steps at ``sigmas`` (highest first, the final level excluded) run on the
    high-noise expert, by ``rule`` / ``boundary`` (default: the preset's own)."""
    rule = rule or preset.expert_rule
    boundary = preset.expert_boundary if boundary is None else boundary
    if rule not in EXPERT_RULES:
        raise TempoError(f"the {preset.name} preset names no switch between two experts; set the expert rule to one "
                         f"of {', '.join(EXPERT_RULES)} and its boundary")
    n = len(sigmas)
    if rule == "step":
        k = high_steps(n, boundary)
    else:
        level = [1000.0 * float(v) for v in sigmas] if rule == "timestep" else [float(v) for v in sigmas]
        k = sum(1 for v in level if v >= boundary)
    if not 0 <= k <= n:
        raise TempoError(f"the expert boundary {boundary:g} ({rule}) splits {n} steps at {k}")
    return k


def flow_sigma(t: float, shift: float) -> float:
    """A flow timestep (0..1000) as the sigma it is sampled at: sigma' = s u / (1 + (s - 1) u), u = t / 1000
    (ComfyUI's ModelSamplingDiscreteFlow and every Wan pipeline's shift)."""
    return shift_sigma(t / 1000.0, shift)


def describe_flow_preset(preset: Preset) -> str:
    """What a Wan preset samples at: its step counts as sigmas, the update, the expert switch."""
    counts = []
    for n, ts in preset.published:
        counts.append(f"{n} step{'s' if n > 1 else ''} at sigma {', '.join(f'{flow_sigma(t, preset.shift):.4g}' for t in ts)}")
    text = f"{preset.name}: " + ("; ".join(counts) or "one step at sigma 1") + \
        (f" (t {', '.join(f'{t:g}' for t in preset.published[-1][1])}, shift {preset.shift:g})" if preset.shift != 1
         and preset.published else "") + f"; update {preset.renoise}; cfg {preset.cfg:g}"
    if preset.expert_rule:
        text += f"; two experts: {expert_rule_text(preset)} on the high-noise one"
    return text


def expert_rule_text(preset: Preset) -> str:
    """Which steps a preset's high-noise expert runs, in words ("-" for one model)."""
    b = preset.expert_boundary
    return {"step": f"the first {int(b)} steps", "timestep": f"steps at t >= {b:g}",
            "sigma": f"steps at sigma >= {b:g}"}.get(preset.expert_rule, "-")


def advance_generators(generator, shape, draws: int) -> None:
    """Move noise streams on by ``draws`` draws of ``shape`` (a run split between two models goes on
    with the noise the first part would have drawn next)."""
    like = torch.empty(0)
    for _ in range(draws):
        _draw(generator, shape, like)


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


@dataclass(frozen=True)
class Stepper:
    """What a step needs besides x and the two levels: the model's ``renoise(sigma, noise, x0)``, the noise
    ``generator``, TCD's ``eta``, and for the rules defined on the DDPM table ``timestep(sigma)`` and
    ``sigma_at(t)`` (sqrt(abar_t) = 1 / sqrt(1 + sigma^2))."""

    renoise: Callable
    generator: object = None
    eta: float = TCD_ETA
    timestep: Optional[Callable] = None
    sigma_at: Optional[Callable] = None

    def draw(self, x: torch.Tensor) -> torch.Tensor:
        return _draw(self.generator, x.shape, x)


# Each update rule is one function (x, x0 at sigma, the next level, whether it is the last step) -> x.
def _fresh(st: Stepper, x, x0, sigma, sigma_next, last):
    """x0 re-noised with fresh Gaussian noise (UFOGen, DMD2, LCM-style)."""
    return x0 if float(sigma_next) == 0.0 else st.renoise(sigma_next, st.draw(x), x0)


def _deterministic(st: Stepper, x, x0, sigma, sigma_next, last):
    """The noise the step implies, eps = (x - renoise(sigma, 0, x0)) / sigma, kept (Euler / DDIM: APT,
    SeedVR, SDXL-Lightning, Hyper-SD's DDIM)."""
    if float(sigma_next) == 0.0:
        return x0
    return st.renoise(sigma_next, (x - st.renoise(sigma, torch.zeros_like(x), x0)) / sigma, x0)


def _lcm(st: Stepper, x, x0, sigma, sigma_next, last):
    """LCMScheduler's step: denoised = c_out * x0 + c_skip * x_t (x_t = sqrt(abar_t) x, the scheduler's own
    sample), then fresh noise; the last step returns denoised."""
    c_skip, c_out = lcm_scalings(float(st.timestep(sigma)))
    x0 = c_out * x0 + c_skip * x / (1.0 + float(sigma) ** 2) ** 0.5
    return x0 if last or float(sigma_next) == 0.0 else st.renoise(sigma_next, st.draw(x), x0)


def _tcd(st: Stepper, x, x0, sigma, sigma_next, last):
    """TCDScheduler's step with eta: deterministic to s = floor((1 - eta) * t'), then fresh noise from s up to
    t' (variance sigma'^2 - sigma_s^2); the last step lands at s = 0, the table's sigma at t = 0, no noise."""
    t_next = 0.0 if float(sigma_next) == 0.0 else float(st.timestep(sigma_next))
    sigma_s = st.sigma_at(math.floor((1 - st.eta) * t_next))
    x = x0 + sigma_s * (x - x0) / sigma
    if st.eta > 0 and not last:
        x = x + (float(sigma_next) ** 2 - float(sigma_s) ** 2) ** 0.5 * st.draw(x)
    return x


def _ancestral(st: Stepper, x, x0, sigma, sigma_next, last):
    """EulerAncestralDiscreteScheduler's step (sigma_up / sigma_down), a draw every step."""
    s, s_next = float(sigma), float(sigma_next)
    up = (s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2) ** 0.5
    down = (s_next ** 2 - up ** 2) ** 0.5
    return x + (x - x0) / sigma * (down - s) + st.draw(x) * up


# The update rules (RENOISE_MODES), one function each; adding a rule is one function and one row here.
STEPS = {"fresh": _fresh, "deterministic": _deterministic, "lcm": _lcm, "tcd": _tcd, "ancestral": _ancestral}
TABLE_RULES = ("lcm", "tcd")  # defined on the DDPM timestep table: need timestep() and sigma_at()


def sample_onestep(denoise: Callable, x: torch.Tensor, sigmas: torch.Tensor, renoise: Callable,
                   mode: str = "fresh", generator=None, callback: Optional[Callable] = None,
                   eta: float = TCD_ETA, timestep: Optional[Callable] = None,
                   sigma_at: Optional[Callable] = None) -> torch.Tensor:
    """Run the one-step family rule over ``sigmas`` (the last one is normally 0): each step predicts
    x0 = denoise(x, sigma) and moves to the next level by the rule ``mode`` (STEPS). ``generator``: a
    torch.Generator, or one per image (:func:`batch_generators`). ``callback(i, x0, x)`` sees every step.

    A run that ends on the DDPM table's own lowest level rather than at sigma 0 (TCD always; DDIM where the
    scheduler's set_alpha_to_one is false, as SD's configs set it) returns what diffusers' scheduler does
    there: the sample sqrt(abar) (x0 + sigma eps) (diffusers scheduling_tcd.py and scheduling_ddim.py
    step(): prev_sample = sqrt(alpha_prod_t_prev) * x0 + sqrt(1 - alpha_prod_t_prev) * eps), not the
    k-diffusion x0 + sigma eps ComfyUI keeps elsewhere."""
    if mode not in STEPS:
        raise TempoError(f"re-noise mode '{mode}' is not one of {', '.join(RENOISE_MODES)}")
    if mode in TABLE_RULES and (timestep is None or sigma_at is None):
        raise TempoError(f"the {mode} update needs a discrete (DDPM) model: its steps are defined on the timestep table")
    if mode == "tcd" and not 0.0 <= eta <= 1.0:
        raise TempoError(f"eta {eta} is outside [0, 1]: 0 is deterministic (DDIM), 1 fully stochastic")
    stepper, step = Stepper(renoise, generator, eta, timestep, sigma_at), STEPS[mode]
    n = len(sigmas) - 1
    for i in range(n):
        x0 = denoise(x, sigmas[i])
        if callback is not None:
            callback(i, x0, x)
        x = step(stepper, x, x0, sigmas[i], sigmas[i + 1], i == n - 1)
    landed = 0.0  # where the last step put x: a level of the table (TCD, DDIM to t = 0) or sigma 0
    if sigma_at is not None and n and mode in ("tcd", "deterministic"):
        landed = float(sigma_at(0) if mode == "tcd" else sigmas[-1])
    return x / (1.0 + landed ** 2) ** 0.5 if landed > 0 else x

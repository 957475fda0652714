"""What a causal video run makes, from the sampler's settings: the Wan frame arithmetic, valid lengths,
where each block starts, the attention window in the authors' terms, the schedule (every preset field
read), and the resulting :class:`samplers.causal.VideoSpec`. Plain Python (the spec's numbers only; no
tensor is touched), so every rule here is tested alone (tests/test_causal_plan_unit.py) and the
ComfyUI node only turns widgets into :class:`CausalSettings` and calls :func:`plan`.

Frames: the Wan VAE turns latent frame 0 into video frame 0 and each later latent frame j into frames
4j-3 .. 4j, so a clip of n latent frames is 1 + 4(n-1) frames; a continuation (its first latent frame
follows an earlier clip) gives 4 frames per latent frame; image-to-video's frame 0 is the start image
(its latent is the prefix) and every generated latent frame gives 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import TempoError
from . import causal

MODES = ("text", "image", "continue", "video")  # text-to-video, image-to-video, continuation, video-to-video
CACHE_MODES = ("preset", "window", "full")
LEGACY_CACHE = "rolling"  # workflows saved before the authors' terms: (sink_frames, window_frames), block not counted
SWITCHES = ("re-cache", "plain")
FRAMES_PER_BLOCK = ("auto", "1", "3")
MAX_LENGTH = 100000  # the length input's maximum
DEFAULT_STRENGTH = 0.7  # StreamDiffusionV2's default noise_scale (streamv2v/inference_wo_batch.py, --noise_scale)


class PlanError(TempoError):
    """Settings that cannot make a video; the message names the setting and the fix."""


@dataclass(frozen=True)
class CausalSettings:
    """The sampler's own settings (its widgets), as one object."""

    width: int = 832
    height: int = 480
    length: int = 81
    seed: int = 0
    schedule: str = "Self Forcing"
    custom_timesteps: str = ", ".join(str(t) for t in causal.CAUSAL_PRESETS["Self Forcing"].timesteps)
    shift: float = causal.CAUSAL_PRESETS["Self Forcing"].shift
    frames_per_block: str = "auto"
    cache: str = "preset"
    sink_size: int = causal.CAUSAL_PRESETS["Self Forcing"].sink_size
    local_attn_size: int = causal.CAUSAL_PRESETS["Self Forcing"].local_attn_size
    context_frames: int = 3
    switch: str = "re-cache"
    strength: float = DEFAULT_STRENGTH
    context_noise: float = 0.0
    legacy: Optional[tuple] = None  # (sink_frames, window_frames) of a workflow saved with the old cache inputs


def check_choice(value, options, name: str):
    if value not in options:
        raise PlanError(f"{name} '{value}' is not one of {', '.join(map(str, options))}")
    return value


def check_settings(s: CausalSettings) -> None:
    """What is wrong with the settings alone, whatever the model: sizes, choices, the cache window, the
    schedule's timesteps. Raised as the editor queues the job (the node's validate_inputs)."""
    if s.width % 16 or s.height % 16:
        raise PlanError(f"width and height must be multiples of 16 (the VAE's 8 times the patch's 2); got "
                        f"{s.width}x{s.height}: try {s.width // 16 * 16}x{s.height // 16 * 16}")
    check_choice(s.schedule, [*causal.CAUSAL_PRESET_NAMES, "custom"], "schedule")
    check_choice(s.cache, (*CACHE_MODES, LEGACY_CACHE), "cache")
    check_choice(s.switch, SWITCHES, "switch")
    check_choice(s.frames_per_block, FRAMES_PER_BLOCK, "frames_per_block")
    if not 0 <= s.context_noise <= 1000:
        raise PlanError(f"context_noise {s.context_noise} is outside [0, 1000] (0, every published setting, "
                        "remembers each block as it was made)")
    if s.schedule == "custom":
        causal.schedule_sigmas(causal.parse_timesteps(s.custom_timesteps), s.shift)
    fpb = block_frames(s, None)
    window(s, fpb)
    if s.length > MAX_LENGTH:
        raise PlanError(f"length {s.length} is over {MAX_LENGTH} frames")


def preset_of(s: CausalSettings) -> causal.CausalPreset:
    """The published preset the settings name; 'custom' takes Self Forcing's block size and window."""
    return causal.CAUSAL_PRESETS.get(s.schedule, causal.CAUSAL_PRESETS["Self Forcing"])


def block_frames(s: CausalSettings, stated: Optional[int], file: str = "the checkpoint") -> int:
    """Latent frames per block: the setting, or (auto) what the file says, else the preset's; a setting
    that contradicts the file is refused."""
    fpb = (stated or preset_of(s).frames_per_block) if s.frames_per_block == "auto" else int(s.frames_per_block)
    if stated and fpb != stated:
        raise PlanError(f"frames_per_block is {fpb} but {file} was trained with {stated} frame(s) per block; set "
                        f"frames_per_block to {stated} (or auto)")
    return fpb


def frames_of(latent_frames: int, mode: str) -> int:
    """Video frames a run of ``latent_frames`` new latent frames makes (see the module's note)."""
    if mode in ("continue", "image"):
        return 4 * latent_frames + (1 if mode == "image" else 0)
    return 1 + 4 * (latent_frames - 1)


def valid_lengths(fpb: int, mode: str, near: int) -> str:
    """The two valid lengths nearest ``near`` (any length up to the input's maximum): whole blocks of
    ``fpb`` latent frames are base + step * n frames, n >= 1."""
    step = 4 * fpb
    base = {"continue": 0, "image": 1}.get(mode, -3)  # frames_of(n) = base + 4n
    top = (MAX_LENGTH - base) // step
    n = (near - base) / step
    picks = sorted({min(max(k, 1), top) for k in (int(n // 1), int(n // 1) + 1)})
    if len(picks) == 1:
        picks.append(min(max(picks[0] + (1 if picks[0] < top else -1), 1), top))
    return " or ".join(str(base + step * k) for k in sorted(set(picks)))


def latent_frames_of(length: int, mode: str, fpb: int) -> int:
    """New latent frames for a video of ``length`` frames, whole blocks of ``fpb`` (refused otherwise, with
    the nearest lengths that work)."""
    if mode == "continue":
        if length % 4 or (length // 4) % fpb:
            raise PlanError(f"a continuation adds 4 frames per latent frame in whole blocks of {fpb}: length {length} "
                            f"does not fit; try {valid_lengths(fpb, mode, length)}")
        return length // 4
    if (length - 1) % 4:
        raise PlanError(f"length {length} is not 1 + 4k (the Wan VAE makes 1 + 4k frames); try "
                        f"{valid_lengths(fpb, mode, length)}")
    latent = (length - 1) // 4 + (0 if mode == "image" else 1)
    if latent % fpb or latent == 0:
        raise PlanError(f"length {length} gives {latent} latent frame(s) to generate, not whole blocks of {fpb}; try "
                        f"{valid_lengths(fpb, mode, length)}")
    return latent


def input_latent_frames(frames: int, fpb: int, counted: str = "frame") -> int:
    """Video-to-video: latent frames of an input of ``frames`` frames (or latent frames, ``counted`` "latent"),
    trimmed to whole blocks; the output is as long."""
    n = frames if counted == "latent" else 1 + (frames - 1) // 4
    if n < fpb:
        need = f"{1 + 4 * (fpb - 1)} frames" if counted != "latent" else f"{fpb} latent frames"
        what = f"{frames} latent frame(s)" if counted == "latent" else f"{frames} frame(s)"
        raise PlanError(f"the input video has {what}, too few for one block of {fpb} latent frames; it needs at "
                        f"least {need}")
    return n // fpb * fpb


def block_starts(mode: str, fpb: int, num_blocks: int) -> list[int]:
    """Each block's first frame in the output video: the frames of the blocks before it."""
    return [frames_of(b * fpb, mode) if b else (1 if mode == "image" else 0) for b in range(num_blocks)]


def window(s: CausalSettings, fpb: int) -> tuple[int, Optional[int], str]:
    """(sink, earlier frames the cache keeps or None for every frame, a note for the node) from the cache
    setting: the preset's published window, the two settings in the authors' terms (local_attn_size counts
    the block and the sink), every frame, or an old workflow's 'rolling' inputs run as they were."""
    if s.cache == "full":
        return 0, None, ""
    if s.cache == LEGACY_CACHE:
        sink, kept = s.legacy if s.legacy is not None else (s.sink_size, s.local_attn_size)
        if kept < fpb:
            raise PlanError(f"window_frames {kept} is smaller than one block ({fpb}); use at least {fpb}")
        note = (f"this workflow uses the old cache inputs (cache 'rolling', sink_frames {sink}, window_frames {kept}, "
                f"the block not counted); it runs as before, which in the authors' terms is cache 'window' with "
                f"sink_size {sink} and local_attn_size {sink + kept + fpb}: set those (or cache 'preset') and save "
                "the workflow")
        return sink, kept, note
    sink, local = (preset_of(s).sink_size, preset_of(s).local_attn_size) if s.cache == "preset" \
        else (s.sink_size, s.local_attn_size)
    try:
        return sink, causal.window_in_cache_terms(local, sink, fpb), ""
    except TempoError as e:
        raise PlanError(f"{'the preset' if s.cache == 'preset' else 'local_attn_size'}: {e}") from None


def sigmas(s: CausalSettings, mode: str) -> tuple[tuple, tuple]:
    """(each block's sigmas, the first block's own or ()) from the schedule: the preset's denoising list,
    shift and first-block list (a continuation's first block is not the video's first), or the custom list;
    video-to-video starts them at the strength."""
    p = preset_of(s)
    if s.schedule == "custom":
        steps, first, shift = causal.parse_timesteps(s.custom_timesteps), (), s.shift
    else:
        steps, shift = p.timesteps, p.shift
        first = p.first_timesteps if mode != "continue" else ()
    try:
        each = causal.schedule_sigmas(steps, shift)
        first_sigmas = causal.schedule_sigmas(first, shift) if first else []
        if mode == "video":
            each = causal.strength_sigmas(each, s.strength)
            first_sigmas = causal.strength_sigmas(first_sigmas, s.strength) if first_sigmas else []
    except TempoError as e:
        raise PlanError(f"{'strength' if 'strength' in str(e) else 'custom_timesteps'}: {e}") from None
    return tuple(each), tuple(first_sigmas)


def context_noise(s: CausalSettings) -> float:
    """The timestep each finished block is remembered at: the setting where it is not 0, else the preset's
    (0 in every published config)."""
    return float(s.context_noise) if s.context_noise else float(preset_of(s).context_noise)


@dataclass(frozen=True)
class Plan:
    """A checked run: the spec, the mode, where blocks start, the output's frames, and notes for the node."""

    spec: causal.VideoSpec
    mode: str
    block_starts: tuple
    total_frames: int
    notes: tuple


def plan(s: CausalSettings, mode: str, stated_fpb: Optional[int] = None, file: str = "the checkpoint",
         input_frames: Optional[int] = None, input_counted: str = "frame") -> Plan:
    """Every rule of a causal run: ``mode`` one of MODES; ``stated_fpb``: what the model file says;
    ``input_frames``: video-to-video's input length (its frames, or latent frames with ``input_counted``
    "latent"; the output is as long, ``length`` is not used)."""
    check_choice(mode, MODES, "mode")
    check_settings(s)
    fpb = block_frames(s, stated_fpb, file)
    latent = input_latent_frames(input_frames, fpb, input_counted) if mode == "video" \
        else latent_frames_of(s.length, mode, fpb)
    sink, kept, note = window(s, fpb)
    each, first = sigmas(s, mode)
    notes = [note] if note else []
    p = preset_of(s)
    if s.schedule != "custom" and fpb != p.frames_per_block:
        fits = [n for n, q in causal.CAUSAL_PRESETS.items() if q.frames_per_block == fpb]
        notes.append(f"the {s.schedule} preset was published with {p.frames_per_block} frame(s) per block and this run "
                     f"makes {fpb}: its denoising list and window are used as they are; the presets published with "
                     f"{fpb}: {', '.join(fits)}")
    spec = causal.VideoSpec(s.height // 8, s.width // 8, latent, fpb, each, s.seed, sink, kept,
                            first_sigmas=first, context_noise=context_noise(s))
    return Plan(spec, mode, tuple(block_starts(mode, fpb, latent // fpb)), frames_of(latent, mode), tuple(notes))

"""A prompt timeline for causal video: which text conditioning plays from which frame.

Plain torch. Times are kept as output video frames (what the artist sees); the sampler places
each switch on the first block that starts at or after it (LongLive switches the same way:
NVlabs/LongLive pipeline/interactive_causal_inference.py:188-191) and says where it landed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import TempoError

UNITS = ("seconds", "frames")


@dataclass(frozen=True)
class Entry:
    frame: int          # output frame the prompt is asked to start at
    cond: torch.Tensor  # text embedding [1, L, dim]
    label: str          # what the artist wrote (or "conditioning 2")
    asked: str          # the requested time as written, with its unit


@dataclass(frozen=True)
class PromptTimeline:
    entries: tuple
    fps: float
    encoder: object = None  # the text encoder that made it, when one did (the live page encodes with it)

    def add(self, entry: Entry) -> "PromptTimeline":
        if self.entries and entry.frame <= self.entries[-1].frame:
            last = self.entries[-1]
            raise TempoError(f"the prompt at {entry.asked} ('{short(entry.label)}') does not come after the one "
                             f"before it at {last.asked} ('{short(last.label)}'); give each prompt a later start "
                             "time than the one before")
        if not self.entries and entry.frame != 0:
            raise TempoError(f"the timeline's first prompt starts at {entry.asked}; the first prompt must start at 0 "
                             "(it plays from the first frame)")
        return PromptTimeline(self.entries + (entry,), self.fps, self.encoder)


def short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 3] + "..."


def to_frame(value: float, units: str, fps: float) -> int:
    """A start time in ``units`` as an output frame index (seconds x fps, rounded)."""
    if units not in UNITS:
        raise TempoError(f"units '{units}' is not one of {', '.join(UNITS)}")
    if not math.isfinite(value) or value < 0:
        raise TempoError(f"start time {value} is not a time; use 0 or more")
    if not fps > 0:
        raise TempoError(f"fps {fps} must be above 0 (Wan 2.1 plays at 16)")
    return round(value * fps) if units == "seconds" else round(value)


def parse_lines(text: str) -> list[tuple[int, float, str]]:
    """'time: prompt' lines -> (line number, time, prompt). Blank lines and '#' comments are skipped."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        time, sep, prompt = line.partition(":")
        if not sep:
            raise TempoError(f"line {n} '{short(line)}' has no start time; write each line as 'time: prompt', "
                             "for example '10: the fox jumps'")
        word = time.strip().removesuffix("s").strip()
        try:
            value = float(word)
        except ValueError:
            raise TempoError(f"line {n}: the start time '{short(time.strip())}' is not a number; write each line as "
                             "'time: prompt', for example '10: the fox jumps'") from None
        if not math.isfinite(value) or value < 0:
            raise TempoError(f"line {n}: the start time '{time.strip()}' must be 0 or more")
        if not prompt.strip():
            raise TempoError(f"line {n}: the prompt after '{time.strip()}:' is empty; write what should play from then")
        out.append((n, value, prompt.strip()))
    if not out:
        raise TempoError("the timeline is empty; write one 'time: prompt' line per prompt, the first at 0")
    return out


def describe(frame: int, fps: float) -> str:
    return f"frame {frame} ({frame / fps:.2f} s)"


def place(timeline: PromptTimeline, block_starts: list[int], total_frames: int) -> tuple:
    """(first conditioning, {block: conditioning}, report lines). ``block_starts``: each block's
    first output frame; a switch lands on the first block starting at or after its frame."""
    entries = timeline.entries
    if not entries:
        raise TempoError("the timeline has no prompts")
    switches, report = {}, [f"'{short(entries[0].label)}' from {describe(0, timeline.fps)}"]
    for e in entries[1:]:
        if e.frame >= total_frames:
            raise TempoError(f"the prompt at {e.asked} ('{short(e.label)}') starts after the video ends "
                             f"({describe(total_frames - 1, timeline.fps)} is the last frame); make the video longer "
                             "or move the prompt earlier")
        blk = next((b for b, s in enumerate(block_starts) if s >= e.frame), None)
        if blk is None:
            raise TempoError(f"the prompt at {e.asked} ('{short(e.label)}') falls inside the last block, which starts "
                             f"at {describe(block_starts[-1], timeline.fps)}; start it by then or make the video longer")
        if blk in switches:
            raise TempoError(f"the prompt at {e.asked} ('{short(e.label)}') lands on the same block as the one before "
                             f"it ({describe(block_starts[blk], timeline.fps)}); a block is "
                             f"{block_starts[-1] - block_starts[-2] if len(block_starts) > 1 else 'the whole video in'} frames: space "
                             "the prompts further apart")
        switches[blk] = e.cond
        report.append(f"'{short(e.label)}' asked at {e.asked}, starts at block {blk + 1}, "
                      f"{describe(block_starts[blk], timeline.fps)}")
    return entries[0].cond, switches, report

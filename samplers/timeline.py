"""A prompt timeline for causal video: which text conditioning plays from which frame.

Plain torch. Times are kept as output video frames (what the artist sees); the sampler places
each switch on the first block that starts at or after it (LongLive switches the same way:
NVlabs/LongLive pipeline/interactive_causal_inference.py:188-191) and says where it landed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from ..errors import TempoError
from .causal_plan import MAX_LENGTH

UNITS = ("seconds", "frames")


@dataclass(frozen=True)
class Entry:
    frame: int                     # output frame the prompt is asked to start at
    cond: Optional[torch.Tensor]   # text embedding [1, L, dim]; None: ``text`` is encoded when the video is placed
    label: str                     # what the artist wrote (or "conditioning 2")
    asked: str                     # the requested time as written, with its unit
    text: Optional[str] = None     # the prompt to encode, for an entry typed as text


@dataclass(frozen=True)
class PromptTimeline:
    entries: tuple
    fps: float
    encoder: object = None  # the text encoder for typed prompts (the live page encodes with it too)
    encoded: dict = field(default_factory=dict, compare=False, repr=False)  # text -> embedding, kept between runs

    def cond_of(self, entry: Entry, encode: Optional[Callable[[str], torch.Tensor]]) -> torch.Tensor:
        """The entry's embedding: its own, or its text encoded once by ``encode``."""
        if entry.cond is not None:
            return entry.cond
        if entry.text not in self.encoded:
            if encode is None:
                raise TempoError(f"the prompt at {entry.asked} ('{short(entry.label)}') has no text encoder; connect "
                                 "the Wan text encoder (Load CLIP, type wan) to the timeline node")
            self.encoded[entry.text] = encode(entry.text)
        return self.encoded[entry.text]

    def add(self, entry: Entry) -> "PromptTimeline":
        if self.entries and entry.frame <= self.entries[-1].frame:
            last = self.entries[-1]
            raise TempoError(f"the prompt at {entry.asked} ('{short(entry.label)}') does not come after the one "
                             f"before it at {last.asked} ('{short(last.label)}'); give each prompt a later start "
                             "time than the one before")
        if not self.entries and entry.frame != 0:
            raise TempoError(f"the timeline's first prompt starts at {entry.asked}; the first prompt must start at 0 "
                             "(it plays from the first frame)")
        return PromptTimeline(self.entries + (entry,), self.fps, self.encoder, self.encoded)


def short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 3] + "..."


def to_frame(value: float, units: str, fps: float, asked: Optional[str] = None) -> int:
    """A start time in ``units`` as an output frame index (seconds x fps, rounded). No start may lie
    past the longest video the sampler makes (MAX_LENGTH frames)."""
    if units not in UNITS:
        raise TempoError(f"units '{units}' is not one of {', '.join(UNITS)}")
    if not fps > 0 or not math.isfinite(fps):
        raise TempoError(f"fps {fps} must be above 0 (Wan 2.1 plays at 16)")
    asked = asked or f"{value:g}"
    if not math.isfinite(value) or value < 0:
        raise TempoError(f"the start time '{asked}' is not a time; use 0 or more")
    frame = value * fps if units == "seconds" else value
    if frame >= MAX_LENGTH:
        raise TempoError(f"the start time '{asked}' is past the longest video the sampler makes ({MAX_LENGTH} "
                         f"frames, {MAX_LENGTH / fps:,.0f} s at {fps:g} fps); use a time inside the video")
    return round(frame)


@dataclass(frozen=True)
class Line:
    number: int
    value: float   # in the node's units, or seconds when ``clock``
    clock: bool    # written as minutes:seconds (always clock time, whatever the units)
    written: str   # the time as written
    prompt: str


_CLOCK = re.compile(r"(\d+):(\d{1,2}(?:\.\d*)?)\s*:(.*)$")   # 1:30: prompt
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")                 # 10, 2.5, .5 (no exponent, no sign)
_EXAMPLE = "write each line as 'time: prompt', for example '10: the fox jumps' or '1:30: the fox jumps'"


def parse_lines(text: str) -> list[Line]:
    """'time: prompt' lines, the time in the node's units (``10``, ``2.5s``) or as minutes:seconds
    (``1:30``). Blank lines and '#' comments are skipped; a line that reads two ways is refused."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        clock = _CLOCK.match(line)
        if clock:
            minutes, seconds, prompt = clock.groups()
            if float(seconds) >= 60:
                raise TempoError(f"line {n}: '{minutes}:{seconds}' has {seconds} seconds; minutes:seconds takes 0 to "
                                 "59 seconds")
            written, value = f"{minutes}:{seconds}", int(minutes) * 60 + float(seconds)
        else:
            time, sep, prompt = line.partition(":")
            if not sep:
                raise TempoError(f"line {n} '{short(line)}' has no start time; {_EXAMPLE}")
            written = time.strip()
            if re.match(r"\d", prompt) and _NUMBER.fullmatch(written):
                raise TempoError(f"line {n} '{short(line)}' reads two ways: {written} with the prompt "
                                 f"'{short(prompt)}', or {written}:{prompt.split()[0]} (minutes:seconds) with no ':' "
                                 f"before the prompt; write '{written}: {short(prompt)}' or "
                                 f"'{written}:{prompt.split()[0]}: ...'")
            word = written.removesuffix("s").strip()
            if not _NUMBER.fullmatch(word):
                raise TempoError(f"line {n}: the start time '{short(written)}' is not a number; {_EXAMPLE}")
            value = float(word)
        if not prompt.strip():
            raise TempoError(f"line {n}: the prompt after '{written}:' is empty; write what should play from then")
        out.append(Line(n, value, bool(clock), written, prompt.strip()))
    if not out:
        raise TempoError("the timeline is empty; write one 'time: prompt' line per prompt, the first at 0")
    return out


def describe(frame: int, fps: float) -> str:
    return f"frame {frame} ({frame / fps:.2f} s)"


def place(timeline: PromptTimeline, block_starts: list[int], total_frames: int,
          encode: Optional[Callable[[str], torch.Tensor]] = None) -> tuple:
    """(first conditioning, {block: conditioning}, report lines). ``block_starts``: each block's
    first output frame; a switch lands on the first block starting at or after its frame. Every
    placement is checked before any typed prompt is encoded (``encode(text)``, once per text)."""
    entries = timeline.entries
    if not entries:
        raise TempoError("the timeline has no prompts")
    if len(entries) > len(block_starts):
        raise TempoError(f"the timeline has {len(entries)} prompts but the video has {len(block_starts)} blocks, and "
                         "each prompt needs a block of its own; make the video longer or use fewer prompts")
    placed, report = {}, [f"'{short(entries[0].label)}' from {describe(0, timeline.fps)}"]
    for e in entries[1:]:
        if e.frame >= total_frames:
            raise TempoError(f"the prompt at {e.asked} ('{short(e.label)}') starts after the video ends "
                             f"({describe(total_frames - 1, timeline.fps)} is the last frame); make the video longer "
                             "or move the prompt earlier")
        blk = next((b for b, s in enumerate(block_starts) if s >= e.frame), None)
        if blk is None:
            raise TempoError(f"the prompt at {e.asked} ('{short(e.label)}') falls inside the last block, which starts "
                             f"at {describe(block_starts[-1], timeline.fps)}; start it by then or make the video longer")
        if blk in placed:
            size = block_starts[-1] - block_starts[-2] if len(block_starts) > 1 else "the whole video in"
            raise TempoError(f"the prompt at {e.asked} ('{short(e.label)}') lands on the same block as the one before "
                             f"it ({describe(block_starts[blk], timeline.fps)}); a block is {size} frames: space the "
                             "prompts further apart")
        placed[blk] = e
        report.append(f"'{short(e.label)}' asked at {e.asked}, starts at block {blk + 1}, "
                      f"{describe(block_starts[blk], timeline.fps)}")
    first = timeline.cond_of(entries[0], encode)
    return first, {blk: timeline.cond_of(e, encode) for blk, e in placed.items()}, report

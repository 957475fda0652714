"""Prompt timeline nodes: prompts over time for the causal sampler, from text with the native text
encoder, or from CONDITIONING (CLIP Text Encode, Tempo Load Conditioning) chained node by node."""

from __future__ import annotations

from ..samplers import timeline as tl
from .causal_video import Timeline
from .common import CAUSAL_CATEGORY as SUBCAT
from .common import TempoInputError, check_choice
from .compat import io, ui

DEFAULT_FPS = 16.0  # Wan 2.1's frame rate

_UNITS_TIP = "seconds (at fps) or frames of the output video."
_FPS_TIP = "The video's frame rate, to turn seconds into frames (Wan 2.1: 16). Use the fps of the MP4 node."


def _cond_tensor(conditioning, what: str):
    try:
        c = conditioning[0][0]
        ok = c.ndim == 3
    except (TypeError, IndexError, AttributeError):
        ok = False
    if not ok:
        raise TempoInputError(f"{what} is not text conditioning; connect CLIP Text Encode (Wan text encoder) or "
                              "Tempo Load Conditioning")
    return c[:1]


def _base(timeline, fps):
    if timeline is None:
        return tl.PromptTimeline((), fps)
    if not isinstance(timeline, tl.PromptTimeline):
        raise TempoInputError("timeline is not a prompt timeline; connect 'Tempo Prompt Timeline'")
    if timeline.fps != fps:
        raise TempoInputError(f"fps {fps:g} differs from the timeline's ({timeline.fps:g}); use the same fps in every "
                              "timeline node")
    return timeline


def _summary(t: tl.PromptTimeline) -> str:
    return "\n".join(f"{e.asked}: {tl.short(e.label, 60)}" for e in t.entries)


def _time_inputs() -> list:
    """The units and fps inputs every timeline node shares: how its start times are read."""
    return [io.Combo.Input("units", options=list(tl.UNITS), default="seconds",
                           tooltip="Whether start times are in seconds (at fps) or in frames of the output video."),
            io.Float.Input("fps", default=DEFAULT_FPS, min=1.0, max=120.0, step=1.0,
                           tooltip="The video's frame rate, to turn seconds into frames: 16 for Wan 2.1. Use the "
                                   "MP4 node's fps, the same in every timeline node.")]


class PromptTimeline(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoPromptTimeline",
            display_name="Tempo Prompt Timeline",
            category=SUBCAT,
            description="Prompts that change over time, for the timeline input of 'Tempo Causal Video Sampler': one "
                        "'time: prompt' line each, the first at 0. The motion carries on across each change.",
            inputs=[
                io.Clip.Input("clip", tooltip="The Wan text encoder (Load CLIP, type wan)."),
                io.String.Input("text", multiline=True,
                                default="0: a red fox trots through fresh snow in a pine forest\n"
                                        "10: the fox stops and looks up at falling snow\n"
                                        "20: the fox runs off between the trees, golden hour",
                                tooltip="One 'start: prompt' line per prompt, in time order, the first at 0 (e.g. "
                                        "'10: the fox stops', or '1:30: the fox stops' for minutes:seconds). Blank "
                                        "lines and # lines are skipped."),
                *_time_inputs(),
                Timeline.Input("timeline", optional=True,
                               tooltip="An earlier timeline to extend (its prompts come first)."),
            ],
            outputs=[Timeline.Output(display_name="timeline", tooltip="Into the causal sampler's timeline input.")],
        )

    @classmethod
    def validate_inputs(cls, text=None, units=None, fps=None, **_):
        """The lines are read as the job is queued (a linked text is read when the node runs)."""
        if not isinstance(text, str) or units not in tl.UNITS or not isinstance(fps, (int, float)):
            return True
        try:
            _entries(text, units, fps)
        except ValueError as e:
            return f"text: {e}"
        return True

    @classmethod
    def execute(cls, clip, text, units, fps, timeline=None) -> io.NodeOutput:
        check_choice(units, tl.UNITS, "units")
        if clip is None:
            raise TempoInputError("clip is empty; connect the Wan text encoder (Load CLIP, type wan)")
        t = _base(timeline, fps)
        t = tl.PromptTimeline(t.entries, t.fps, clip)
        try:
            for entry in _entries(text, units, fps):  # encoded by the sampler, once it has placed every prompt
                t = t.add(entry)
        except ValueError as e:
            raise TempoInputError(f"text: {e}") from None
        return io.NodeOutput(t, ui=ui.PreviewText(_summary(t)))


def _entries(text: str, units: str, fps: float) -> list:
    """The typed lines as timeline entries, their prompts not yet encoded."""
    out = []
    for line in tl.parse_lines(text):
        asked = line.written if line.clock else f"{line.value:g} {'s' if units == 'seconds' else 'frames'}"
        frame = tl.to_frame(line.value, "seconds" if line.clock else units, fps, asked=line.written)
        out.append(tl.Entry(frame, None, line.prompt, asked, text=line.prompt))
    return out


class PromptTimelineAdd(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoPromptTimelineAdd",
            display_name="Tempo Prompt Timeline Add",
            category=SUBCAT,
            description="Adds one prompt (CLIP Text Encode or Tempo Load Conditioning) to a prompt timeline at a "
                        "start time; chain one per prompt. The first one starts a timeline, at 0.",
            inputs=[
                io.Conditioning.Input("conditioning",
                                      tooltip="The prompt: CLIP Text Encode with the Wan text encoder, or Tempo Load "
                                              "Conditioning."),
                io.Float.Input("start", default=0.0, min=0.0, max=1e6, step=0.1,
                               tooltip="When this prompt starts, later than the one before; the first prompt of a "
                                       "timeline starts at 0."),
                *_time_inputs(),
                Timeline.Input("timeline", optional=True,
                               tooltip="The timeline so far (its prompts come first); leave empty to start one."),
                io.String.Input("label", default="", optional=True,
                                tooltip="A name for this prompt in the node's messages (e.g. its text)."),
            ],
            outputs=[Timeline.Output(display_name="timeline", tooltip="Into the next Add or the causal sampler.")],
        )

    @classmethod
    def execute(cls, conditioning, start, units, fps, timeline=None, label="") -> io.NodeOutput:
        check_choice(units, tl.UNITS, "units")
        t = _base(timeline, fps)
        name = label.strip() or f"prompt {len(t.entries) + 1}"
        try:
            t = t.add(tl.Entry(tl.to_frame(start, units, fps), _cond_tensor(conditioning, "conditioning"), name,
                               f"{start:g} {'s' if units == 'seconds' else 'frames'}"))
        except ValueError as e:
            raise TempoInputError(f"start: {e}") from None
        return io.NodeOutput(t, ui=ui.PreviewText(_summary(t)))


NODES = [PromptTimeline, PromptTimelineAdd]

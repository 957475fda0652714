"""Prompt timelines in plain torch: how typed times are read, what is refused before anything is
encoded, and that each typed prompt is encoded once, only after every prompt has its block."""

import pytest
import torch

from tempo_pack.errors import TempoError
from tempo_pack.samplers import timeline as tl
from tempo_pack.samplers.causal_plan import MAX_LENGTH


def lines(text):
    return [(x.value, x.clock, x.written, x.prompt) for x in tl.parse_lines(text)]


def test_times_in_the_nodes_units_and_as_minutes_seconds():
    assert lines("0: a\n2.5s: b\n1:30: c\n0:05.5: d\n10: 30 cats\n.5: e") == [
        (0.0, False, "0", "a"), (2.5, False, "2.5s", "b"), (90.0, True, "1:30", "c"), (5.5, True, "0:05.5", "d"),
        (10.0, False, "10", "30 cats"), (0.5, False, ".5", "e")]


@pytest.mark.parametrize("text,message", [
    ("0: a\n10:30 cats", r"line 2 '10:30 cats' reads two ways: 10 with the prompt '30 cats', or 10:30 \(minutes:"
                         r"seconds\) with no ':' before the prompt; write '10: 30 cats' or '10:30: \.\.\.'"),
    ("0: a\n1:75: b", "'1:75' has 75 seconds; minutes:seconds takes 0 to 59"),
    ("0: a\ninf: b", "the start time 'inf' is not a number"),
    ("0: a\nnan: b", "the start time 'nan' is not a number"),
    ("0: a\n1e308: b", "the start time '1e308' is not a number"),
    ("0: a\n-3: b", "the start time '-3' is not a number"),
    ("0: a\n1:30 b", "line 2 '1:30 b' reads two ways"),
])
def test_what_cannot_be_read_one_way_is_refused_with_the_line(text, message):
    with pytest.raises(TempoError, match=message):
        tl.parse_lines(text)


def test_a_start_past_the_longest_video_is_refused_not_overflowed():
    with pytest.raises(TempoError, match=f"past the longest video the sampler makes \\({MAX_LENGTH} frames"):
        tl.to_frame(1e300, "seconds", 16.0, asked="1e300")
    with pytest.raises(TempoError, match="not a time"):
        tl.to_frame(float("inf"), "frames", 16.0)
    assert tl.to_frame(MAX_LENGTH - 1, "frames", 16.0) == MAX_LENGTH - 1


def typed(n, fps=16.0):
    """A timeline of ``n`` typed prompts a second apart, none encoded yet."""
    t = tl.PromptTimeline((), fps, encoder="clip")
    for i in range(n):
        t = t.add(tl.Entry(tl.to_frame(i, "seconds", fps), None, f"p{i}", f"{i} s", text=f"p{i}"))
    return t


def test_prompts_are_encoded_once_and_only_after_every_one_has_its_block():
    calls = []

    def encode(text):
        calls.append(text)
        return torch.full((1, 2, 4), float(text[1:]))

    starts = list(range(0, 81, 12))  # 7 blocks of 12 frames
    t = typed(3)
    first, switches, report = tl.place(t, starts, 81, encode=encode)
    assert calls == ["p0", "p1", "p2"] and first[0, 0, 0] == 0 and sorted(switches) == [2, 3]
    assert report[1] == "'p1' asked at 1 s, starts at block 3, frame 24 (1.50 s)"
    tl.place(t, starts, 81, encode=encode)
    assert calls == ["p0", "p1", "p2"]  # a second run of the same timeline encodes nothing again
    calls.clear()
    with pytest.raises(TempoError, match="the timeline has 1000 prompts but the video has 7 blocks"):
        tl.place(typed(1000), starts, 81, encode=encode)
    with pytest.raises(TempoError, match="falls inside the last block"):
        tl.place(typed(6), starts, 81, encode=encode)
    late = typed(1).add(tl.Entry(96, None, "late", "6 s", text="late"))
    with pytest.raises(TempoError, match="the prompt at 6 s \\('late'\\) starts after the video ends"):
        tl.place(late, starts, 81, encode=encode)
    assert calls == []  # refused before a single prompt was encoded

"""The live page's stream registry (plain Python): what viewers get, what the page may ask."""

import pytest

from tempo_pack.errors import TempoError
from tempo_pack.live.streams import KEEP_BLOCKS, KEEP_FINISHED, LiveHub, parse_prompt_request


def stream(hub, **kw):
    args = dict(title="t", width=64, height=48, fps=16.0, total_blocks=10, saved=["a.safetensors"], can_encode=True)
    args.update(kw)
    return hub.open(**args)


def test_a_late_viewer_starts_from_the_newest_block_and_then_gets_every_new_one():
    hub = LiveHub()
    s = stream(hub)
    assert s.since(None) == []
    for i in range(3):
        s.publish(i, 2, [b"%d" % i] * 2)
    late = s.since(None)
    assert [b.index for b in late] == [2]
    s.publish(3, 2, [b"3", b"3"])
    s.publish(4, 2, None)  # nobody watching: counted, no frames kept
    assert [b.index for b in s.since(late[-1].seq)] == [3]
    info = s.info()
    assert (info["blocks_done"], info["frames_done"]) == (5, 10)


def test_frames_held_are_bounded_and_finished_streams_are_pruned():
    hub = LiveHub()
    s = stream(hub)
    for i in range(KEEP_BLOCKS * 3):
        s.publish(i, 1, [b"x"])
    assert len(s.since(0)) == KEEP_BLOCKS
    s.finish("finished", video="/somewhere/clip.mp4")
    assert len(s.since(0)) == KEEP_BLOCKS  # a viewer still gets the last blocks...
    stream(hub)
    assert s.since(0) == []  # ...until another stream starts
    for _ in range(KEEP_FINISHED + 5):
        stream(hub).finish("finished")
    stream(hub)
    assert len(hub.list()) <= KEEP_FINISHED + 2
    assert "video" in hub.list()[0] and "/somewhere" not in str(hub.list())  # no server path reaches a page


def test_stop_and_prompt_requests():
    hub = LiveHub()
    s = stream(hub)
    s.request_prompt("text", "one")
    s.request_prompt("text", "two")  # the newest request wins
    assert s.take_prompt() == ("text", "two") and s.take_prompt() is None
    s.request_stop()
    assert s.stop_requested and s.info()["state"] == "stopping"
    with pytest.raises(TempoError, match="the stream is stopping; a new prompt can only steer a running stream"):
        s.request_prompt("text", "three")


@pytest.mark.parametrize("body,message", [
    (None, 'either "text" .* or "saved"'),
    ([], 'either "text"'),
    ({"text": "a", "saved": "a.safetensors"}, 'either "text"'),
    ({"text": "a", "extra": 1}, 'either "text"'),
    ({"text": "   "}, '"text" must be a non-empty string'),
    ({"text": 5}, '"text" must be a non-empty string'),
    ({"text": "x" * 2001}, "the prompt is 2001 characters; at most 2000"),
    ({"saved": "../../etc/passwd"}, "unknown saved conditioning"),
])
def test_malformed_prompt_requests_are_refused_with_the_fix(body, message):
    s = stream(LiveHub())
    with pytest.raises(TempoError, match=message):
        parse_prompt_request(body, s)


def test_text_needs_a_text_encoder_and_saved_names_must_be_listed():
    s = stream(LiveHub(), can_encode=False)
    with pytest.raises(TempoError, match="no text encoder .* pick a saved conditioning"):
        parse_prompt_request({"text": "a fox"}, s)
    assert parse_prompt_request({"saved": "a.safetensors"}, s) == ("saved", "a.safetensors")
    assert parse_prompt_request({"text": " a fox "}, stream(LiveHub())) == ("text", "a fox")


def test_unknown_or_odd_ids_find_nothing():
    hub = LiveHub()
    stream(hub)
    for bad in ("../x", "", None, 5, "a" * 500):
        assert hub.get(bad) is None


def events(s):
    return [e["text"] for e in s.info()["events"]]


def test_every_accepted_prompt_request_is_told_what_became_of_it():
    """Replaced by a newer one before a block began, overtaken by a stop, or left when the stream ended:
    each is said on the page (taking one is said by the sampler, 'from block N')."""
    s = stream(LiveHub())
    s.request_prompt("text", "one")
    s.request_prompt("saved", "a.safetensors")
    assert events(s) == ["'one' was replaced by a newer request ('a.safetensors') before a block began"]
    assert s.take_prompt() == ("saved", "a.safetensors")
    s.request_prompt("text", "two")
    s.request_stop()
    assert events(s)[-1] == "'two' was not used: the stream was asked to stop, so no later block is made"
    assert s.take_prompt() is None
    ended = stream(LiveHub())
    ended.request_prompt("text", "three")
    ended.finish("finished")
    assert events(ended) == ["'three' was not used: the stream finished before another block began"]

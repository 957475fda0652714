"""The demo's ruler, checked on videos whose truth is known: the world drawn exactly, through the demo
codec (what the demo's VAE and TAEHV files compute), measured by demo/quality.py. A trained model's
video is judged by the same functions (tests/test_demo_quality.py), so they must read the truth right."""

from __future__ import annotations

import pytest
import torch

from tempo_pack.demo import quality, world

RIGHT, UP = "red square moving right", "green circle moving up"


def _through_codec(video):
    return world.codec_frames(world.codec_latents(video))


@pytest.mark.parametrize("prompt,expected", [(RIGHT, (8.0, 0.0)), (UP, (0.0, -8.0)),
                                             ("blue square moving left", (-8.0, 0.0))])
def test_a_shape_moves_8_pixels_a_latent_frame_the_way_its_prompt_says(prompt, expected):
    video = _through_codec(world.render([(0, prompt)], 33))
    steps = quality.path_steps(video)
    assert steps.shape == (8, 2)
    # latent frame 0 is frame 0 alone, latent frame k the mean of frames 4k-3..4k: the first step is 2.5
    # frames of motion (5 px), every later one 4 frames (8 px)
    want = torch.tensor([expected]).expand_as(steps).clone()
    want[0] *= 2.5 / 4
    torch.testing.assert_close(steps, want, atol=1.0, rtol=0)


def test_the_truth_has_no_seams_and_a_jump_would_show():
    video = _through_codec(world.render([(0, RIGHT)], 57))
    s = quality.seams(video)
    assert (s["boundary"] - 8).abs().max() < 1.0 and (s["inside"][1:] - 8).abs().max() < 1.0
    jumped = torch.cat([video[:9], torch.roll(video[9:], shifts=20, dims=2)])  # 20 px at a block boundary
    s = quality.seams(jumped)
    assert s["boundary"].max() > s["inside"].max() + 10
    s = quality.seams(jumped, truth=video)  # against the truth: the jump is the seam's error, nothing inside
    assert s["boundary_error"].max() > 15 and s["inside_error"].max() < 1.0


def test_a_prompt_switch_is_seen_in_the_block_it_lands_in():
    video = _through_codec(world.render([(0, RIGHT), (25, UP)], 57))  # frame 25: latent frame 7, block 2
    assert quality.colors_by_block(video) == ["red", "red", "green", "green", "green"]
    assert quality.color_error(video[:1], "red").item() < 0.05


def test_size_and_colour_read_the_same_wherever_the_shape_is():
    video = quality.per_latent_frame(_through_codec(world.render([(0, RIGHT)], 477)))
    size = quality.blob_size(video)[1:]  # latent frame 0 is one frame, unblurred by motion
    assert size.max() - size.min() <= 0.1 * size.mean(), size
    assert quality.color_error(video, "red").max() < 0.1


def test_the_shape_area_tells_a_square_from_a_circle_through_the_codec():
    for prompt, want in (("red square moving right", "square"), ("blue circle moving up", "circle")):
        video = _through_codec(world.render([(0, prompt)], 21, start=(37.0, 45.0)))
        area = quality.shape_area(quality.per_latent_frame(video), world.parse(prompt)[0])
        assert torch.allclose(area, torch.full_like(area, quality.SHAPE_AREAS[want]), rtol=0.01), area
        assert {quality.nearest_shape(float(a)) for a in area} == {want}



def test_the_causal_thumbnails_show_what_the_demo_model_made_and_the_others_do_not():
    """workflows/*.jpg (python tempo.py build-workflows --thumbnails): under the graph, the causal workflows
    the demo runs show a row of their demo frames, in their prompts' colours; no other card has one."""
    import os

    import numpy as np
    from PIL import Image

    from tempo_pack.client.local import PACK_ROOT
    from tempo_pack.demo import run as demo
    from tempo_pack.samplers import timeline

    shown = {}
    for name, overrides in demo.DEMO_WORKFLOWS:
        if "TempoPromptTimeline.text" in overrides:
            shown[name] = [line.prompt for line in timeline.parse_lines(overrides["TempoPromptTimeline.text"])]
        elif demo.made_by_the_trained_model(overrides):
            shown[name] = [overrides["CLIPTextEncode.text"]]
    assert len(shown) == 4
    for jpg in sorted(f for f in os.listdir(os.path.join(PACK_ROOT, "workflows")) if f.endswith(".jpg")):
        with Image.open(os.path.join(PACK_ROOT, "workflows", jpg)) as im:
            row = torch.from_numpy(np.array(im.convert("RGB"))[-120:]).float() / 255  # the frames' row
        seen = {c for c, rgb in world.COLORS.items() if ((row - torch.tensor(rgb)).norm(dim=-1) < 0.25).sum() > 300}
        assert seen == {world.parse(p)[0] for p in shown.get(jpg[:-4] + ".json", [])}, jpg

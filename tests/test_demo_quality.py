"""What the demo makes is a video: the trained demo model (``tempo.py train-demo``) run by the shipped causal
workflows through a real ComfyUI, its MP4s read back and measured against the demo world's own motion
(demo/scenes.py, demo/quality.py). Each bound is the README's quality table's figure with room for the
run-to-run spread of a CPU (threads change float sums), and each is far from what a broken run gives:
a still or lost shape has a step error of 8 px, a wrong colour an error near 1.
"""

import pytest

from tempo_pack.demo import quality, scenes, world
from tempo_pack.factory import checkpoints

pytestmark = pytest.mark.server


def test_a_red_square_moves_right_block_after_block_without_a_seam(client, tmp_path):
    video = scenes.text_to_video(client, str(tmp_path), "red square moving right", length=45)
    m = scenes.motion(video, "red square moving right")
    assert 6.0 <= m["step"][0] <= 10.0 and abs(m["step"][1]) <= 1.5, m       # the world: (8, 0) a latent frame
    assert m["seam_error"] <= max(m["inside_error"], 1.0) + 1.5, m           # no jump where blocks meet
    assert m["inside_error"] <= 4.0, m
    lat = quality.per_latent_frame(video)
    assert float(quality.color_error(lat, "red").max()) < 0.25
    area = quality.shape_area(lat, "red")
    assert float((area / 576 - 1).abs().max()) < 0.2, area.tolist()        # a 24x24 square: 576 px


def test_every_prompt_word_is_followed(client, tmp_path):
    """Colour, shape and direction each change what is made (a model that ignored its prompt fails)."""
    for prompt in ("blue circle moving up", "yellow square moving left", "green circle moving down"):
        video = scenes.text_to_video(client, str(tmp_path / prompt.replace(" ", "_")), prompt, length=21)
        colour, _, direction = world.parse(prompt)
        m = scenes.motion(video, prompt)
        dx, dy = world.DIRECTIONS[direction]
        assert abs(m["step"][0] - 8 * dx) <= 2.5 and abs(m["step"][1] - 8 * dy) <= 2.5, (prompt, m)
        lat = quality.per_latent_frame(video)
        assert {world.nearest_color(c) for c in world.blob_color(lat)} == {colour}, prompt
    # the shape word: a circle covers pi/4 of the square of the same size (452 px against 576 in the world)
    areas = {}
    for shape in ("square", "circle"):
        video = scenes.text_to_video(client, str(tmp_path / shape), f"blue {shape} moving up", length=21)
        areas[shape] = float(quality.shape_area(quality.per_latent_frame(video)[1:], "blue").mean())
    assert areas["circle"] < 0.92 * areas["square"], areas


def test_a_30_second_rolling_video_stays_on_its_prompt(client, tmp_path):
    video = scenes.rolling(client, str(tmp_path), "red square moving right", seconds=30)
    assert video.shape[0] == scenes.length_of(30)
    d = scenes.drift(video, "red")
    assert d["color_end"] <= d["color_start"] + 0.1, d
    assert abs(d["area_end"] - d["area_start"]) <= 0.2 * d["area_start"], d
    assert abs(d["step_end"][0] - 8) <= 2.0 and abs(d["step_end"][1]) <= 2.0, d   # still moving right


def test_a_timeline_switch_changes_the_colour_within_one_block(client, tmp_path):
    block = 2
    video = scenes.timeline(client, str(tmp_path), "red square moving right", "blue circle moving right", block)
    colours = quality.colors_by_block(video, scenes.LATENT_PER_BLOCK)
    assert colours[:block] == ["red"] * block, colours
    latency = scenes.switch_latency(video, "blue", block)
    assert latency is not None and latency <= 1, colours
    assert colours[-1] == "blue", colours


def test_video_to_video_at_half_strength_keeps_the_input_path(client, tmp_path):
    source = scenes.truth([(0, checkpoints.EXAMPLE_VIDEO_PROMPT)], 33)
    video = scenes.video_to_video(client, str(tmp_path), "yellow circle moving left", strength=0.5)
    assert video.shape[0] == 33
    distance = scenes.path_distance(video, source)
    assert float(distance.max()) <= 4.0, distance.tolist()


def test_taehv_and_the_wan_vae_decode_the_same_shape(client, tmp_path):
    fast = scenes.text_to_video(client, str(tmp_path / "taehv"), length=9, decoder=scenes.TAEHV)
    full = scenes.text_to_video(client, str(tmp_path / "vae"), length=9, decoder=scenes.WAN_VAE)
    assert fast.shape == full.shape
    assert float((fast - full).abs().mean()) < 0.02
    assert float(scenes.path_distance(fast, full).max()) < 1.0


def test_the_main_job_runs_every_demo_workflow_and_its_videos_move(server, tmp_path):
    """The README's second command, ``python tempo.py demo`` (here with ``--server``, the session's
    ComfyUI): it ends well, every workflow it runs writes its files, and the causal ones are the videos
    their prompts ask for, read back from the MP4s it wrote."""
    import glob
    import os
    import subprocess
    import sys

    from tempo_pack.client.local import PACK_ROOT
    from tempo_pack.demo import run as demo_run

    done = subprocess.run([sys.executable, os.path.join(PACK_ROOT, "tempo.py"), "demo", "--server", server.url,
                           "-o", str(tmp_path)], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "demo finished in" in done.stdout, done.stdout
    videos = {}
    for name, overrides in demo_run.DEMO_WORKFLOWS:
        files = glob.glob(os.path.join(str(tmp_path), name[:-len(".json")], "**", "*.*"), recursive=True)
        assert [f for f in files if f.endswith((".png", ".mp4", ".webp"))], (name, files)
        mp4s = [f for f in files if f.endswith(".mp4")]
        if mp4s:
            videos[name[:2]] = scenes.read_mp4(mp4s[0])
    for key, prompt in (("05", "red square moving right"), ("19", "blue square moving up")):
        colour, _, direction = world.parse(prompt)
        m = scenes.motion(videos[key], prompt)
        dx, dy = world.DIRECTIONS[direction]
        assert abs(m["step"][0] - 8 * dx) <= 2.5 and abs(m["step"][1] - 8 * dy) <= 2.5, (key, m)
    colours = quality.colors_by_block(videos["09"], scenes.LATENT_PER_BLOCK)
    assert colours[0] == "red" and colours[-1] == "blue", colours    # the timeline: red square, then blue circle
    source = scenes.truth([(0, checkpoints.EXAMPLE_VIDEO_PROMPT)], videos["10"].shape[0])
    assert float(scenes.path_distance(videos["10"], source).max()) <= 4.0    # the restyle keeps the input's path

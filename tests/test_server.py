"""Against a real ComfyUI server: the pack loads, every workflow is valid and runs, and the
batch client does what its README says (sweeps, downloads, manifest, errors, Ctrl-C)."""

import glob
import json
import re
import os
import signal
import subprocess
import sys
import time

import checks
import pytest
from PIL import Image

from tempo_pack.client import runner, workflow
from tempo_pack.client.errors import JobFailed, ValidationFailed
from tempo_pack.client.local import PACK_LINK_NAME, PACK_ROOT, free_port
from tempo_pack.demo import swap
from tempo_pack.factory import workflows as specs

pytestmark = pytest.mark.server

WORKFLOWS = sorted(glob.glob(os.path.join(PACK_ROOT, "workflows", "*.json")))
TXT2IMG = os.path.join(PACK_ROOT, "workflows", "01 One-step text to image.json")
from checks import CAUSAL, CAUSAL_SIZE, SMALL, SMALL_LATENT, VIDEO_SIZE  # noqa: E402  the shrunk sizes
TEMPO = os.path.join(PACK_ROOT, "tempo.py")


def _tempo_nodes(info):
    """The pack's nodes, told by the module that registered them (ComfyUI 0.8 has a core node
    'TemporalScoreRescaling' that a name prefix would take for ours)."""
    return {k: v for k, v in info.items() if v.get("python_module", "").endswith(PACK_LINK_NAME)}


def _pack_problems(log: str, pack_paths: list[str]) -> list[str]:
    """The start-up log's complaints about this pack only: an import failure of its folder, a
    traceback with one of its files in it, or a warning/error line that names it. ComfyUI's own
    extras that fail (its audio nodes without torchaudio, say) are not the pack's business."""
    def ours(text):
        return any(p in text for p in pack_paths)

    problems = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if ("IMPORT FAILED" in line or "Cannot import" in line) and ours(line):
            problems.append(line)
        if line.startswith("Traceback"):
            block = [line]
            for follow in lines[i + 1:]:
                block.append(follow)
                if follow and not follow.startswith(" "):
                    break
            if ours("\n".join(block)):
                problems.append("\n".join(block))
        low = line.lower()
        if ("warn" in low or "error" in low) and (ours(line) or "tempo:" in low):
            problems.append(line)
    return problems


def test_pack_loads_without_errors(server, client):
    log = server.log_text().split("To see the GUI go to")[0]  # start-up only: later jobs' errors are tested apart
    link = os.path.join(server.base, "custom_nodes", PACK_LINK_NAME)
    pack_paths = [link, os.path.realpath(PACK_ROOT)]
    imported = [l for l in log.splitlines() if "seconds" in l and l.rstrip().endswith(PACK_LINK_NAME)]
    assert imported and "IMPORT FAILED" not in imported[0], imported or log[-3000:]
    assert not _pack_problems(log, pack_paths)


def test_pack_problems_reads_only_the_packs_own_lines():
    pack = "/x/custom_nodes/comfyui-tempo"
    theirs = ("Traceback (most recent call last):\n  File \"/c/comfy_extras/nodes_audio.py\", line 4\n"
              "ModuleNotFoundError: No module named 'torchaudio'\n"
              "Cannot import /c/comfy_extras/nodes_audio.py module for custom nodes: x\n")
    assert _pack_problems(theirs, [pack]) == []
    mine = ("Traceback (most recent call last):\n  File \"/x/custom_nodes/comfyui-tempo/nodes/__init__.py\"\n"
            "ImportError: cannot import name 'count_conv3d'\n"
            "   0.0 seconds (IMPORT FAILED): /x/custom_nodes/comfyui-tempo\n")
    assert len(_pack_problems(mine, [pack])) == 2
    assert _pack_problems("WARNING Tempo: something odd\n", [pack])


def test_node_list_json_lists_every_node(client):
    with open(os.path.join(PACK_ROOT, "node_list.json")) as f:
        listed = json.load(f)
    ours = _tempo_nodes(client.object_info())
    assert sorted(listed) == sorted(ours)


def test_every_node_is_documented_under_one_prefix_and_category(client):
    for node_id, info in _tempo_nodes(client.object_info()).items():
        assert node_id.startswith("Tempo"), node_id
        assert info["category"].split("/")[0] == "Tempo", node_id
        assert info["display_name"].startswith("Tempo "), node_id
        assert len(info["description"]) > 20, node_id
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                opts = spec[1] if len(spec) > 1 else {}
                assert opts.get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_every_node_a_message_names_exists(client):
    """A message that sends the user to 'Tempo Something' names a node the server really has."""
    shown = {info["display_name"] for info in _tempo_nodes(client.object_info()).values()}
    named = {}
    for folder in ("nodes", "samplers", "loaders", "client", "live", "video"):
        for path in glob.glob(os.path.join(PACK_ROOT, folder, "**", "*.*"), recursive=True):
            if path.endswith((".py", ".html")):
                for name in re.findall(r"'(Tempo (?:[A-Z0-9][\w-]*)(?: [A-Z0-9][\w-]*)*)'", open(path).read()):
                    named.setdefault(name, os.path.relpath(path, PACK_ROOT))
    assert named, "the scan found no node names at all"
    assert {n: f for n, f in named.items() if n not in shown} == {}


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_is_valid_against_the_server(client, path):
    ui = workflow.load_workflow(path)
    assert workflow.workflow_format(ui) == "ui"
    problems = checks.check_ui_workflow(ui, client.object_info())
    # The Wan text encoder file is the real one users download; the test server does not have it.
    problems = [p for p in problems if f"clip_name = '{specs.WAN_TEXT_ENCODER}'" not in p]
    assert problems == []


def test_every_workflow_is_run_by_a_test():
    assert set(SMALL) | set(CAUSAL) == {os.path.basename(p) for p in WORKFLOWS}


def test_committed_workflows_are_what_the_specs_build(client):
    """The files are built against the newest ComfyUI the suite runs (its node definitions decide a node's
    outputs and widgets: 0.27's SaveImage has an output 0.3.64's lacks); against an older one each file is
    checked as a graph instead (test_workflow_converts_to_the_graph_it_describes)."""
    version = client.get_json("/system_stats")["system"]["comfyui_version"]
    if version != specs.BUILT_WITH:
        pytest.skip(f"the workflows are built against ComfyUI {specs.BUILT_WITH}'s node definitions; this is {version}")
    built = specs.build_all(client.object_info(), out_dir="")
    assert sorted(built) == sorted(os.path.basename(p) for p in WORKFLOWS)
    for name, wf in built.items():
        with open(os.path.join(PACK_ROOT, "workflows", name)) as f:
            assert json.load(f) == json.loads(json.dumps(wf)), f"{name}: run 'python tempo.py build-workflows'"


@pytest.mark.parametrize("name", sorted(specs.SPECS))
def test_workflow_converts_to_the_graph_it_describes(client, name):
    info = client.object_info()
    _, nodes = specs.SPECS[name]()
    api = workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", name)), info)
    assert {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()} == \
        checks.expected_api(nodes, info)


@pytest.mark.parametrize("name", sorted(CAUSAL))
def test_every_video_workflow_runs_to_mp4(client, name, tmp_path):
    """Shipped as is, on the released names (the demo's stand-ins), except: the Wan text encoder becomes
    the demo's stand-in encoder (umT5-XXL does not fit this machine), frames are 64x48 and clips shorter."""
    from checks import read_mp4_info

    api = workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", name)), client.object_info())
    api = swap.use_demo_text_encoder(api)
    overrides, frame_counts = CAUSAL[name]
    size = CAUSAL_SIZE if "TempoCausalVideoSampler" in {v["class_type"] for v in api.values()} else {}
    results = runner.run_batch(client, api, [{**size, **overrides}], str(tmp_path), progress=False)
    videos = sorted((f for f in results[0].files if f.endswith(".mp4")), key=lambda f: f.split("_", 1)[0])
    assert len(videos) == len(frame_counts), results[0].files
    for f, n in zip(videos, frame_counts):
        info = read_mp4_info(str(tmp_path / f))
        size = (64, 64) if "SVD" in name else (64, 48)
        assert (info["frames"], info["width"], info["height"], info["codec"]) == (n, *size, "h264")


def test_a_causal_video_decoded_by_taehv_from_vae_approx(client, tmp_path):
    """decoder: a TAEHV file of models/vae_approx (taew2_1.pth, random weights here) makes the same number
    of frames as the Wan VAE; a name outside the listed files is refused."""
    from checks import read_mp4_info
    from tempo_pack.factory.checkpoints import WAN_PROMPT

    name = "05 Causal text to video, streamed to mp4.json"
    info = client.object_info()
    spec = info["TempoCausalVideoSaveMP4"]["input"]["optional"]["decoder"]
    assert "taew2_1.pth" in (spec[1]["options"] if spec[0] == "COMBO" else spec[0])  # the listed vae_approx file
    api = swap.use_saved_conditioning(workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", name)),
                                                       info), WAN_PROMPT)
    sizes = {**CAUSAL_SIZE, "TempoCausalVideoSampler.length": 21}
    frames = {}
    for decoder in ("Wan VAE", "taew2_1.pth"):
        out = tmp_path / decoder.replace(".", "_")
        results = runner.run_batch(client, api, [{**sizes, "TempoCausalVideoSaveMP4.decoder": decoder}], str(out),
                                   progress=False)
        (video,) = [f for f in results[0].files if f.endswith(".mp4")]
        mp4 = read_mp4_info(str(out / video))
        frames[decoder] = (mp4["frames"], mp4["width"], mp4["height"])
    assert frames["taew2_1.pth"] == frames["Wan VAE"] == (21, 64, 48)
    with pytest.raises(ValidationFailed):
        runner.run_batch(client, api, [{**sizes, "TempoCausalVideoSaveMP4.decoder": "../../taew2_1.pth"}],
                         str(tmp_path / "bad"), progress=False)


@pytest.mark.parametrize("path", [p for p in WORKFLOWS if os.path.basename(p) in SMALL], ids=os.path.basename)
def test_every_workflow_runs(client, path, tmp_path):
    api = workflow.to_api(workflow.load_workflow(path), client.object_info())
    overrides, count, size = SMALL[os.path.basename(path)]
    results = runner.run_batch(client, api, [overrides], str(tmp_path), progress=False)
    images = [f for f in results[0].files if f.endswith(".png")]
    assert len(images) == count, results[0].files
    for f in images:
        with Image.open(tmp_path / f) as im:
            assert im.size == (size, size)


def test_cli_sweep_of_three_seeds_downloads_everything(server, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, TEMPO, "run", os.path.join(PACK_ROOT, "workflows", "01 One-step text to image.json"),
                           "--server", server.url, "--set", "EmptyLatentImage.width=64",
                           "--set", "Empty Latent Image.height=64", "--seeds", "10-12", "-o", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert [l["overrides"]["7.noise_seed"] for l in lines] == [10, 11, 12]
    assert len({l["prompt_id"] for l in lines}) == 3
    for l in lines:
        assert l["status"] == "success" and len(l["files"]) == 1
        with Image.open(out / l["files"][0]) as im:
            assert im.size == (64, 64)
    a, b = (Image.open(out / lines[i]["files"][0]).tobytes() for i in (0, 1))
    assert a != b, "different seeds must give different images"
    assert "3 job(s) done, 3 file(s)" in proc.stdout


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, TEMPO, *args], capture_output=True, text=True, timeout=timeout)


def test_unreachable_server_is_a_clear_error(tmp_path):
    proc = _cli("run", os.path.join(PACK_ROOT, "workflows", "01 One-step text to image.json"),
                "--server", f"http://127.0.0.1:{free_port()}", "-o", str(tmp_path))
    assert proc.returncode == 3
    assert "cannot reach ComfyUI" in proc.stderr


def test_not_json_and_not_workflow(server, tmp_path):
    p = tmp_path / "x.json"
    p.write_text("hello")
    proc = _cli("run", str(p), "--server", server.url)
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    p.write_text("[1, 2]")
    proc = _cli("run", str(p), "--server", server.url)
    assert proc.returncode == 2 and "not a ComfyUI workflow" in proc.stderr


def test_unknown_node_type_is_named(server, tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"1": {"class_type": "NoSuchNodeAnywhere", "inputs": {}}}))
    proc = _cli("run", str(p), "--server", server.url)
    assert proc.returncode == 2 and "NoSuchNodeAnywhere (node #1)" in proc.stderr


def test_node_errors_are_printed_by_title_and_input(client):
    api = workflow.to_api(workflow.load_workflow(TXT2IMG), client.object_info())
    bad = workflow.apply_overrides(api, {"EmptyLatentImage.width": 3})
    with pytest.raises(ValidationFailed) as e:
        client.queue_prompt(bad)
    assert "node #4 'Empty Latent Image', input 'width': Value 3 smaller than min of 16" in str(e.value)


def test_missing_model_file_names_the_folder(client):
    api = workflow.to_api(workflow.load_workflow(TXT2IMG), client.object_info())
    bad = workflow.apply_overrides(api, {"1.ckpt_name": "not_here.safetensors"})
    with pytest.raises(ValidationFailed) as e:
        client.queue_prompt(bad)
    msg = str(e.value)
    assert "'not_here.safetensors' is not in ComfyUI's 'checkpoints' folder" in msg and "models/checkpoints/" in msg


def test_missing_model_file_of_a_native_node_names_the_folder(client):
    """Same message when the server itself refuses the value (classic nodes validate combos)."""
    api = {"1": {"class_type": "VAELoader", "inputs": {"vae_name": "no_vae.safetensors"}},
           "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
           "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 0]}},
           "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}}}
    r = client.post_json("/prompt", {"prompt": api})
    assert r.status_code == 400 and r.json()["node_errors"]["1"]["errors"][0]["type"] == "value_not_in_list"
    msg = client.format_prompt_error(api, r.json())
    assert "node #1 'VAELoader', input 'vae_name': model file 'no_vae.safetensors' is not in ComfyUI's 'vae' folder" in msg


def _failing_jobs():
    # job 1 asks the SD 1.5 model to sample as SDXL-Turbo: Tempo One-Step Preset refuses it at run time
    return [{"4.width": 64, "4.height": 64}, {"41.preset": "SDXL-Turbo", "4.width": 64, "4.height": 64},
            {"4.width": 64, "4.height": 64, "7.noise_seed": 3}]


def test_failed_job_stops_the_batch(client, tmp_path):
    api = workflow.to_api(workflow.load_workflow(TXT2IMG), client.object_info())
    with pytest.raises(JobFailed):
        runner.run_batch(client, api, _failing_jobs(), str(tmp_path), progress=False)
    lines = [json.loads(l) for l in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    status = {l["job"]: l for l in lines}
    assert status[0]["status"] == "success"
    assert status[1]["status"] == "error" and "SDXL-Turbo preset is published for SDXL" in status[1]["error"]
    assert status[2]["status"] in ("cancelled", "success")  # it may have finished before the failure arrived
    assert not client.queue()["queue_pending"]


def test_keep_going_runs_the_rest(client, tmp_path):
    api = workflow.to_api(workflow.load_workflow(TXT2IMG), client.object_info())
    with pytest.raises(JobFailed, match="1 of 3 jobs did not succeed"):
        runner.run_batch(client, api, _failing_jobs(), str(tmp_path), keep_going=True, progress=False)
    lines = sorted((json.loads(l) for l in (tmp_path / "manifest.jsonl").read_text().splitlines()),
                   key=lambda l: l["job"])
    assert [l["status"] for l in lines] == ["success", "error", "success"]


def _as_from_a_terminal():
    """Ctrl-C reaches the client as it does from a shell: this test process may have SIGINT
    ignored or blocked by a library loaded earlier in the session, and a child inherits both."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_interrupts_and_removes_queued_jobs(server, client, tmp_path):
    out = tmp_path / "out"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (client.queue()["queue_running"] or client.queue()["queue_pending"]):
        time.sleep(0.2)  # start from an idle server: no job of an earlier test may pass for ours
    proc = subprocess.Popen([sys.executable, TEMPO, "run", TXT2IMG, "--server", server.url, "--seeds", "1-4",
                             "--set", "EmptyLatentImage.width=512", "--set", "EmptyLatentImage.height=512",
                             "-o", str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal)
    first = proc.stderr.readline()
    assert first.startswith("queueing 4 job(s)"), first
    seen, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the first job runs and another waits
        q = client.queue()
        seen.append((len(q["queue_running"]), len(q["queue_pending"])))
        if q["queue_running"] and q["queue_pending"]:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)  # generous: a loaded 2-core machine answers slowly
    assert proc.returncode == 130, (err, seen[-10:], signal.getsignal(signal.SIGINT),
                                    signal.pthread_sigmask(signal.SIG_BLOCK, []))
    assert "interrupted" in err
    assert "Interrupting prompt" in server.log_text()
    deadline = time.monotonic() + 120  # the running node finishes first (a VAE decode is not interruptible)
    while time.monotonic() < deadline and (client.queue()["queue_running"] or client.queue()["queue_pending"]):
        time.sleep(0.2)
    q = client.queue()
    assert not q["queue_pending"] and not q["queue_running"], (err, server.log_tail(30))
    lines = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and sum(l["status"] == "cancelled" for l in lines) >= 3


def test_convert_command_prints_api_format(server):
    proc = _cli("convert", TXT2IMG, "--server", server.url)
    assert proc.returncode == 0, proc.stderr
    api = json.loads(proc.stdout)
    assert api["7"]["class_type"] == "SamplerCustom" and api["7"]["inputs"]["sigmas"] == ["5", 0]


def test_cli_prompt_and_csv_sweeps_with_an_upload(server, tmp_path):
    """The README's sweep commands: prompts x seeds (with --upload), and one job per CSV row."""
    from tempo_pack.demo.run import EXAMPLE_IMAGE

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red fox\na blue whale\n")
    out = tmp_path / "a"
    proc = _cli("run", TXT2IMG, "--server", server.url, "--prompts", str(prompts), "--seeds", "1-2",
                "--upload", EXAMPLE_IMAGE, "--set", "EmptyLatentImage.width=64", "--set", "EmptyLatentImage.height=64",
                "-o", str(out), "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "uploaded" in proc.stderr
    lines = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(l["overrides"]["7.noise_seed"], l["overrides"]["2.text"]) for l in lines] == [
        (1, "a red fox"), (1, "a blue whale"), (2, "a red fox"), (2, "a blue whale")]
    assert all(l["status"] == "success" and len(l["files"]) == 1 for l in lines)

    rows = tmp_path / "jobs.csv"
    rows.write_text("KSampler.seed,Positive.text\n", encoding="utf-8")  # KSampler is not in this workflow
    proc = _cli("run", TXT2IMG, "--server", server.url, "--csv", str(rows), "-o", str(tmp_path / "b"))
    assert proc.returncode == 2 and "has no rows" in proc.stderr
    rows.write_text("SamplerCustom.noise_seed,Positive.text,EmptyLatentImage.width,EmptyLatentImage.height\n"
                    "3,a castle,64,64\n4,\"a boat, at sea\",64,64\n", encoding="utf-8")
    proc = _cli("run", TXT2IMG, "--server", server.url, "--csv", str(rows), "-o", str(tmp_path / "b"), "--quiet",
                timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in (tmp_path / "b" / "manifest.jsonl").read_text().splitlines()]
    assert [l["overrides"]["Positive.text"] for l in lines] == ["a castle", "a boat, at sea"]


def test_a_workflow_saved_before_the_timeline_and_v2v_inputs_still_runs(client, tmp_path):
    """The sampler gained optional inputs (timeline, switch, input_video, input_latent, strength, clip) and
    positive became optional; a workflow saved before, without them, converts and runs unchanged."""
    from tempo_pack.factory.checkpoints import WAN_PROMPT

    ui = workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json"))
    new_inputs = {"timeline", "input_video", "input_latent", "clip"}
    for n in ui["nodes"]:
        if n["type"] == "TempoCausalVideoSampler":
            n["inputs"] = [i for i in n["inputs"] if i["name"] not in new_inputs]
            assert n["widgets_values"][-3:] == ["re-cache", 0.7, 0.0]
            n["widgets_values"] = n["widgets_values"][:-3]  # what the editor saved then
    api = swap.use_saved_conditioning(workflow.to_api(ui, client.object_info()), WAN_PROMPT)
    sampler = next(v for v in api.values() if v["class_type"] == "TempoCausalVideoSampler")
    assert sampler["inputs"]["switch"] == "re-cache" and isinstance(sampler["inputs"]["positive"], list)  # defaults
    results = runner.run_batch(client, api, [{**CAUSAL_SIZE, "TempoCausalVideoSampler.length": 21}], str(tmp_path),
                              progress=False)
    assert [f for f in results[0].files if f.endswith(".mp4")]


def test_a_workflow_saved_with_the_old_rolling_cache_inputs_runs_as_before(client, tmp_path):
    """Saved before the authors' terms: cache 'rolling', sink_frames 1, window_frames 3 (the block not
    counted), no context_noise. The editor format and the API format (old input names) both run, with
    the same video as cache 'window', sink_size 1, local_attn_size 7, and the node says how to convert."""
    from tempo_pack.factory.checkpoints import WAN_PROMPT

    ui = workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "06 Causal 40-second video, rolling cache.json"))
    for n in ui["nodes"]:
        if n["type"] == "TempoCausalVideoSampler":
            i = n["widgets_values"].index("preset")
            n["widgets_values"][i:i + 3] = ["rolling", 1, 3]
            n["widgets_values"] = n["widgets_values"][:-1]
    info = client.object_info()
    size = {**CAUSAL_SIZE, "TempoCausalVideoSampler.length": 33}
    old_ui = swap.use_saved_conditioning(workflow.to_api(ui, info), WAN_PROMPT)
    old_api = json.loads(json.dumps(old_ui))
    sampler = next(v for v in old_api.values() if v["class_type"] == "TempoCausalVideoSampler")
    for name in ("sink_size", "local_attn_size", "context_noise"):
        sampler["inputs"].pop(name)
    sampler["inputs"].update(sink_frames=1, window_frames=3)
    new = json.loads(json.dumps(old_ui))
    next(v for v in new.values() if v["class_type"] == "TempoCausalVideoSampler")["inputs"].update(
        cache="window", sink_size=1, local_attn_size=7)
    videos = []
    for k, api in enumerate((old_ui, old_api, new)):
        results = runner.run_batch(client, api, [size], str(tmp_path / str(k)), progress=False)
        mp4 = [f for f in results[0].files if f.endswith(".mp4")]
        videos.append(checks.mp4_frames(str(tmp_path / str(k) / mp4[0])))
        history = client.history(results[0].prompt_id)
        texts = json.dumps(history["outputs"])
        assert ("local_attn_size 7" in texts) == (k < 2), "the old workflows say how to convert, the new one not"
    assert len(videos[0]) == 33 and videos[0] == videos[1] == videos[2]


def test_the_largest_allowed_causal_video_is_refused_and_the_server_lives(client, tmp_path):
    """4096x4096 (the schema's maximum) with the rolling cache: refused with the fix before the first
    block, and the server answers afterwards."""
    from tempo_pack.factory.checkpoints import WAN_PROMPT

    api = workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json")),
                          client.object_info())
    api = swap.use_saved_conditioning(api, WAN_PROMPT)
    start = time.monotonic()
    with pytest.raises(JobFailed):
        runner.run_batch(client, api, [{"TempoCausalVideoSampler.width": 4096, "TempoCausalVideoSampler.height": 4096,
                                       "TempoCausalVideoSampler.length": 21, "TempoCausalVideoSampler.cache": "preset"}],
                        str(tmp_path), progress=False)
    assert time.monotonic() - start < 120
    line = json.loads(open(tmp_path / "manifest.jsonl").read().splitlines()[0])
    assert re.search(r"needs about [\d.]+ GiB per frame at 4096x4096 .*lower the resolution", line["error"]), line
    assert "raised tempo.TempoInputError:" in line["error"], "the error's type shows a filesystem path"
    assert "TempoCausalVideoSampler" in client.object_info()  # still serving


def test_a_png_made_through_the_client_carries_its_workflow(client, tmp_path):
    """As from the editor: SaveImage embeds the workflow, with the job's own seed in it."""
    ui = workflow.load_workflow(TXT2IMG)
    info = client.object_info()
    api = workflow.to_api(ui, info)
    results = runner.run_batch(client, api, [{**SMALL_LATENT, "7.noise_seed": 1234}], str(tmp_path), progress=False,
                               ui=ui)
    with Image.open(tmp_path / results[0].files[0]) as im:
        carried, prompt = json.loads(im.info["workflow"]), json.loads(im.info["prompt"])
    assert workflow.workflow_format(carried) == "ui"
    again = workflow.to_api(carried, info)
    assert again["7"]["inputs"]["noise_seed"] == 1234 and again["4"]["inputs"]["width"] == 64
    assert prompt["7"]["inputs"]["noise_seed"] == 1234
    assert ui["nodes"] == workflow.load_workflow(TXT2IMG)["nodes"], "the file's workflow is not changed"


def test_an_mp4_made_through_the_client_carries_its_workflow(client, tmp_path):
    """The pack's mp4 node writes 'workflow' and 'prompt' as ComfyUI's Save Video does (mp4 tags)."""
    import av
    from tempo_pack.factory.checkpoints import WAN_PROMPT

    ui = workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json"))
    info = client.object_info()
    api = swap.use_saved_conditioning(workflow.to_api(ui, info), WAN_PROMPT)
    job = {**CAUSAL_SIZE, "TempoCausalVideoSampler.length": 9, "TempoCausalVideoSampler.seed": 4321}
    results = runner.run_batch(client, api, [job], str(tmp_path), progress=False, ui=ui)
    mp4 = next(f for f in results[0].files if f.endswith(".mp4"))
    with av.open(str(tmp_path / mp4)) as c:
        meta = dict(c.metadata)
    carried = json.loads(meta["workflow"])
    sampler = next(k for k, v in api.items() if v["class_type"] == "TempoCausalVideoSampler")
    assert workflow.to_api(carried, info)[sampler]["inputs"]["seed"] == 4321
    assert json.loads(meta["prompt"])[sampler]["inputs"]["seed"] == 4321


def test_an_output_folder_is_never_mixed_and_resume_runs_only_what_is_missing(server, tmp_path):
    out = tmp_path / "out"
    cmd = ["run", TXT2IMG, "--server", server.url, "--set", "EmptyLatentImage.width=64",
           "--set", "EmptyLatentImage.height=64", "--seeds", "1-3", "-o", str(out), "--quiet"]
    assert _cli(*cmd, timeout=300).returncode == 0
    first = {l["job"]: l for l in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    again = _cli(*cmd)
    assert again.returncode == 2 and "already holds a batch" in again.stderr and "--resume" in again.stderr
    os.remove(out / first[1]["files"][0])  # job 1's output is gone
    resumed = _cli(*cmd, "--resume", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 2 of 3 job(s) are complete" in resumed.stderr
    now = {l["job"]: l for l in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert sorted(now) == [0, 1, 2] and len((out / "manifest.jsonl").read_text().splitlines()) == 3
    assert now[0]["prompt_id"] == first[0]["prompt_id"] and now[2]["prompt_id"] == first[2]["prompt_id"]
    assert now[1]["prompt_id"] != first[1]["prompt_id"] and os.path.getsize(out / now[1]["files"][0]) > 0
    other = _cli(*cmd[:-5], "--seeds", "1-4", "-o", str(out), "--resume")
    assert other.returncode == 2 and "other jobs" in other.stderr


def test_retries_try_a_failing_job_again_only_when_asked(client, tmp_path):
    api = workflow.to_api(workflow.load_workflow(TXT2IMG), client.object_info())
    with pytest.raises(JobFailed, match="1 of 3 jobs did not succeed"):
        runner.run_batch(client, api, _failing_jobs(), str(tmp_path), keep_going=True, progress=False, retries=1)
    lines = {l["job"]: l for l in map(json.loads, (tmp_path / "manifest.jsonl").read_text().splitlines())}
    assert lines[1]["status"] == "error" and [t["status"] for t in lines[1]["tries"]] == ["error"]
    assert "SDXL-Turbo preset is published for SDXL" in lines[1]["tries"][0]["error"]
    assert lines[0]["tries"] == [] and lines[0]["server"] == client.url


def test_a_link_to_a_node_that_is_not_there_is_named(client):
    """ComfyUI's own answer is 'Exception when validating inner node'; the client names the input."""
    api = workflow.to_api(workflow.load_workflow(TXT2IMG), client.object_info())
    decode = next(k for k, v in api.items() if v["class_type"] == "VAEDecode")
    api[decode]["inputs"]["samples"] = ["99", 0]
    with pytest.raises(ValidationFailed, match=f"node #{decode} '.*', input 'samples' is linked to node #99, which "
                                               "is not in the workflow\nreconnect the input"):
        client.queue_prompt(api)


def test_a_refused_job_is_reported_once(server, tmp_path):
    proc = _cli("run", TXT2IMG, "--server", server.url, "--set", "EmptyLatentImage.width=3", "-o", str(tmp_path / "o"),
                "--quiet")
    assert proc.returncode == 2
    assert proc.stderr.count("input 'width': Value 3 smaller than min of 16") == 1, proc.stderr
    failing = _cli("run", TXT2IMG, "--server", server.url, "--set", "41.preset=SDXL-Turbo", *sum(
        (["--set", f"{k}={v}"] for k, v in SMALL_LATENT.items()), []), "-o", str(tmp_path / "p"), "--quiet")
    assert failing.returncode == 1
    assert failing.stderr.count("preset is published for SDXL") == 1 and "custom_nodes" not in failing.stderr, failing.stderr


def test_comfyuis_own_checkpoint_loader_takes_the_demo_checkpoint(client, tmp_path):
    """The default graph of ComfyUI's editor (Load Checkpoint -> KSampler -> Save Image), nothing of
    the pack in it, runs on the demo's SD 1.5 file: ComfyUI's detection takes it as SD 1.5."""
    from tempo_pack.factory.checkpoints import SD15_CKPT

    api = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SD15_CKPT}},
           "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox in snow", "clip": ["4", 1]}},
           "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
           "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
           "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 1, "cfg": 1.0, "sampler_name": "euler",
                                                      "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                                                      "positive": ["6", 0], "negative": ["7", 0],
                                                      "latent_image": ["5", 0]}},
           "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
           "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "native", "images": ["8", 0]}}}
    results = runner.run_batch(client, api, [{}], str(tmp_path), progress=False)
    with Image.open(tmp_path / results[0].files[0]) as im:
        assert im.size == (64, 64)


@pytest.mark.parametrize("name,size", [
    ("01 One-step text to image.json", {"EmptyLatentImage.width": 16384, "EmptyLatentImage.height": 16384}),
    ("11 One-step text to video (rCM, Wan 2.1).json", {"EmptyHunyuanLatentVideo.width": 16384, "EmptyHunyuanLatentVideo.height": 16384,
                          "EmptyHunyuanLatentVideo.length": 9}),
])
def test_the_largest_allowed_one_step_latent_is_refused_and_the_server_lives(client, tmp_path, name, size):
    """ComfyUI's largest latent (16384x16384) through the pack's one-step sampler: refused by ComfyUI's
    own memory estimate before the first step, in seconds, and the server serves the next job."""
    from tempo_pack.factory.checkpoints import WAN_PROMPT

    api = workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", name)), client.object_info())
    if any(v["class_type"] == "CLIPLoader" for v in api.values()):
        api = swap.use_saved_conditioning(api, WAN_PROMPT)  # the Wan text encoder (5.7B) is not in the tests
    start = time.monotonic()
    with pytest.raises(JobFailed):
        runner.run_batch(client, api, [size], str(tmp_path / "big"), progress=False)
    assert time.monotonic() - start < 120
    line = json.loads((tmp_path / "big" / "manifest.jsonl").read_text().splitlines()[0])
    assert re.search(r"sampling this latent \(16384x16384.*\) needs about [\d.]+ GiB by ComfyUI's own estimate but "
                     r"cpu has [\d.]+ GiB free; lower the resolution", line["error"]), line
    small = SMALL_LATENT if "EmptyLatentImage" in {v["class_type"] for v in api.values()} else \
        {**VIDEO_SIZE, "EmptyHunyuanLatentVideo.length": 9}
    assert runner.run_batch(client, api, [small], str(tmp_path / "small"), progress=False)[0].status == "success"


@pytest.mark.parametrize("name,overrides,message", [
    ("09 Causal video that follows a prompt timeline.json", {"TempoPromptTimeline.text": "0: a\n10:30 cats"},
     "text: line 2 '10:30 cats' reads two ways"),
    ("09 Causal video that follows a prompt timeline.json", {"TempoPromptTimeline.text": "0: a\n1e308: b"},
     "text: line 2: the start time '1e308' is not a number"),
    ("16 Wan 2.2 Lightning text to video, two experts.json",
     {"TempoTwoExpertGenerate.expert_rule": "step", "TempoTwoExpertGenerate.expert_boundary": 100.0},
     "expert_boundary 100 with expert_rule step is how many of the 4 steps run on the high-noise model"),
    ("11 One-step text to video (rCM, Wan 2.1).json", {"TempoOneStepVideoLoader.model_name": "not_there.pt"},
     "model file 'not_there.pt' is not one of the files in models/diffusion_models/"),
])
def test_other_inputs_that_cannot_work_are_refused_when_queued(client, name, overrides, message):
    """The timeline's lines, a step boundary past the steps, a file that is not there: said as the job is
    queued, in the node's words, before anything loads."""
    api = workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", name)), client.object_info())
    api = workflow.apply_overrides(swap.use_demo_text_encoder(api), overrides)
    r = client.post_json("/prompt", {"prompt": api})  # straight to the server, past the client's own checks
    assert r.status_code == 400, r.text
    assert re.search(message, client.format_prompt_error(api, r.json())), r.text


@pytest.mark.parametrize("overrides,message", [
    ({"TempoCausalVideoSampler.width": 100}, "width and height must be multiples of 16"),
    ({"TempoCausalVideoSampler.cache": "window", "TempoCausalVideoSampler.local_attn_size": 4},
     "local_attn_size must be at least 7"),
    ({"TempoCausalVideoSampler.schedule": "custom", "TempoCausalVideoSampler.custom_timesteps": "250, 500"},
     "must run from high to low"),
    ({"TempoCausalVideoSampler.seed": -1}, "seed -1 is below its minimum 0"),
])
def test_sampler_settings_that_cannot_work_are_refused_when_queued(client, overrides, message):
    """Checks that need no model run as the job is queued (the node's validate_inputs), so a bad graph is
    refused at once, before any model loads, with the message the node would give."""
    api = workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json")),
                          client.object_info())
    api = workflow.apply_overrides(swap.use_demo_text_encoder(api), overrides)
    with pytest.raises(ValidationFailed, match=message):
        client.queue_prompt(api)

"""A shared workflow or an API client cannot make the server read or write outside the folders
ComfyUI assigns: every name input is tried as a hostile sender would, through a real server's
HTTP API with no client-side checks, and nothing outside is read or written.

ComfyUI itself refuses a name that is not in a combo's list (0.3.64 and 0.8.0 alike), so most
attempts stop there; a link inside a model folder is listed, so only the pack can stop it, and the
pack's own refusal is also driven directly below. Either way the prompt fails, and the pack's one
message is the same whether the path outside exists or not."""

import os
import shutil
import time

import pytest

from tempo_pack.client.errors import ValidationFailed
from tempo_pack.factory import checkpoints
from tempo_pack.loaders.paths import MAX_NAME_CHARS, is_inside, name_problem, shown

NOT_ONE_OF = "is not one of the files in models/"


def _attempt(client, prompt: dict) -> str:
    """Queue ``prompt`` as a hostile API client would; the server's answer as text ('ok' on success)."""
    try:
        pid = client.queue_prompt(prompt)
    except ValidationFailed as e:
        return "refused by ComfyUI: " + str(e)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        hist = client.history(pid)
        if hist and (hist.get("status") or {}).get("completed") is not None:
            for kind, data in hist["status"].get("messages", []):
                if kind == "execution_error":
                    return str(data.get("exception_message", ""))
            return "ok"
        time.sleep(0.2)
    raise AssertionError("the prompt did not finish")


def _loader_prompt(node: str, name: str) -> dict:
    """The loader with ``name`` in its file input, its info string shown by PreviewAny."""
    inputs, info_slot = {
        "TempoCausalVideoLoader": ({"model_name": name, "weight_dtype": "default"}, 1),
        "TempoOneStepImageLoader": ({"ckpt_name": name, "preset": "auto", "weight_dtype": "default"}, 3),
        "TempoOneStepVideoLoader": ({"model_name": name, "weight_dtype": "default", "timestep": 0.0,
                                     "shift": 0.0}, 1),
        "TempoSVDLoader": ({"ckpt_name": name, "preset": "auto", "weight_dtype": "default"}, 3),
    }[node]
    return {"1": {"class_type": node, "inputs": inputs},
            "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", info_slot]}}}


def _conditioning_prompt(name: str, save_as: str = "copy") -> dict:
    return {"1": {"class_type": "TempoLoadConditioning", "inputs": {"name": name}},
            "2": {"class_type": "TempoSaveConditioning", "inputs": {"conditioning": ["1", 0], "name": save_as}}}


@pytest.fixture(scope="module")
def outside(tmp_path_factory, models_dir):
    """A folder outside every model folder with a real model, a diffusers-like folder and a
    saved conditioning in it, and a link inside a model folder that points at the model."""
    root = tmp_path_factory.mktemp("outside")
    shutil.copy(os.path.realpath(models_dir / "diffusion_models" / checkpoints.CAUSAL_MODEL), root / "secret.safetensors")
    (root / "evil_diffusers" / "unet").mkdir(parents=True)
    (root / "evil_diffusers" / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a model")
    (root / "cond.safetensors").write_bytes(b"x")
    link = models_dir / "diffusion_models" / "escape.safetensors"
    link.symlink_to(root / "secret.safetensors")
    yield root
    link.unlink()


def _listing(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


LOADERS = ["TempoCausalVideoLoader", "TempoOneStepImageLoader", "TempoOneStepVideoLoader", "TempoSVDLoader"]


@pytest.mark.server
@pytest.mark.parametrize("node", LOADERS)
def test_loaders_read_nothing_outside_their_folders(client, outside, node):
    depth = "../" * 12
    attempts = {
        "traversal": depth + str(outside).lstrip("/") + "/secret.safetensors",
        "traversal to nothing": depth + str(outside).lstrip("/") + "/absent.safetensors",
        "absolute": str(outside / "secret.safetensors"),
        "diffusers folder outside": depth + str(outside).lstrip("/") + "/evil_diffusers",
        "over-long": "a" * (MAX_NAME_CHARS + 100) + ".safetensors",
        "NUL": "secret\x00.safetensors",
        "control": "secret\x1b[2J.safetensors",
    }
    if node in ("TempoCausalVideoLoader", "TempoOneStepVideoLoader"):
        attempts["symlink out of a model folder"] = "escape.safetensors"
    before = _listing(outside)
    answers = {}
    for what, name in attempts.items():
        answer = _attempt(client, _loader_prompt(node, name))
        assert answer != "ok", f"{what}: the loader accepted {name!r}"
        assert answer.startswith("refused by ComfyUI") or NOT_ONE_OF in answer, f"{what}: {answer}"
        answers[what] = answer.replace(name, "<name>").replace(shown(name), "<name>")
    assert _listing(outside) == before
    # the same words whether the path outside exists or not: nothing to probe the disk with
    assert answers["traversal"] == answers["traversal to nothing"]
    if NOT_ONE_OF in answers["traversal"]:
        assert answers["absolute"] == answers["traversal"]
    if "symlink out of a model folder" in answers:  # listed by ComfyUI, so only the pack can refuse it
        assert NOT_ONE_OF in answers["symlink out of a model folder"]


@pytest.mark.server
def test_saved_conditioning_names_stay_in_their_folder(client, outside, server, models_dir):
    depth = "../" * 12
    for name in (depth + str(outside).lstrip("/") + "/cond.safetensors", str(outside / "cond.safetensors"),
                 "x\x00.safetensors"):
        answer = _attempt(client, _conditioning_prompt(name))
        assert answer.startswith("refused by ComfyUI") or NOT_ONE_OF in answer, answer
    # a name with folders in it is refused as the job is queued (as the mp4 prefix is), and nothing is written
    before = _listing(outside), _listing(models_dir / "tempo_conditioning"), _listing(os.path.join(server.base, "models"))
    for name in ("../../" + str(outside) + "/pwn", "../../x/c", "/tmp/c", "a/b", ".hidden", "x\\y"):
        answer = _attempt(client, _conditioning_prompt(checkpoints.WAN_PROMPT, name))
        assert answer.startswith("refused by ComfyUI") and "use letters, digits, - _ and . only" in answer, answer
    assert (_listing(outside), _listing(models_dir / "tempo_conditioning"),
            _listing(os.path.join(server.base, "models"))) == before
    assert _attempt(client, _conditioning_prompt(checkpoints.WAN_PROMPT, "fox-2.v1")) == "ok"
    written = _listing(models_dir / "tempo_conditioning") + _listing(os.path.join(server.base, "models"))
    assert any(n.endswith("fox-2.v1.safetensors") for n in written), written


@pytest.mark.server
def test_output_prefix_cannot_leave_the_output_folder(client, outside, server):
    graph = {
        "1": {"class_type": "TempoCausalVideoLoader", "inputs": {"model_name": checkpoints.CAUSAL_MODEL,
                                                                 "weight_dtype": "default"}},
        "2": {"class_type": "TempoLoadConditioning", "inputs": {"name": checkpoints.WAN_PROMPT}},
        "3": {"class_type": "TempoCausalVideoSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "width": 64, "height": 48, "length": 9, "seed": 0,
            "schedule": "Self Forcing", "frames_per_block": "auto", "cache": "rolling", "sink_frames": 1,
            "window_frames": 3}},
        "4": {"class_type": "VAELoader", "inputs": {"vae_name": checkpoints.WAN_VAE}},
        "5": {"class_type": "TempoCausalVideoSaveMP4", "inputs": {"video": ["3", 0], "vae": ["4", 0],
                                                                  "filename_prefix": None, "fps": 16.0, "crf": 30}},
    }
    out_dir = os.path.join(server.base, "output")
    before_out, before = _listing(out_dir), _listing(outside)
    for prefix in ("../" * 12 + str(outside).lstrip("/") + "/pwn", str(outside / "pwn"), "a\x00b", "../pwn"):
        graph["5"]["inputs"]["filename_prefix"] = prefix
        answer = _attempt(client, graph)
        assert "must name a file inside ComfyUI's output folder" in answer, answer
    assert _listing(outside) == before and _listing(out_dir) == before_out


@pytest.mark.server
def test_hub_downloads_are_off_unless_the_server_turns_them_on(client):
    prompt = _loader_prompt("TempoOneStepImageLoader", checkpoints.SD15_CKPT)
    prompt["1"]["inputs"].update(hf_repo="stabilityai/sd-turbo", hf_filename="sd_turbo.safetensors")
    answer = _attempt(client, prompt)
    assert "downloads are off on this server" in answer and "TEMPO_ALLOW_HUB_DOWNLOADS=1" in answer, answer


@pytest.mark.comfy
def test_the_pack_refuses_by_itself_where_comfyui_does_not_check(comfy, tmp_path, add_model_folder):
    """The same attempts straight at the pack's resolver (a ComfyUI that does not check V3 combo
    values passes them on): one message, whether the target exists or not."""
    from tempo_pack.nodes.common import TempoInputError, resolve_model_path

    models, outside = tmp_path / "models", tmp_path / "outside"
    (models / "diffusion_models").mkdir(parents=True)
    (outside / "evil_diffusers" / "unet").mkdir(parents=True)
    (outside / "secret.safetensors").write_bytes(b"x")
    (models / "diffusion_models" / "ok.safetensors").write_bytes(b"x")
    (models / "diffusion_models" / "escape.safetensors").symlink_to(outside / "secret.safetensors")
    add_model_folder("diffusion_models", models / "diffusion_models")
    add_model_folder("diffusers", models / "diffusion_models")
    folders = ("diffusion_models", "diffusers")
    assert resolve_model_path("ok.safetensors", folders) == str(models / "diffusion_models" / "ok.safetensors")
    messages = set()
    for name in ["../../outside/secret.safetensors", "../../outside/absent.safetensors", str(outside / "secret.safetensors"),
                 "../../outside/evil_diffusers", "escape.safetensors", "x" * 600, "a\x00b", "absent.safetensors"]:
        with pytest.raises(TempoInputError) as e:
            resolve_model_path(name, folders)
        messages.add(str(e.value).replace(shown(name), "<name>"))
    assert len(messages) == 1, messages
    assert NOT_ONE_OF in messages.pop()


@pytest.mark.comfy
def test_hub_switch_off_refuses_and_on_reaches_the_checked_fetch(comfy, monkeypatch):
    from tempo_pack.loaders.files import CheckpointError
    from tempo_pack.nodes.common import TempoInputError
    from tempo_pack.nodes.hub import HUB_SWITCH, download_to_models

    monkeypatch.delenv(HUB_SWITCH, raising=False)
    with pytest.raises(TempoInputError, match="downloads are off on this server"):
        download_to_models("org/name", "a.safetensors", "checkpoints")
    monkeypatch.setenv(HUB_SWITCH, "1")
    with pytest.raises(CheckpointError, match="not a file name inside"):  # validated before any fetch
        download_to_models("org/name", "../../evil.safetensors", "checkpoints")


@pytest.mark.parametrize("name,problem", [("a/b.safetensors", None), ("sub\\dir\\x.pt", None),
                                          ("../x", "climbs"), ("a/../../x", "climbs"), ("..\\x", "climbs"),
                                          ("/etc/passwd", "absolute"), ("C:\\x", "absolute"), ("", "empty"),
                                          ("x\x00", "control"), ("x" * (MAX_NAME_CHARS + 1), "longer")])
def test_name_forms(name, problem):
    found = name_problem(name)
    assert (found is None) if problem is None else (problem in found), found


def test_is_inside_follows_links(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root" / "in").write_text("")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere")
    assert is_inside(str(tmp_path / "root" / "in"), [str(tmp_path / "root")])
    assert not is_inside(str(tmp_path / "root" / "link" / "x"), [str(tmp_path / "root")])
    assert is_inside(str(tmp_path / "root" / "link" / "x"), [str(tmp_path / "root"), str(tmp_path / "elsewhere")])


def test_hub_fetch_refuses_names_that_leave_the_folder(tmp_path):
    from tempo_pack.loaders.files import CheckpointError
    from tempo_pack.loaders.hub import fetch_to_folder

    for repo, name, msg in [("../../x", "a.safetensors", "not a Hugging Face repo id"),
                            ("org/name", "../../../evil.safetensors", "not a file name inside"),
                            ("org/name", "/etc/passwd", "not a file name inside")]:
        with pytest.raises(CheckpointError, match=msg):
            fetch_to_folder(repo, name, str(tmp_path))
    assert os.listdir(tmp_path) == []

"""Batch client pieces that need no server: files, overrides, sweeps."""

import json

import pytest

from tempo_pack.client import batch, workflow
from tempo_pack.client.errors import ClientError, WorkflowError
from tempo_pack.client.local import PACK_ROOT as ROOT

API = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "model": ["4", 0], "positive": ["6", 0]},
          "_meta": {"title": "KSampler"}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}, "_meta": {"title": "Load"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}, "_meta": {"title": "Positive"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly", "clip": ["4", 1]}, "_meta": {"title": "Negative"}},
}


def test_load_workflow_rejects_non_json(tmp_path):
    p = tmp_path / "w.json"
    p.write_text("{not json")
    with pytest.raises(WorkflowError, match="not valid JSON"):
        workflow.load_workflow(str(p))


def test_load_workflow_rejects_json_that_is_not_a_workflow(tmp_path):
    p = tmp_path / "w.json"
    p.write_text(json.dumps({"hello": 1}))
    with pytest.raises(WorkflowError, match="not a ComfyUI workflow"):
        workflow.load_workflow(str(p))


def test_load_workflow_missing_file(tmp_path):
    with pytest.raises(WorkflowError, match="not found"):
        workflow.load_workflow(str(tmp_path / "nope.json"))


def test_formats_detected():
    assert workflow.workflow_format(API) == "api"
    assert workflow.workflow_format({"nodes": [], "links": []}) == "ui"


def test_parse_assignment_values():
    assert workflow.parse_assignment("KSampler.seed=5") == ("KSampler", "seed", 5)
    assert workflow.parse_assignment("Positive.text=a dog, red") == ("Positive", "text", "a dog, red")
    assert workflow.parse_assignment("My.Node.cfg=1.5") == ("My.Node", "cfg", 1.5)
    assert workflow.parse_assignment("x.flag=true") == ("x", "flag", True)
    with pytest.raises(WorkflowError, match="NODE.INPUT=VALUE"):
        workflow.parse_assignment("KSampler.seed")


def test_overrides_by_id_title_and_type():
    out = workflow.apply_overrides(API, {"3.steps": 4, "Positive.text": "a dog", "KSampler.seed": 9})
    assert out["3"]["inputs"] == {"seed": 9, "steps": 4, "model": ["4", 0], "positive": ["6", 0]}
    assert out["6"]["inputs"]["text"] == "a dog"
    assert API["6"]["inputs"]["text"] == "a cat", "the original must not change"


def test_override_ambiguous_type_is_an_error_unless_starred():
    with pytest.raises(WorkflowError, match="matches nodes #6, #7"):
        workflow.apply_overrides(API, {"CLIPTextEncode.text": "x"})
    out = workflow.apply_overrides(API, {"*CLIPTextEncode.text": "x"})
    assert out["6"]["inputs"]["text"] == out["7"]["inputs"]["text"] == "x"


def test_override_unknown_node_lists_titles():
    with pytest.raises(WorkflowError, match="'Positive'"):
        workflow.apply_overrides(API, {"Sampler9.seed": 1})


def test_override_unknown_input_checked_against_object_info():
    info = {"KSampler": {"input": {"required": {"seed": ["INT", {}], "steps": ["INT", {}]}}}}
    with pytest.raises(WorkflowError, match="has no input 'sead'.*seed, steps"):
        workflow.apply_overrides(API, {"KSampler.sead": 1}, info)


@pytest.mark.parametrize("text,expected", [
    ("5", [5]), ("1-4", [1, 2, 3, 4]), ("1,7,9", [1, 7, 9]), ("100x3", [100, 101, 102]), ("1-2,9", [1, 2, 9]),
])
def test_seed_ranges(text, expected):
    assert batch.parse_seed_range(text) == expected


@pytest.mark.parametrize("bad", ["4-1", "a", "1-"])
def test_bad_seed_ranges(bad):
    with pytest.raises(ClientError):
        batch.parse_seed_range(bad)


def test_default_targets():
    assert workflow.find_seed_inputs(API) == ["3.seed"]
    assert workflow.find_positive_prompt(API) == ["6.text"]


def test_build_jobs_is_the_product_of_sweeps(tmp_path):
    jobs = batch.build_jobs(API, sets={"3.steps": 2}, seeds=[1, 2], prompts=["a", "b", "c"])
    assert len(jobs) == 6
    assert jobs[0] == {"3.steps": 2, "3.seed": 1, "6.text": "a"}
    assert jobs[-1] == {"3.steps": 2, "3.seed": 2, "6.text": "c"}
    assert batch.build_jobs(API) == [{}]


def test_prompt_file_and_csv(tmp_path):
    p = tmp_path / "prompts.txt"
    p.write_text("# comment\na red fox\n\na blue whale\n")
    assert batch.read_prompts(str(p)) == ["a red fox", "a blue whale"]
    c = tmp_path / "jobs.csv"
    c.write_text("KSampler.seed,Positive.text\n1,a fox\n2,\"a whale, swimming\"\n")
    rows = batch.read_csv_jobs(str(c))
    assert rows == [{"KSampler.seed": 1, "Positive.text": "a fox"}, {"KSampler.seed": 2, "Positive.text": "a whale, swimming"}]
    bad = tmp_path / "bad.csv"
    bad.write_text("seed\n1\n")
    with pytest.raises(ClientError, match="does not name an input"):
        batch.read_csv_jobs(str(bad))


def test_no_seed_input_is_explained():
    api = {"1": {"class_type": "X", "inputs": {"a": 1}}}
    with pytest.raises(WorkflowError, match="--seed-input"):
        batch.build_jobs(api, seeds=[1])


def test_pure_core_imports_without_comfyui():
    """samplers/, loaders/, models/, video/ and client/ never import ComfyUI."""
    import subprocess
    import sys

    code = ("import sys, importlib.util, os; root = sys.argv[1]; "
            "spec = importlib.util.spec_from_file_location('tp', os.path.join(root, '__init__.py'), "
            "submodule_search_locations=[root]); m = importlib.util.module_from_spec(spec); sys.modules['tp'] = m; "
            "spec.loader.exec_module(m); "
            "import tp.samplers.onestep, tp.samplers.causal, tp.loaders.files, tp.loaders.classify, tp.loaders.wan, "
            "tp.loaders.sd_unet, tp.loaders.hub, tp.models.causal_wan, tp.models.kv_cache, tp.video.mp4, tp.client.cli; "
            "bad = [k for k in sys.modules if k == 'comfy' or k.startswith('comfy.') or k in ('folder_paths', 'nodes')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    from tempo_pack.client.local import PACK_ROOT

    proc = subprocess.run([sys.executable, "-c", code, PACK_ROOT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_subgraphs_and_group_nodes_are_refused_with_the_fix():
    ui = {"nodes": [{"id": 1, "type": "0c4f-uuid", "mode": 0}], "links": [],
          "definitions": {"subgraphs": [{"id": "0c4f-uuid"}]}}
    with pytest.raises(WorkflowError, match="subgraphs.*Unpack Subgraph.*Export \\(API\\)"):
        workflow.to_api(ui, {})
    ui = {"nodes": [{"id": 1, "type": "workflow>My group", "mode": 0}], "links": []}
    with pytest.raises(WorkflowError, match="group nodes"):
        workflow.to_api(ui, {})


def test_auth_header_reaches_http_and_websocket(monkeypatch):
    from tempo_pack.client.server import ComfyServer, parse_headers

    monkeypatch.setenv("COMFY_AUTH", "Bearer abc")
    headers = parse_headers(["X-Team: tempo"])
    assert headers == {"X-Team": "tempo", "Authorization": "Bearer abc"}
    server = ComfyServer("example.invalid:8188", headers)
    assert server.url == "http://example.invalid:8188"
    assert server.session.headers["Authorization"] == "Bearer abc"
    seen = {}

    import websocket

    def fake_connect(url, timeout, header):
        seen.update(url=url, header=header)
        return object()

    monkeypatch.setattr(websocket, "create_connection", fake_connect)
    server.open_websocket()
    assert seen["url"].startswith("ws://example.invalid:8188/ws?clientId=")
    assert "Authorization: Bearer abc" in seen["header"] and "X-Team: tempo" in seen["header"]
    with pytest.raises(ClientError, match="'Name: value'"):
        parse_headers(["no colon"])


def test_client_never_imports_the_demo():
    """No import circle: the client is a library; tempo.py wires the demo's command beside it."""
    import subprocess
    import sys

    code = ("import sys, tempo; tempo.load_pack(); import tempo_pack.client.cli, tempo_pack.client.batch; "
            "print(sorted(m for m in sys.modules if m.startswith('tempo_pack.demo')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


DYNAMIC_INFO = {  # the shape of ComfyUI 0.27's TextGenerate in /object_info (a V3 dynamic combo)
    "input": {"required": {
        "prompt": ["STRING", {"default": "", "multiline": True}],
        "sampling_mode": ["COMFY_DYNAMICCOMBO_V3", {"options": [
            {"key": "on", "inputs": {"required": {"temperature": ["FLOAT", {"default": 0.7}],
                                                  "seed": ["INT", {"default": 0}]},
                                     "optional": {"presence_penalty": ["FLOAT", {"default": 0.0}]}}},
            {"key": "off", "inputs": {"required": {}}}]}]},
        "optional": {"thinking": ["BOOLEAN", {"default": False}]}},
    "input_order": {"required": ["prompt", "sampling_mode"], "optional": ["thinking"]},
}


@pytest.mark.parametrize("values,want", [
    (["hi", "on", 0.3, 5, "fixed", 0.1, True],
     {"prompt": "hi", "sampling_mode": "on", "sampling_mode.temperature": 0.3, "sampling_mode.seed": 5,
      "sampling_mode.presence_penalty": 0.1, "thinking": True}),
    (["hi", "off", True], {"prompt": "hi", "sampling_mode": "off", "thinking": True}),
    (["hi", "on", 0.3, 5, "fixed", True],  # saved before presence_penalty: it gets its default
     {"prompt": "hi", "sampling_mode": "on", "sampling_mode.temperature": 0.3, "sampling_mode.seed": 5,
      "sampling_mode.presence_penalty": 0.0, "thinking": True}),
])
def test_a_dynamic_combo_is_followed_by_its_chosen_options_widgets(values, want):
    """As ComfyUI 0.27's editor stores and sends them: the chosen key, then that option's widgets
    named '<combo>.<input>' (checked against the editor's own prompt on the shipped templates in
    tests/test_converter_crosscheck.py)."""
    node = {"id": 1, "type": "TextGenerate", "inputs": [], "outputs": [], "widgets_values": values}
    api = workflow.to_api({"nodes": [node], "links": []}, {"TextGenerate": DYNAMIC_INFO})
    assert api["1"]["inputs"] == want


def test_the_ray_path_says_how_to_get_ray_when_it_is_missing(monkeypatch):
    """Ray is only for --ray: without it, that command says what to install (exit code 2), nothing else
    needs it."""
    import sys

    from tempo_pack.client import cli
    from tempo_pack.client.errors import ClientError
    from tempo_pack.client.ray_pool import RAY_MISSING, import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ClientError, match="pip install ray") as e:
        import_ray()
    assert str(e.value) == RAY_MISSING and e.value.exit_code == 2
    p = __import__("argparse").ArgumentParser()
    cli.add_commands(p.add_subparsers(dest="command"))
    args = p.parse_args(["run", "x.json", "--ray"])
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli.main(args.func, args) == 2
    assert err.getvalue() == f"error: {RAY_MISSING}\n"


def test_ray_ships_the_packs_code_and_leaves_a_virtual_environment_in_the_checkout_at_home(tmp_path):
    """What Ray uploads to its workers, matched as Ray matches its excludes (gitwildmatch on paths
    relative to the module, a skipped folder never entered): the packages, top-level modules and web/,
    not a .venv made inside the checkout (a fresh-clone CI run filled the disk zipping one), tests, docs
    or the demo's files; the real pack likewise."""
    import os

    pathspec = pytest.importorskip("pathspec", reason="pathspec (a Ray dependency) is not installed")
    from tempo_pack.client.local import PACK_ROOT
    from tempo_pack.client.ray_pool import pack_runtime_env

    for rel in ("nodes/__init__.py", "nodes/sampler.py", "web/tempo.js", "errors.py", "__init__.py",
                "demo/__init__.py", "demo/world.py", "demo/trained/causal_demo.safetensors",
                ".venv/pyvenv.cfg", ".venv/lib/torch.so", "venv/lib/x.py", "tests/test_x.py", "docs/a.md",
                "demo_models/vae/x.safetensors", "workflows/01.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")

    def shipped(root):
        spec = pathspec.PathSpec.from_lines("gitwildmatch", pack_runtime_env(str(root))["excludes"])
        files = []
        for d, dirs, fs in os.walk(root):
            rel = os.path.relpath(d, root)
            dirs[:] = [x for x in dirs if not spec.match_file(os.path.normpath(os.path.join(rel, x)))]
            files += [os.path.normpath(os.path.join(rel, f)) for f in fs
                      if not spec.match_file(os.path.normpath(os.path.join(rel, f)))]
        return sorted(files)

    assert shipped(tmp_path) == ["__init__.py", "demo/__init__.py", "demo/world.py", "errors.py",
                                 "nodes/__init__.py", "nodes/sampler.py", "web/tempo.js"]
    real = shipped(PACK_ROOT)
    assert {"__init__.py", "nodes/__init__.py", "client/ray_pool.py", "web/tempo_ui.js"} <= set(real)
    assert not [f for f in real if f.startswith(("tests/", "docs/", ".git/", "demo_models/", ".venv/"))]


def test_an_older_comfyui_gets_its_own_web_packages_from_the_root_it_is_given(tmp_path):
    """A ComfyUI pinning another frontend than the environment's is served .comfy_web/<its version>/ from
    the root named (a Ray worker is given its driver's, where its own shipped copy has none), once
    install_dev.sh has written that folder (its PINS file); else the environment's own."""
    from importlib import metadata

    from tempo_pack.client.local import web_packages

    installed = metadata.version("comfyui-frontend-package")
    comfy, root = tmp_path / "ComfyUI", tmp_path / "driver" / ".comfy_web"
    comfy.mkdir()
    (comfy / "comfyui_version.py").write_text('__version__ = "0.3.64"\n')
    (comfy / "requirements.txt").write_text("comfyui-frontend-package==0.0.1\ntorch\n")
    assert web_packages(str(comfy), str(root)) is None  # not installed there yet
    (root / "0.3.64").mkdir(parents=True)
    (root / "0.3.64" / "PINS").write_text("comfyui-frontend-package==0.0.1\n")
    assert web_packages(str(comfy), str(root)) == str(root / "0.3.64")
    (comfy / "requirements.txt").write_text(f"comfyui-frontend-package=={installed}\n")
    assert web_packages(str(comfy), str(root)) is None  # the environment's own is the pinned one

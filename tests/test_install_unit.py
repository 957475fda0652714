"""The install path: the user's requirements never touch torch, the dev constraints are one
matching pair, and COMFYUI_PATH may list several ComfyUIs."""

import os
import re
from importlib import metadata

import pytest

from tempo_pack.client.local import PACK_ROOT, find_comfyui

TORCH_STACK = {"torch", "torchvision", "torchaudio"}


def _names(path):
    names = []
    with open(os.path.join(PACK_ROOT, path)) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                names.append(re.split(r"[<>=~!;\[ ]", line)[0].lower().replace("_", "-"))
    return names


def _requires(dist_name, seen):
    """Names a distribution needs, transitively (extras and other platforms' markers left out)."""
    try:
        reqs = metadata.requires(dist_name) or []
    except metadata.PackageNotFoundError:
        return
    for req in reqs:
        name, _, marker = req.partition(";")
        if "extra ==" in marker:
            continue
        name = re.split(r"[<>=~!\[ (]", name.strip())[0].lower().replace("_", "-")
        if name and name not in seen:
            seen.add(name)
            _requires(name, seen)


def test_user_requirements_never_touch_an_installed_torch():
    names = _names("requirements.txt")
    assert not TORCH_STACK & set(names), names
    needed = set()
    for name in names:
        _requires(name, needed)
    assert not TORCH_STACK & needed, f"a requirement pulls in {TORCH_STACK & needed}"


def test_constraints_pin_one_matching_torch_stack_exactly():
    pins = {}
    with open(os.path.join(PACK_ROOT, "constraints.txt")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                name, version = line.split("==")
                pins[name.strip()] = version.strip()
    assert TORCH_STACK <= set(pins), "torch, torchvision and torchaudio (ComfyUI 0.2x imports all three)"
    # anything else pinned is a development package only: a user's requirements never name it
    others = set(pins) - TORCH_STACK
    assert others <= set(_names("requirements-dev.txt")) and not others & set(_names("requirements.txt")), others
    torch_minor = tuple(int(x) for x in pins["torch"].split(".")[:2])
    vision_minor = tuple(int(x) for x in pins["torchvision"].split(".")[:2])
    audio_minor = tuple(int(x) for x in pins["torchaudio"].split(".")[:2])
    assert vision_minor == (0, torch_minor[1] + 15), "torchvision 0.N pairs with torch 2.(N-15)"
    assert audio_minor == torch_minor, "torchaudio 2.N pairs with torch 2.N"


def test_installed_stack_is_the_pinned_one():
    """What the tests run on is what constraints.txt promises (a stale environment says so here)."""
    with open(os.path.join(PACK_ROOT, "constraints.txt")) as f:
        pins = dict(line.split("#")[0].strip().split("==") for line in f if line.split("#")[0].strip())
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed: run bash scripts/install_dev.sh")
        assert installed.split("+")[0] == version, f"{name} {installed} installed, constraints.txt pins {version}"


def test_comfyui_path_may_list_several_and_is_authoritative(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
    (b / "main.py").write_text("")
    monkeypatch.setenv("COMFYUI_PATH", f"{a}{os.pathsep}{b}")
    assert find_comfyui() == str(b)
    (a / "main.py").write_text("")
    assert find_comfyui() == str(a)
    monkeypatch.setenv("COMFYUI_PATH", str(tmp_path / "none"))
    assert find_comfyui() is None


def test_registry_reads_the_oldest_supported_comfyui():
    from comfy_cli.registry.config_parser import extract_node_configuration

    config = extract_node_configuration(os.path.join(PACK_ROOT, "pyproject.toml"))
    assert config.project.supported_comfyui_version == ">=0.3.64"


def test_one_error_family():
    """Every error the pack raises on purpose is a TempoError (a ValueError: bad input, not a crash)."""
    from tempo_pack.client import errors as client_errors
    from tempo_pack.errors import TempoError
    from tempo_pack.loaders.files import CheckpointError
    from tempo_pack.samplers import causal

    for cls in (CheckpointError, client_errors.ClientError, client_errors.WorkflowError, client_errors.JobFailed,
                client_errors.ServerUnreachable, client_errors.ValidationFailed):
        assert issubclass(cls, TempoError) and issubclass(cls, ValueError), cls
    with pytest.raises(TempoError, match="high to low"):
        causal.schedule_sigmas([250, 500], 5.0)

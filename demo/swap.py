"""What the demo and the tests change in a shipped workflow when they queue it (the artist's copy is
never changed): the Wan text encoder, which cannot be tiny (umT5-XXL, 5.7B parameters), becomes the
demo's stand-in encoder, or a saved conditioning. Plain Python over API prompts."""

from __future__ import annotations

DEMO_TEXT_ENCODER = "TempoDemoTextEncoder"  # demo/comfy_nodes: loaded by the demo's and the tests' ComfyUI only


def _wan_text_loaders(api: dict) -> list[str]:
    return [k for k, v in api.items() if v["class_type"] == "CLIPLoader" and v["inputs"].get("type") == "wan"]


def _copy(api: dict) -> dict:
    return {k: dict(v, inputs=dict(v["inputs"])) for k, v in api.items()}


def use_demo_text_encoder(api: dict) -> dict:
    """Every Wan text encoder loader (CLIPLoader, type wan) becomes the demo's stand-in encoder; every
    link from it stays (CLIP Text Encode, the causal sampler's live prompts, a text timeline)."""
    api = _copy(api)
    for k in _wan_text_loaders(api):
        api[k] = {"class_type": DEMO_TEXT_ENCODER, "inputs": {},
                  "_meta": {"title": (api[k].get("_meta") or {}).get("title", "Load CLIP") + " (demo stand-in)"}}
    return api


def use_saved_conditioning(api: dict, name: str) -> dict:
    """Every Wan text encoder branch (CLIPLoader type wan -> CLIP Text Encode) becomes 'Tempo Load
    Conditioning' of a saved file; other inputs that read the encoder (the causal sampler's clip, for
    prompts typed on the live page) are left unconnected."""
    api = _copy(api)
    loaders = _wan_text_loaders(api)
    for k, v in list(api.items()):
        if v["class_type"] == "CLIPTextEncode" and isinstance(v["inputs"].get("clip"), list) \
                and v["inputs"]["clip"][0] in loaders:
            api[k] = {"class_type": "TempoLoadConditioning", "inputs": {"name": name},
                      "_meta": {"title": (v.get("_meta") or {}).get("title", "Prompt") + " (saved)"}}
    for k in loaders:
        del api[k]
    for v in api.values():
        for name_, value in list(v["inputs"].items()):
            if isinstance(value, list) and value and value[0] in loaders:
                del v["inputs"][name_]
    return api

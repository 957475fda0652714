"""A small, synchronous client for one ComfyUI server's HTTP and websocket API."""

from __future__ import annotations

import json
import os
import time
import uuid
from urllib.parse import urlencode, urlparse

import requests

from .errors import ServerUnreachable, ValidationFailed, ClientError
from .workflow import (combo_values, input_spec, load_workflow, spec_type_and_options,
                       workflow_api)

# Loader inputs whose combo lists are model folders, for messages about missing files.
MODEL_INPUT_FOLDERS = {
    "ckpt_name": "checkpoints", "unet_name": "diffusion_models", "vae_name": "vae",
    "clip_name": "text_encoders", "clip_name1": "text_encoders", "clip_name2": "text_encoders",
    "control_net_name": "controlnet", "lora_name": "loras", "upscale_model": "upscale_models",
    "model_name": None, "style_model_name": "style_models", "gligen_name": "gligen",
}


def parse_headers(values: list[str] | None) -> dict:
    """'Name: value' strings (command line --header) as a dict; $COMFY_AUTH sets Authorization."""
    headers = {}
    for h in values or []:
        if ":" not in h:
            raise ClientError(f"--header '{h}' is not 'Name: value'")
        k, v = h.split(":", 1)
        headers[k.strip()] = v.strip()
    if os.environ.get("COMFY_AUTH") and "Authorization" not in headers:
        headers["Authorization"] = os.environ["COMFY_AUTH"]
    return headers


class ComfyServer:
    def __init__(self, url: str = "http://127.0.0.1:8188", headers: dict | None = None, timeout: float = 30.0):
        if "://" not in url:
            url = "http://" + url
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(headers or {})
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex
        self._object_info = None

    # -- HTTP ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw) -> requests.Response:
        try:
            r = self.session.request(method, self.url + path, timeout=kw.pop("timeout", self.timeout), **kw)
        except requests.ConnectionError:
            raise ServerUnreachable(f"cannot reach ComfyUI at {self.url}: is it running? Start it with "
                                    "'python main.py' in the ComfyUI folder, or pass --server URL") from None
        except requests.Timeout:
            raise ServerUnreachable(f"ComfyUI at {self.url} did not answer within {self.timeout:.0f} s") from None
        if r.status_code in (401, 403):
            raise ClientError(f"{self.url} refused the request ({r.status_code}); pass the right "
                              "--header 'Authorization: ...'")
        return r

    def get_json(self, path: str):
        r = self._request("GET", path)
        if r.status_code != 200:
            raise ClientError(f"GET {path} on {self.url} answered {r.status_code}: {r.text[:200]}")
        try:
            return r.json()
        except ValueError:
            raise ClientError(f"{self.url}{path} did not answer JSON; is this a ComfyUI server?") from None

    def post_json(self, path: str, payload: dict) -> requests.Response:
        return self._request("POST", path, json=payload)

    def object_info(self) -> dict:
        if self._object_info is None:
            self._object_info = self.get_json("/object_info")
        return self._object_info

    def workflow_as_api(self, path: str) -> dict:
        """A workflow file (as the editor saves it, or in API format) as an API prompt for this
        server: UI files are converted with this server's node list, API files checked against it."""
        return workflow_api(load_workflow(path), path, self.object_info(), self.url)

    def precheck(self, prompt: dict) -> None:
        """Refuse combo values the server would not list (model files above all) before queueing.

        ComfyUI validates combo values of its classic nodes itself, but not of V3 nodes, which
        would then fail only while running; this gives both the same early, clear message."""
        info = self.object_info()
        dangling = [f"node #{nid} '{(node.get('_meta') or {}).get('title') or node.get('class_type')}', input '{name}' "
                    f"is linked to node #{value[0]}, which is not in the workflow"
                    for nid, node in prompt.items() for name, value in (node.get("inputs") or {}).items()
                    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)
                    and str(value[0]) not in prompt]
        if dangling:  # ComfyUI itself says only "Exception when validating inner node"
            raise ValidationFailed("\n".join(dangling) + "\nreconnect the input in the editor (or fix the link in the "
                                   "API file: [\"NODE_ID\", OUTPUT_INDEX] of a node that exists) and save again")
        node_errors = {}
        for nid, node in prompt.items():
            node_info = info.get(node.get("class_type"), {})
            for name, value in (node.get("inputs") or {}).items():
                spec = input_spec(node_info, name)
                if not spec or isinstance(value, list) or spec[0] != "COMBO":
                    continue  # classic combos (ComfyUI checks those), links, other types
                opts = spec_type_and_options(spec)[1]
                if opts.get("multiselect") or "options" not in opts or opts.get("remote"):
                    continue
                if value not in combo_values(spec):
                    node_errors.setdefault(nid, {"errors": [], "class_type": node["class_type"]})["errors"].append(
                        {"type": "value_not_in_list", "message": "Value not in list",
                         "details": f"{name}: '{value}'", "extra_info": {"input_name": name, "received_value": value}})
        if node_errors:
            raise ValidationFailed(self.format_prompt_error(prompt, {"node_errors": node_errors}))

    def queue_prompt(self, prompt: dict, extra_data: dict | None = None) -> str:
        self.precheck(prompt)
        payload = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            payload["extra_data"] = extra_data
        r = self.post_json("/prompt", payload)
        try:
            body = r.json()
        except ValueError:
            raise ClientError(f"POST /prompt answered {r.status_code}: {r.text[:300]}") from None
        if r.status_code != 200 or "prompt_id" not in body:
            raise ValidationFailed(self.format_prompt_error(prompt, body))
        return body["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def view(self, filename: str, subfolder: str = "", kind: str = "output") -> bytes:
        q = urlencode({"filename": filename, "subfolder": subfolder, "type": kind})
        r = self._request("GET", f"/view?{q}", timeout=max(self.timeout, 300))
        if r.status_code != 200:
            raise ClientError(f"could not download {subfolder}/{filename} ({kind}): HTTP {r.status_code}")
        return r.content

    def upload_image(self, path: str, name: str | None = None, overwrite: bool = True) -> str:
        """Put a local picture into the server's input folder (for LoadImage); returns its name there."""
        import os

        name = name or os.path.basename(path)
        try:
            with open(path, "rb") as f:
                r = self._request("POST", "/upload/image", files={"image": (name, f)},
                                  data={"overwrite": "true" if overwrite else "false", "type": "input"})
        except OSError as e:
            raise ClientError(f"cannot read {path}: {e.strerror}") from None
        if r.status_code != 200:
            raise ClientError(f"uploading {path} failed: HTTP {r.status_code} {r.text[:200]}")
        return r.json().get("name", name)

    def interrupt(self, prompt_id: str | None = None) -> None:
        self.post_json("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def delete_queued(self, prompt_ids: list[str]) -> None:
        if prompt_ids:
            self.post_json("/queue", {"delete": list(prompt_ids)})

    def queue(self) -> dict:
        return self.get_json("/queue")

    # -- errors --------------------------------------------------------------------------
    def model_folder_of(self, input_name: str, options: list) -> str | None:
        """The model folder whose file list a loader's combo input shows, if it can be told."""
        try:
            folders = self.get_json("/models")
            listed = {f: self.get_json(f"/models/{f}") for f in folders}
        except ClientError:
            listed = {}
        if options:
            exact = [f for f, files in listed.items() if sorted(files) == sorted(options)]
            if len(exact) == 1:
                return exact[0]
        guess = MODEL_INPUT_FOLDERS.get(input_name)
        if guess:
            return guess
        return None

    def format_prompt_error(self, prompt: dict, body: dict) -> str:
        error = body.get("error") or {}
        node_errors = body.get("node_errors") or {}
        lines = []
        if isinstance(error, dict) and error.get("type") not in (None, "prompt_outputs_failed_validation"):
            msg = error.get("message", "")
            details = error.get("details", "")
            lines.append(f"ComfyUI refused the workflow: {msg}" + (f" ({details})" if details else ""))
        elif isinstance(error, str):
            lines.append(f"ComfyUI refused the workflow: {error}")
        info = None
        for nid, ne in node_errors.items():
            node = prompt.get(nid, {})
            title = (node.get("_meta") or {}).get("title") or ne.get("class_type") or nid
            for reason in ne.get("errors", []):
                extra = reason.get("extra_info") or {}
                name = extra.get("input_name")
                where = f"node #{nid} '{title}'" + (f", input '{name}'" if name else "")
                if reason.get("type") == "value_not_in_list" and name:
                    if info is None:
                        info = self.object_info()
                    spec = input_spec(info.get(ne.get("class_type"), {}), name)
                    options = combo_values(spec) if spec else []
                    folder = self.model_folder_of(name, options)
                    value = extra.get("received_value")
                    if folder:
                        lines.append(f"{where}: model file '{value}' is not in ComfyUI's '{folder}' folder "
                                     f"(ComfyUI/models/{folder}/ or a '{folder}' path in extra_model_paths.yaml); "
                                     f"put the file there or pick one of: {', '.join(map(str, options)) or 'none found'}")
                    else:
                        lines.append(f"{where}: '{value}' is not one of the allowed values "
                                     f"{', '.join(map(str, options[:20]))}")
                else:
                    lines.append(f"{where}: {reason.get('message', '')}"
                                 + (f" ({reason.get('details')})" if reason.get("details") else ""))
        if not lines:
            lines.append(f"ComfyUI refused the workflow: {json.dumps(body)[:500]}")
        return "\n".join(lines)

    # -- websocket -----------------------------------------------------------------------
    def open_websocket(self):
        """Connect the websocket for this client id; open it before queueing so no message is missed."""
        import websocket

        parsed = urlparse(self.url)
        scheme = "wss" if parsed.scheme == "https" else "ws"
        ws_url = f"{scheme}://{parsed.netloc}{parsed.path}/ws?clientId={self.client_id}"
        headers = [f"{k}: {v}" for k, v in self.session.headers.items()
                   if k.lower() in ("authorization", "cookie") or k.lower().startswith("x-")]
        try:
            return websocket.create_connection(ws_url, timeout=self.timeout, header=headers)
        except (OSError, websocket.WebSocketException) as e:
            raise ServerUnreachable(f"cannot open the websocket {ws_url}: {e}") from None

    def next_message(self, ws, timeout: float = 1.0) -> dict | None:
        """The websocket's next JSON message, or None after a quiet ``timeout`` (binary preview
        frames are skipped). ServerUnreachable when the connection is gone."""
        import websocket

        ws.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = ws.recv()
            except websocket.WebSocketTimeoutException:
                return None
            except (websocket.WebSocketConnectionClosedException, OSError):
                raise ServerUnreachable(f"the connection to {self.url} was lost") from None
            if isinstance(msg, str):
                return json.loads(msg)
            if time.monotonic() > deadline:
                return None

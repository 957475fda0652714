"""Tempo batch client: queue ComfyUI workflows through the HTTP API, in batches.

Plain Python (requests, websocket-client, tqdm); it never imports ComfyUI, so it runs on
any machine that can reach a ComfyUI server.
"""

from .errors import ClientError, ServerUnreachable, WorkflowError, ValidationFailed, JobFailed
from .workflow import load_workflow, to_api, apply_overrides, parse_assignment
from .server import ComfyServer, parse_headers
from .batch import build_jobs
from .runner import run_batch

__all__ = [
    "ClientError", "ServerUnreachable", "WorkflowError", "ValidationFailed", "JobFailed",
    "load_workflow", "to_api", "apply_overrides", "parse_assignment",
    "ComfyServer", "parse_headers", "build_jobs", "run_batch",
]

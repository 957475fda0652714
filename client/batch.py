"""Batches: expand sweeps into jobs, queue them, follow them, download what they made."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import ClientError, JobFailed, ValidationFailed, WorkflowError
from .workflow import apply_overrides, find_positive_prompt, find_seed_inputs, parse_value


def parse_seed_range(text: str) -> list[int]:
    """``"5"`` -> [5]; ``"1-4"`` -> [1, 2, 3, 4]; ``"1,7,9"`` -> [1, 7, 9]; ``"100x3"`` -> [100, 101, 102]."""
    seeds = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part) or re.fullmatch(r"(\d+)\s*[x*]\s*(\d+)", part)
        if m and "-" in part:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ClientError(f"seed range '{part}' runs backwards; write LOW-HIGH, e.g. 1-8")
            seeds.extend(range(a, b + 1))
        elif m:
            seeds.extend(range(int(m.group(1)), int(m.group(1)) + int(m.group(2))))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ClientError(f"'{part}' is not a seed, a range (1-8), a start and count (100x8) or a list (1,5,9)")
    return seeds


def read_prompts(path: str) -> list[str]:
    """One prompt per non-empty line; lines starting with '#' are comments."""
    try:
        with open(path, encoding="utf-8") as f:
            prompts = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    except OSError as e:
        raise ClientError(f"cannot read the prompt file {path}: {e.strerror}") from None
    if not prompts:
        raise ClientError(f"the prompt file {path} has no prompts (one per line)")
    return prompts


def read_csv_jobs(path: str) -> list[dict[str, Any]]:
    """One job per row; each column header is a target such as ``KSampler.seed``."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ClientError(f"cannot read the CSV file {path}: {e.strerror}") from None
    if not rows:
        raise ClientError(f"the CSV file {path} has no rows; its first line names the inputs "
                          "(e.g. KSampler.seed,Positive.text) and each further line is a job")
    for col in rows[0]:
        if col is None or "." not in col:
            raise ClientError(f"CSV column '{col}' in {path} does not name an input; write NODE.INPUT, "
                              "e.g. KSampler.seed")
    return [{k: parse_value(v) for k, v in row.items() if v != ""} for row in rows]


def build_jobs(api: dict, sets: dict | None = None, seeds: list[int] | None = None,
               seed_targets: list[str] | None = None, prompts: list[str] | None = None,
               prompt_targets: list[str] | None = None, rows: list[dict] | None = None) -> list[dict]:
    """Expand the sweeps into one override dict per job (their product, in order).

    Seeds go to ``seed_targets`` (default: every literal seed / noise_seed input) and prompts
    to ``prompt_targets`` (default: the text encoders feeding a sampler's positive input).
    """
    sets = dict(sets or {})
    axes = []
    sweeps = [(seeds, seed_targets, find_seed_inputs, "--seeds", "the workflow has no seed input", "--seed-input"),
              (prompts, prompt_targets, find_positive_prompt, "--prompts",
               "no text encoder feeds a sampler's positive input", "--prompt-input")]
    for values, targets, find, flag, missing, option in sweeps:
        if not values:
            continue
        targets = targets or find(api)
        if not targets:
            raise WorkflowError(f"{flag} was given but {missing}; name one with {option} NODE.INPUT")
        axes.append([{t: v for t in targets} for v in values])
    if rows:
        axes.append(rows)
    jobs = []
    for combo in itertools.product(*axes) if axes else [()]:
        job = dict(sets)
        for part in combo:
            job.update(part)
        jobs.append(job)
    return jobs


@dataclass
class JobResult:
    index: int
    overrides: dict
    prompt_id: str | None = None
    status: str = "pending"
    files: list[str] = field(default_factory=list)
    error: str | None = None

    def manifest_line(self) -> str:
        return json.dumps({"job": self.index, "overrides": self.overrides, "prompt_id": self.prompt_id,
                           "status": self.status, "files": self.files, "error": self.error})


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "file"


def download_outputs(server, history: dict, job_dir: str, out_root: str) -> list[str]:
    """Download every file a finished prompt lists in its history (images, videos, latents...)."""
    files = []
    for node_id, outputs in sorted((history.get("outputs") or {}).items()):
        for key, items in outputs.items():
            if not isinstance(items, list):
                continue
            for item in items:
                if not (isinstance(item, dict) and "filename" in item):
                    continue
                kind = item.get("type", "output")
                data = server.view(item["filename"], item.get("subfolder", ""), kind)
                os.makedirs(job_dir, exist_ok=True)
                path = os.path.join(job_dir, f"{_safe(node_id)}_{_safe(item['filename'])}")
                with open(path, "wb") as f:
                    f.write(data)
                files.append(os.path.relpath(path, out_root))
    return files


def _execution_error_text(api: dict | None, data: dict) -> str:
    """An execution_error message as people read it: which node (its title where known) raised what."""
    nid = str(data.get("node_id", "?"))
    title = ((api or {}).get(nid, {}).get("_meta") or {}).get("title")
    return (f"node #{nid}{f' {title!r}' if title else ''} ({data.get('node_type', '')}) raised "
            f"{exception_name(data.get('exception_type'))}: {str(data.get('exception_message', '')).strip()}")


def exception_name(type_name: str | None) -> str:
    """An exception's type as ComfyUI reports it, without the filesystem path a custom node's
    module name carries (``/x/custom_nodes/Pack.mod.Error`` -> ``Error``)."""
    if not type_name:
        return "an error"
    if "/" in type_name or "\\" in type_name:
        return type_name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    return type_name


def run_batch(server, api: dict, jobs: list[dict], out_dir: str, keep_going: bool = False,
              progress: bool = True, log=print) -> list[JobResult]:
    """Queue every job with the server's one client id, follow them, download their outputs.

    Writes ``out_dir/manifest.jsonl`` as jobs finish. Raises JobFailed (after writing the
    manifest) when a job fails, at the first failure unless ``keep_going``. On Ctrl-C the
    running job is interrupted on the server and the jobs still queued are removed.
    """
    from tqdm import tqdm

    object_info = server.object_info()
    prompts = [apply_overrides(api, job, object_info) for job in jobs]  # check every job before queueing
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "manifest.jsonl")
    results = [JobResult(i, job) for i, job in enumerate(jobs)]
    by_prompt: dict[str, JobResult] = {}
    ws = server.open_websocket()
    manifest = open(manifest_path, "w", encoding="utf-8")
    bars: dict[str, Any] = {}

    def finish(result: JobResult, status: str, error: str | None = None):
        result.status, result.error = status, error
        manifest.write(result.manifest_line() + "\n")
        manifest.flush()
        bar = bars.pop(result.prompt_id, None)
        if bar is not None:
            if status == "success":
                bar.update(bar.total - bar.n)
            bar.close()
        if error:
            log(f"job {result.index}: {error}")

    def pending():
        return [r for r in results if r.status in ("queued", "running")]

    def stop_remaining(reason: str):
        ids = [r.prompt_id for r in pending()]
        server.delete_queued(ids)
        for pid in ids:
            server.interrupt(pid)
        for r in results:
            if r.status in ("queued", "running", "pending"):  # pending: never queued
                finish(r, "cancelled", reason)

    try:
        for result, prompt in zip(results, prompts):
            try:
                result.prompt_id = server.queue_prompt(prompt)
            except ValidationFailed as e:
                finish(result, "invalid", str(e))
                if not keep_going:
                    stop_remaining("cancelled: an earlier job was refused")
                    raise
                continue
            result.status = "queued"
            by_prompt[result.prompt_id] = result
            if progress:
                bars[result.prompt_id] = tqdm(total=len(prompt), desc=f"job {result.index + 1}/{len(jobs)}",
                                              unit="node", leave=True, position=len(bars))
        last_poll = time.monotonic()
        for msg in server.messages(ws):
            if not pending():
                break
            if time.monotonic() - last_poll > 5:  # one /history GET per pending job, so not every second
                last_poll = time.monotonic()
                _poll_history(server, pending(), finish, out_dir)
                if failed_stop(results, keep_going):
                    stop_remaining("cancelled: an earlier job failed")
                    break
            if msg is None:
                continue
            data = msg.get("data") or {}
            result = by_prompt.get(data.get("prompt_id"))
            if result is None or result.status not in ("queued", "running"):
                continue
            kind = msg.get("type")
            bar = bars.get(result.prompt_id)
            if kind == "execution_start":
                result.status = "running"
            elif kind == "execution_cached" and bar is not None:
                bar.update(len(data.get("nodes") or []))
            elif kind == "executing" and data.get("node") is not None and bar is not None:
                bar.update(1)
                node = api.get(str(data["node"]), {})
                bar.set_postfix_str((node.get("_meta") or {}).get("title", str(data["node"])))
            elif kind == "progress" and bar is not None:
                bar.set_postfix_str(f"step {data.get('value')}/{data.get('max')}")
            elif kind == "execution_success" or (kind == "executing" and data.get("node") is None):
                _collect(server, result, finish, out_dir)
            elif kind == "execution_error":
                finish(result, "error", _execution_error_text(api, data))
            elif kind == "execution_interrupted":
                finish(result, "interrupted", "interrupted on the server")
            if failed_stop(results, keep_going):
                stop_remaining("cancelled: an earlier job failed")
                break
    except KeyboardInterrupt:
        stop_remaining("cancelled by Ctrl-C")
        log(f"interrupted: stopped the running job and removed the queued ones; manifest: {manifest_path}")
        raise
    finally:
        for bar in bars.values():
            bar.close()
        manifest.close()
        ws.close()
    failed = [r for r in results if r.status != "success"]
    if failed:
        raise JobFailed(f"{len(failed)} of {len(results)} jobs did not succeed "
                        f"({', '.join(f'job {r.index}: {r.status}' for r in failed)}); see {manifest_path}")
    return results


def failed_stop(results, keep_going) -> bool:
    return not keep_going and any(r.status in ("error", "interrupted", "invalid") for r in results)


def _collect(server, result, finish, out_dir):
    hist = None
    for _ in range(50):  # history is written just after the success message
        hist = server.history(result.prompt_id)
        if hist and (hist.get("status") or {}).get("completed") is not None:
            break
        time.sleep(0.1)
    if not hist:
        finish(result, "error", "the server has no history for this job")
        return
    status = hist.get("status") or {}
    if status.get("status_str") == "error":
        finish(result, "error", _history_error(hist))
        return
    try:
        result.files = download_outputs(server, hist, os.path.join(out_dir, f"job{result.index:04d}"), out_dir)
    except ClientError as e:
        finish(result, "error", str(e))
        return
    finish(result, "success")


def _history_error(hist: dict) -> str:
    for kind, data in (hist.get("status") or {}).get("messages", []):
        if kind == "execution_error":
            return _execution_error_text(None, data)
    return "the job failed on the server"


def _poll_history(server, running, finish, out_dir):
    """Catch jobs whose websocket messages were missed (e.g. fully cached prompts)."""
    for result in running:
        hist = server.history(result.prompt_id)
        if not hist:
            continue
        status = hist.get("status") or {}
        if status.get("status_str") == "error":
            finish(result, "error", _history_error(hist))
        elif status.get("completed"):
            _collect(server, result, finish, out_dir)

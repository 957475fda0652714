"""Batches: expand sweeps (seeds, prompts, CSV rows) into jobs. Running them is ``runner.py``."""

from __future__ import annotations

import csv
import itertools
import re
from typing import Any

from .errors import ClientError, WorkflowError
from .workflow import find_positive_prompt, find_seed_inputs, parse_value


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

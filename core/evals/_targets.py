"""Eval targets: what a suite calls for each case. Each calls the same core function the feature uses, so an eval
measures the product, not a copy of it. Features register their own targets from `core/<feature>/_eval.py`
(`register_target`), so this package imports no feature; only the generic `llm.*` targets live here. LLM calls go
through the gateway with feature `eval` (task = the suite), so eval traffic is logged and priced but kept out of the
annotation queue and apart on the dashboard."""

from __future__ import annotations

import importlib
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import REPO_ROOT, get_settings
from core.errors import KeelError

if TYPE_CHECKING:  # core.llm is imported where it is used, so loading core.evals does not load the gateway
    from core.llm import Completion, LLMRequest


class EvalTargetError(KeelError, RuntimeError):
    """A target that cannot run here, or a case it cannot run; the message says which and why."""


@dataclass(frozen=True)
class RunOptions:
    model: str | None = None  # a tier name or "provider/model"
    prompt_version: str | None = None  # a prompt version hash, or a path to a candidate prompt file
    suite: str = ""
    settings: dict = field(default_factory=dict)


@dataclass
class TargetOutput:
    output: dict
    text: str
    latency_ms: float
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0


class Target:
    def prepare(self, options: RunOptions) -> None:
        """Check once, before any case runs, that this target can run with these options."""

    def model_label(self, options: RunOptions) -> str | None:
        return None

    def prompt_label(self, options: RunOptions) -> str | None:
        """How a run names the prompt it used (a version hash, and the candidate file's name if one was given)."""
        return (options.prompt_version or "")[-64:] or None

    def run(self, case, options: RunOptions) -> TargetOutput:
        raise NotImplementedError


# --- LLM-backed targets ---------------------------------------------------------------------------------------------


def llm_overrides(options: RunOptions, default_tier: str) -> dict:
    """--model M: a tier name routes through that tier's chain; "provider/model" pins one target."""
    from core.llm import get_gateway

    model = options.model
    if not model:
        return {"tier": default_tier}
    if len(model) > 128:
        raise EvalTargetError("a model name is at most 128 characters")
    gateway = get_gateway()
    if model in gateway.settings.tiers:
        return {"tier": model}
    if "/" in model and model.split("/", 1)[0] in gateway.providers:
        return {"tier": default_tier, "target": model}
    raise EvalTargetError(f"unknown model {model!r}; use a tier or provider/model: {', '.join(gateway.model_ids())}")


def tier_model_label(options: RunOptions, tier: str) -> str:
    chain = get_settings().tiers.get(tier) or [tier]
    return options.model or chain[0]


def complete(request: LLMRequest) -> tuple[Completion, float, float]:
    from core.llm import LLMError, get_gateway

    gateway = get_gateway()
    started = time.perf_counter()
    try:
        completion = gateway.complete(request)
    except LLMError as exc:
        raise EvalTargetError(f"LLM call failed: {exc}") from None
    latency = (time.perf_counter() - started) * 1000
    return completion, latency, completion.cost_usd


class LLMChat(Target):
    """The case's input as one user message (optional system prompt and JSON schema from the suite options)."""

    def prepare(self, options):
        llm_overrides(options, options.settings.get("tier", "fast"))

    def model_label(self, options):
        return tier_model_label(options, options.settings.get("tier", "fast"))

    def run(self, case, options):
        messages = [{"role": "user", "content": case.input}]
        if options.settings.get("system"):
            messages.insert(0, {"role": "system", "content": options.settings["system"]})
        return _chat(messages, options)


class LLMReplay(Target):
    """A logged call's input (as the request log renders it: `[role] content` blocks) sent again."""

    def prepare(self, options):
        llm_overrides(options, options.settings.get("tier", "capable"))

    def model_label(self, options):
        return tier_model_label(options, options.settings.get("tier", "capable"))

    def run(self, case, options):
        messages = parse_logged_input(case.input)
        if not messages:
            raise EvalTargetError("the case input holds no [role] message blocks")
        return _chat(messages, options)


def _chat(messages: list[dict], options: RunOptions) -> TargetOutput:
    from core.llm import LLMRequest

    schema = options.settings.get("json_schema")
    request = LLMRequest(messages=messages, feature="eval", task=options.suite[:64], user="eval",
                         max_tokens=int(options.settings.get("max_tokens", 128)), temperature=0.0,
                         json_schema=schema, **llm_overrides(options, options.settings.get("tier", "fast")))
    completion, latency, cost = complete(request)
    output = {"text": completion.text, "model": f"{completion.provider}/{completion.model}"}
    if schema is not None:
        output |= {"json": completion.json, "json_schema": schema}
    return TargetOutput(output=output, text=completion.text, latency_ms=latency, cost_usd=cost,
                        tokens_in=completion.tokens_in, tokens_out=completion.tokens_out)


_BLOCK = re.compile(r"^\[(system|user|assistant)\] ", re.MULTILINE)


def parse_logged_input(text: str) -> list[dict]:
    marks = list(_BLOCK.finditer(text or ""))
    messages = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        messages.append({"role": mark.group(1), "content": text[mark.end():end].rstrip("\n")})
    return messages


# --- Prompt versions --------------------------------------------------------------------------------------------


def resolve_prompt(prompt_id: str, version: str | None, *, repo: Path = REPO_ROOT):
    """The prompt as it is now, a candidate file (a path), or an earlier version found in the repo's git history."""
    from core.prompts import PromptError, load, parse

    current = load(prompt_id)
    if not version or version in ("current", current.version):
        return current
    path = Path(version)
    if path.suffix == ".md" or "/" in version:
        if not path.is_file():
            raise EvalTargetError(f"prompt file {version} does not exist")
        try:
            return parse(prompt_id, path.read_text(encoding="utf-8"))
        except (PromptError, UnicodeDecodeError) as exc:
            raise EvalTargetError(f"candidate prompt {version}: {exc}") from None
    if not re.fullmatch(r"[0-9a-f]{6,64}", version):
        raise EvalTargetError(f"prompt version {version!r} is neither a version hash nor a prompt file path")
    for raw in _git_versions(f"prompts/{prompt_id}.md", repo):
        candidate = parse(prompt_id, raw)
        if candidate.version.startswith(version):
            return candidate
    raise EvalTargetError(f"prompt {prompt_id} has no version {version} (current: {current.version}); "
                          "pass a prompt file path to try a candidate")


def _git_versions(relative: str, repo: Path, limit: int = 200) -> list[str]:
    try:
        revs = subprocess.run(["git", "log", f"-{limit}", "--format=%H", "--", relative], cwd=repo,
                              capture_output=True, text=True, timeout=20, check=True).stdout.split()
        texts = []
        for rev in revs:
            shown = subprocess.run(["git", "show", f"{rev}:{relative}"], cwd=repo, capture_output=True,
                                   text=True, timeout=20)
            if shown.returncode == 0:
                texts.append(shown.stdout)
        return texts
    except (OSError, subprocess.SubprocessError):
        return []


# --- LLM judge --------------------------------------------------------------------------------------------------

_JUDGE_SCHEMA = {"type": "object", "properties": {"pass": {"type": "boolean"}, "reason": {"type": "string"}},
                 "required": ["pass", "reason"]}


def capable_judge_available() -> bool:
    settings = get_settings()
    chain = settings.tiers.get("capable", [])
    return bool(chain) and settings.providers.get(chain[0].split("/", 1)[0]) is not None and \
        settings.providers[chain[0].split("/", 1)[0]].kind != "embedded"


def judge(rubric: str, answer: str) -> dict:
    from core.llm import LLMRequest
    from core.prompts import load

    prompt = load("ops/eval_judge")
    request = LLMRequest.from_prompt(prompt, {"rubric": rubric, "answer": answer[:8000]}, feature="eval",
                                     task="judge", json_schema=_JUDGE_SCHEMA, temperature=0.0)
    completion, _, _ = complete(request)
    return completion.json if isinstance(completion.json, dict) else {"pass": False, "reason": "judge gave no JSON"}


# --- The registry ---------------------------------------------------------------------------------------------------

TARGETS: dict[str, Target] = {"llm.chat": LLMChat(), "llm.replay": LLMReplay()}
_FEATURE_PACKAGES = Path(__file__).resolve().parent.parent  # core/


def register_target(name: str, target: Target) -> None:
    """A feature adds its targets from its own `_eval.py`; the name's first part is the feature's package."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z0-9_.-]+", name):
        raise ValueError(f"target name {name!r} must be <feature>.<what>, lower case")
    TARGETS[name] = target


def _load_feature(feature: str) -> None:
    """Import `core.<feature>._eval` (which registers the feature's targets) if that file exists. Done by name on
    first use, so `core.evals` has no import of any feature and features load only when a suite needs them."""
    if re.fullmatch(r"[a-z][a-z0-9_]*", feature) and feature != "cli" and \
            (_FEATURE_PACKAGES / feature / "_eval.py").is_file():
        importlib.import_module(f"core.{feature}._eval")


def get_target(name: str) -> Target:
    """The registered target called `name`, loading its feature's eval hooks if need be."""
    if name not in TARGETS and isinstance(name, str):
        _load_feature(name.partition(".")[0])
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise EvalTargetError(f"unknown target {name!r}; known: {sorted(TARGETS)} (a feature registers its "
                              "targets in core/<feature>/_eval.py)") from None

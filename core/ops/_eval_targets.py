"""Eval targets: what a suite calls for each case. Each calls the same core function the feature uses, so an eval
measures the product, not a copy of it. LLM calls go through the gateway with feature `eval` (task = the suite),
so eval traffic is logged and priced but kept out of the review queue and apart on the dashboard."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.config import REPO_ROOT, get_settings


class EvalTargetError(RuntimeError):
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


# --- Support (pure functions: no LLM unless the router consults one) ------------------------------------------------


class SupportClassify(Target):
    def prepare(self, options):
        _support()

    def model_label(self, options):
        return "intent-classifier"

    def run(self, case, options):
        support = _support()
        started = time.perf_counter()
        result = support.classify(case.input)
        latency = (time.perf_counter() - started) * 1000
        output = {"label": result.label, "confidence": round(float(result.confidence), 4)}
        return TargetOutput(output=output, text=result.label, latency_ms=latency)


class SupportRoute(Target):
    def prepare(self, options):
        _support()

    def model_label(self, options):
        return "intent-classifier+router"

    def run(self, case, options):
        support = _support()
        started = time.perf_counter()
        decision = support.plan_route(case.input, rephrased_already=bool(case.fields.get("rephrased_already")))
        latency = (time.perf_counter() - started) * 1000
        output = {"route": decision.route, "intent": decision.intent,
                  "confidence": round(float(decision.confidence), 4), "reason": decision.reason,
                  "branch": str(decision.branch) if getattr(decision, "branch", None) else None}
        return TargetOutput(output=output, text=decision.route, latency_ms=latency)


def _support():
    try:
        import core.support as support
    except ImportError as exc:
        raise EvalTargetError(f"the support subsystem is not available: {exc}") from None
    missing = [name for name in ("classify", "plan_route") if not hasattr(support, name)]
    if missing:
        raise EvalTargetError(f"core.support does not offer {', '.join(missing)}")
    return support


# --- LLM-backed targets ---------------------------------------------------------------------------------------------


def _llm_overrides(options: RunOptions, default_tier: str) -> dict:
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


def _model_label(options: RunOptions, tier: str) -> str:
    chain = get_settings().tiers.get(tier) or [tier]
    return options.model or chain[0]


def _complete(request) -> tuple[object, float, float]:
    from core.llm import LLMError, get_gateway

    gateway = get_gateway()
    started = time.perf_counter()
    try:
        completion = gateway.complete(request)
    except LLMError as exc:
        raise EvalTargetError(f"LLM call failed: {exc}") from None
    latency = (time.perf_counter() - started) * 1000
    cost = gateway.log.prices.cost(completion.provider, completion.model, completion.tokens_in, completion.tokens_out)
    return completion, latency, cost


class WorkspaceTask(Target):
    """A workspace AI task (action items, summarize, ...) on the case's text, with the task's own prompt file."""

    def prepare(self, options):
        from core.workspace import get_task

        task_id = options.settings.get("task")
        if task_id:
            get_task(task_id)
        _llm_overrides(options, "capable")
        if options.prompt_version and task_id:
            resolve_prompt(f"workspace/{task_id}", options.prompt_version)

    def model_label(self, options):
        return _model_label(options, "capable")

    def prompt_label(self, options):
        task_id = options.settings.get("task")
        if not options.prompt_version or not task_id:
            return super().prompt_label(options)
        prompt = resolve_prompt(f"workspace/{task_id}", options.prompt_version)
        if Path(options.prompt_version).is_file():
            return f"{prompt.version} ({Path(options.prompt_version).name})"[:64]
        return prompt.version

    def run(self, case, options):
        from core.llm import LLMRequest
        from core.workspace import WorkspaceError, get_task, prepare
        from core.workspace._run import clean_action_items, tidy_output

        task_id = case.fields.get("task") or options.settings.get("task")
        try:
            prepared = prepare(task_id, case.input, case.fields.get("page"), case.fields.get("params"))
        except WorkspaceError as exc:
            raise EvalTargetError(str(exc)) from None
        task = get_task(task_id)
        prompt = resolve_prompt(task.prompt_id, options.prompt_version) if options.prompt_version else task.prompt
        base = prepared.request(user="eval")
        request = LLMRequest.from_prompt(
            prompt, prepared.values, feature="eval", task=options.suite[:64], user="eval",
            json_schema=task.json_schema, max_tokens=min(base.max_tokens, prompt.max_tokens),
            temperature=0.0, **_llm_overrides(options, prompt.tier),
        )
        completion, latency, cost = _complete(request)
        if task.json_schema is not None:
            items = clean_action_items(completion.json, prepared.values["text"])
            output = {"json": completion.json, "json_schema": task.json_schema, "items": items}
            text = "\n".join(f"{i['task']} | {i.get('assignee') or ''} | {i.get('due') or ''}" for i in items)
        else:
            text = tidy_output(completion.text)
            output = {"text": text}
        output |= {"model": f"{completion.provider}/{completion.model}", "prompt_version": prompt.version}
        return TargetOutput(output=output, text=text, latency_ms=latency, cost_usd=cost,
                            tokens_in=completion.tokens_in, tokens_out=completion.tokens_out)


class LLMChat(Target):
    """The case's input as one user message (optional system prompt and JSON schema from the suite options)."""

    def prepare(self, options):
        _llm_overrides(options, options.settings.get("tier", "fast"))

    def model_label(self, options):
        return _model_label(options, options.settings.get("tier", "fast"))

    def run(self, case, options):
        messages = [{"role": "user", "content": case.input}]
        if options.settings.get("system"):
            messages.insert(0, {"role": "system", "content": options.settings["system"]})
        return _chat(messages, options)


class LLMReplay(Target):
    """A logged call's input (as the request log renders it: `[role] content` blocks) sent again."""

    def prepare(self, options):
        _llm_overrides(options, options.settings.get("tier", "capable"))

    def model_label(self, options):
        return _model_label(options, options.settings.get("tier", "capable"))

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
                         json_schema=schema, **_llm_overrides(options, options.settings.get("tier", "fast")))
    completion, latency, cost = _complete(request)
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


class CompletionFill(Target):
    """One fill-in-the-middle suggestion from the completion engine (no debounce, no cache: each case is fresh)."""

    def prepare(self, options):
        from core.completion import get_completion_service  # noqa: F401  (fails early if the engine is missing)

    def model_label(self, options):
        return _model_label(options, "code")

    def run(self, case, options):
        from core.completion import CompletionInputError, CompletionOptions, EditorState, get_completion_service

        prefix, suffix = case.input, str(case.fields.get("suffix", ""))
        state = EditorState(path=str(case.fields.get("path") or "snippet.py"), text=prefix + suffix,
                            cursor=len(prefix), files={}, open_paths=())
        session = get_completion_service().session("eval", f"eval-{options.suite}")
        started = time.perf_counter()
        try:
            done = session.complete(state, CompletionOptions(debounce_ms=0, use_cache=False, speculate=False,
                                                             max_tokens=int(options.settings.get("max_tokens", 48)),
                                                             time_cap_ms=float(options.settings.get("time_cap_ms",
                                                                                                    5000))))
        except CompletionInputError as exc:
            raise EvalTargetError(str(exc)) from None
        latency = (time.perf_counter() - started) * 1000
        text = done.get("completion") or ""
        return TargetOutput(output={"completion": text, "text": text}, text=text, latency_ms=latency)


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
    completion, _, _ = _complete(request)
    return completion.json if isinstance(completion.json, dict) else {"pass": False, "reason": "judge gave no JSON"}


TARGETS: dict[str, Target] = {
    "support.classify": SupportClassify(),
    "support.route": SupportRoute(),
    "workspace.task": WorkspaceTask(),
    "llm.chat": LLMChat(),
    "llm.replay": LLMReplay(),
    "completion.fill": CompletionFill(),
}


def register_target(name: str, target: Target) -> None:
    """Features that arrive later (completion, search, review) add their targets here."""
    TARGETS[name] = target


# --- Document search (core.search): retrieval only, no answer, so no model ------------------------------------------


class SearchRetrieve(Target):
    """Retrieval as a user with the case's `groups` and `clearance`: the source doc ids in rank order. A case's
    `forbidden_sources` coming back is an access failure, so the case fails with that reason."""

    def prepare(self, options):
        from core.search import sync_demo_corpus

        report = sync_demo_corpus()  # the cases are about the demo corpus; a hash check when it is indexed already
        if not report.ok:
            raise EvalTargetError(f"the demo corpus did not index cleanly: {report.refused}")

    def model_label(self, options):
        return "all-MiniLM-L6-v2+bm25"

    def run(self, case, options):
        from core.search import ForbiddenSourceRetrieved, SearchInputError, eval_retrieve

        started = time.perf_counter()
        try:
            output = eval_retrieve(case.input, case.fields.get("groups"), case.fields.get("clearance"),
                                   k=int(options.settings.get("k", 5)),
                                   forbidden=(case.expected or {}).get("forbidden_sources", ()))
        except (ForbiddenSourceRetrieved, SearchInputError, ValueError) as exc:
            raise EvalTargetError(str(exc)) from None
        latency = (time.perf_counter() - started) * 1000
        return TargetOutput(output=output, text=" ".join(output["sources"]), latency_ms=latency)


register_target("search.retrieve", SearchRetrieve())


# --- PR review (core.review): the sample PRs against the demo repository ---------------------------------------------


class ReviewFindings(Target):
    """Review the case's diff against the demo repository (cache and dismissals off): the comments as findings, and
    a text with one `path:line category severity` line per comment for the contains scorer."""

    def prepare(self, options):
        from core.review import DEMO_REPO

        if not DEMO_REPO.is_dir():
            raise EvalTargetError(f"the demo repository {DEMO_REPO} is missing")
        if options.settings.get("use_llm", True):
            _llm_overrides(options, "capable")

    def model_label(self, options):
        if not options.settings.get("use_llm", True):
            return "tools-only"
        return _model_label(options, "capable")

    def run(self, case, options):
        from core.llm import get_gateway
        from core.review import DEMO_REPO, ReviewError, ReviewOptions, review_diff

        review_options = ReviewOptions(use_llm=bool(options.settings.get("use_llm", True)), use_cache=False,
                                       apply_dismissals=False, user="eval", feature="eval", task=options.suite[:64],
                                       model=options.model or None)
        started = time.perf_counter()
        try:
            result = review_diff(case.input, DEMO_REPO, review_options)
        except ReviewError as exc:
            raise EvalTargetError(str(exc)) from None
        finally:
            get_gateway().log.flush()
        latency = (time.perf_counter() - started) * 1000
        findings = [{"path": c.path, "line": c.line, "also_at": c.also_at, "category": c.category,
                     "severity": c.severity, "source": c.source, "rule": c.rule} for c in result.comments]
        output = {"findings": findings, "verdict": result.verdict, "model": result.model,
                  "notes_added": result.stats.get("model_notes_added", 0),
                  "notes_rejected": result.stats.get("model_notes_rejected", 0), "notices": result.notices,
                  "branch": result.triage.get("branch")}
        text = "\n".join(f"{f['path']}:{f['line']} {f['category']} {f['severity']}" for f in findings)
        return TargetOutput(output=output, text=text, latency_ms=latency, cost_usd=result.cost_usd,
                            tokens_in=result.tokens_in, tokens_out=result.tokens_out)


register_target("review.findings", ReviewFindings())


class ReviewReal(Target):
    """A real-world recall case (data/review/real/<id>): the PR reviewed with its tiny repository checked out at the
    head (the CI way) or the base (`checkout` field), tools only; the output carries hits, misses and false
    positives for the review_bugs scorer and the per-class table of bench/review_real.py."""

    def model_label(self, options):
        return "tools-only"

    def run(self, case, options):
        from core.review import ReviewError
        from core.review._realsuite import get_real_case, review_real_case

        started = time.perf_counter()
        try:
            counts, result = review_real_case(get_real_case(case.input),
                                              str(case.fields.get("checkout") or options.settings.get("checkout",
                                                                                                      "head")))
        except ReviewError as exc:
            raise EvalTargetError(str(exc)) from None
        latency = (time.perf_counter() - started) * 1000
        text = "\n".join(f"{f['path']}:{f['line']} {f['category']} {f['severity']}" for f in counts["findings"])
        return TargetOutput(output={**counts, "branch": getattr(result, "triage", {}).get("branch")}, text=text,
                            latency_ms=latency)


register_target("review.real", ReviewReal())

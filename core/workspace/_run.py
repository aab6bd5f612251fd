"""Running a task: check membership and input, reserve a credit, stream through the gateway, settle or refund."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from core.auth import Principal
from core.llm import CancelToken, Chunk, get_gateway
from core.workspace._access import require_member, user_sub
from core.workspace._credits import Clock, Reservation, refund_credit, reserve_credit, settle_credit, utc_now
from core.workspace._tasks import PreparedTask, Truncation, prepare

_logger = logging.getLogger(__name__)


@dataclass
class TaskResult:
    task: str
    text: str  # the answer, ready to insert (stray <data> fences a small model may echo are removed)
    raw_text: str  # exactly what streamed
    request_id: str
    status: str  # ok | fallback (the gateway's status of the answering attempt)
    provider: str
    model: str
    prompt_id: str
    prompt_version: str
    output: str  # text | markdown | json
    tokens_in: int
    tokens_out: int
    ttft_ms: float | None
    latency_ms: float
    credits_left: int | None  # None: the workspace's plan is unlimited
    truncations: tuple[Truncation, ...] = ()
    items: list[dict[str, Any]] | None = None  # find_action_items only: the validated, cleaned list
    finish_reason: str | None = None

    @property
    def notice(self) -> str | None:
        """Exactly what was left out of an over-budget input, or None when everything was read."""
        return " ".join(t.message for t in self.truncations) or None

    @property
    def cut_off(self) -> bool:
        """The answer stopped at the task's max_tokens, so it may be incomplete."""
        return self.finish_reason == "length"


class TaskRun:
    """A started task. Iterate it for `Chunk`s: append `chunk.text`; on `chunk.reset` clear what was shown
    (a fallback model restarted the answer). Afterwards `result` holds the `TaskResult`.

    The credit was reserved when the run was created. It is kept when the answer completes and given back
    when the call fails, is cancelled (`cancel()`, from any thread), or the run is closed unfinished.
    """

    def __init__(self, prepared: PreparedTask, stream, reservation: Reservation, cancel: CancelToken):
        self.prepared = prepared
        self.task = prepared.task
        self.truncations = prepared.truncations
        self.reservation = reservation
        self.request_id = stream.request_id
        self.result: TaskResult | None = None
        self._stream = stream
        self._cancel = cancel
        self._gen = self._run()

    @property
    def notice(self) -> str | None:
        return self.prepared.notice

    @property
    def credits_left(self) -> int | None:
        return self.reservation.credits_left

    def __iter__(self):
        return self._gen

    def __next__(self) -> Chunk:
        return next(self._gen)

    def _run(self):
        try:
            for chunk in self._stream:
                yield chunk
        except BaseException as exc:  # failed, cancelled, or the consumer walked away: give the credit back
            if isinstance(exc, GeneratorExit):
                self._stream.close()  # the gateway logs the attempt as cancelled
            refund_credit(self.reservation, getattr(exc, "request_id", None) or self.request_id)
            raise
        completion = self._stream.result
        settle_credit(self.reservation, completion.request_id)
        items = None
        if self.task.json_schema is not None:
            items = clean_action_items(completion.json, self.prepared.values["text"])
        prompt = self.task.prompt
        text = completion.text if self.task.json_schema is not None else tidy_output(
            completion.text, keep_leading_space=self.task.id == "continue_writing")
        if self.task.rewrite:
            text = rewrite_output(text, one_line="\n" not in self.prepared.values["text"].strip())
        self.result = TaskResult(
            task=self.task.id, text=text, raw_text=completion.text, request_id=completion.request_id, status=completion.status,
            provider=completion.provider, model=completion.model, prompt_id=prompt.id,
            prompt_version=prompt.version, output=prompt.output, tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out, ttft_ms=completion.ttft_ms, latency_ms=completion.latency_ms,
            credits_left=self.reservation.credits_left, truncations=self.truncations, items=items,
            finish_reason=completion.finish_reason,
        )

    def text(self) -> str:
        """Consume the stream and return the final text (resets already applied)."""
        for _ in self._gen:
            pass
        if self.result is None:  # closed (or cancelled) before the answer finished: there is no text to give
            raise RuntimeError(f"workspace run {self.request_id} was closed before it finished, so it has no text")
        return self.result.text

    def cancel(self) -> None:
        self._cancel.cancel()

    def close(self) -> None:
        """Stop now; an unfinished run gives its credit back (also when it was never iterated)."""
        self._gen.close()
        self._stream.close()
        if self.result is None and self.reservation.status == "reserved":
            refund_credit(self.reservation, self.request_id)

    def __enter__(self) -> TaskRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            if self.result is None and self.reservation.status == "reserved":
                self.close()
        except Exception:  # a finalizer must not raise; the unreturned credit is worth a log line
            _logger.exception("closing an abandoned workspace run failed")


def run_task(who: Principal | str, workspace_id: str, task_id: str, selection: str | None,
             page: str | None = None, params: dict | None = None, *, cancel: CancelToken | None = None,
             max_tokens: int | None = None, clock: Clock = utc_now, gateway=None) -> TaskRun:
    """Start an AI task on a selection; returns a `TaskRun` to iterate for streamed chunks.

    Raises before any LLM call and without spending a credit: NotAMember, UnknownTask, EmptySelection,
    InvalidParam, SelectionTooLong, LLMError (a request the gateway refuses) and CreditsExhausted.
    The call is logged with feature "workspace", task = the task id, the prompt id and version,
    customer = the workspace and user = the member's subject.
    """
    require_member(who, workspace_id)
    sub = user_sub(who)
    prepared = prepare(task_id, selection, page, params)
    request = prepared.request(user=sub, customer=workspace_id, max_tokens=max_tokens)
    cancel = cancel or CancelToken()
    stream = (gateway or get_gateway()).stream(request, cancel)  # validates; nothing is sent until iterated
    reservation = reserve_credit(workspace_id, sub, prepared.task.id, clock=clock)
    return TaskRun(prepared, stream, reservation, cancel)


_FENCE_TAG = re.compile(r"[ \t]*</?\s*data\s*>[ \t]*\n?", re.IGNORECASE)


def tidy_output(text: str, *, keep_leading_space: bool = False) -> str:
    """Remove <data> fence tags the model echoed from its prompt, and the blank edges around the answer
    (a continuation keeps its leading space, so it joins the text it continues)."""
    text = _FENCE_TAG.sub("", text)
    if keep_leading_space:
        stripped = text.lstrip()
        return ((" " if stripped and text[:1] == " " else "") + stripped).rstrip()
    return text.strip()


_PREAMBLE = re.compile(r"^(here|sure|certainly|the (corrected|revised|rewritten|improved|translated|text)|"
                       r"corrected|revised|rewritten|improved|translated|translation|output)\b[^\n]{0,80}:\s*$",
                       re.IGNORECASE)


def rewrite_output(text: str, *, one_line: bool) -> str:
    """A rewrite replaces the selection, so drop a small model's preamble ("The text should read:") and, for a
    one-line selection, anything after the rewritten line (explanations, repeats)."""
    lines = text.split("\n")
    while len(lines) > 1 and (not lines[0].strip() or _PREAMBLE.match(lines[0].strip())):
        lines.pop(0)
    if one_line:
        lines = [next((line for line in lines if line.strip()), "")]
    return "\n".join(lines).strip().strip('"') if one_line else "\n".join(lines).strip()


_NULLS = {"", "null", "none", "n/a", "na", "nobody", "unknown", "unassigned", "tbd", "-"}
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def clean_action_items(parsed, source: str) -> list[dict[str, Any]]:
    """Tidy schema-valid items: drop empty and repeated tasks, and any assignee or due date the text does not
    contain (a small model invents them), so the checklist only shows what the notes say."""
    if isinstance(parsed, dict):
        parsed = parsed.get("items")
    if not isinstance(parsed, list):
        return []
    haystack = source.casefold()
    words = set(_WORD.findall(haystack))
    items, seen = [], set()
    for raw in parsed:
        if not isinstance(raw, dict):
            continue
        task = " ".join(str(raw.get("task") or "").split()).strip(" -*•")
        key = task.casefold()
        if not task or key in seen:
            continue
        seen.add(key)
        items.append({"task": task, "assignee": _grounded(raw.get("assignee"), haystack, words, whole=True),
                      "due": _grounded(raw.get("due"), haystack, words, whole=False)})
    return items


def _grounded(value, haystack: str, words: set[str], *, whole: bool) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split()).strip(" .,;:")
    if value.casefold() in _NULLS:
        return None
    if whole:  # a name must appear as written
        return value if value.casefold() in haystack else None
    # a date may be reworded, but only as far as its words come from the text: "June 30, 2023" becomes
    # "June 30" when the year was invented, and an invented timestamp disappears
    for match in _WORD.finditer(value.casefold()):
        if match.group() not in words:
            value = value[: match.start()].rstrip(" ,;:-/(")
            break
    return value or None

"""The gateway: tiers → targets, retries, circuit breakers, fallback, cancellation and the request log."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Generator, Iterator

import jsonschema

from core.config import Settings
from core.llm._budgets import BudgetBook, BudgetExceeded
from core.llm._log import _SURROGATE, LogEntry, RequestLogWriter, clean_text
from core.llm._providers import monotonic_ms
from core.llm._types import (
    BudgetRefused,
    CancelToken,
    Chunk,
    Completion,
    LLMCancelled,
    LLMError,
    LLMRequest,
    Provider,
    ProviderError,
    RequestStatus,
    Usage,
)

_MAX_LOGGED_CHARS = 20_000
MAX_INPUT_CHARS = 200_000
# A byte-level BPE token covers at least one UTF-8 byte, so bytes bound the tokens of any text; special tokens and
# chat-template text (role markers, a default system prompt) are covered by the overheads.
TOKENS_PER_MESSAGE_OVERHEAD = 8
TOKENS_PER_REQUEST_OVERHEAD = 128


def input_token_bound(request: LLMRequest) -> int:
    """A safe upper bound of the input tokens of `request`, without loading any tokenizer (the model runs in a
    worker process): UTF-8 bytes of every message plus per-message and per-request overhead."""
    if request.prompt is not None:
        return len(request.prompt.encode("utf-8", "surrogatepass")) + TOKENS_PER_REQUEST_OVERHEAD
    return TOKENS_PER_REQUEST_OVERHEAD + sum(
        len(str(m.get("content", "")).encode("utf-8", "surrogatepass"))
        + len(str(m.get("role", "")).encode("utf-8", "surrogatepass")) + TOKENS_PER_MESSAGE_OVERHEAD
        for m in request.messages)


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown_s` lets one trial call through."""

    def __init__(self, threshold: int, cooldown_s: float):
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.cooldown_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        with self._lock:
            state = self.state
            if state == "closed":
                return True
            if state == "half-open" and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at, self._trial_running = 0, None, False

    def release(self) -> None:
        """An attempt ended without a verdict (cancelled, abandoned): let the next trial through."""
        with self._lock:
            self._trial_running = False

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            self._trial_running = False
            if self.threshold and self.failures >= self.threshold:
                self.opened_at = time.monotonic()


class Gateway:
    """Every LLM call in Keel goes through `stream()` or `complete()`, and every attempt is logged."""

    def __init__(self, settings: Settings, providers: dict[str, Provider], log: RequestLogWriter):
        self.settings = settings
        self.providers = providers
        self.log = log
        self.breakers = {
            name: CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown_s) for name in providers
        }
        self.budgets = BudgetBook()

    # -- public surface -------------------------------------------------------------------------

    def targets(self, request: LLMRequest) -> list[str]:
        if request.target:
            return [request.target]
        if request.tier not in self.settings.tiers:
            raise LLMError(
                f"unknown tier {request.tier!r}; configured tiers: {', '.join(sorted(self.settings.tiers))}"
            )
        return list(self.settings.tiers[request.tier])

    def model_ids(self) -> list[str]:
        """Tier names first (what callers should use), then every concrete provider/model."""
        ids = list(self.settings.tiers)
        for chain in self.settings.tiers.values():
            ids.extend(t for t in chain if t not in ids)
        return ids

    def stream(self, request: LLMRequest, cancel: CancelToken | None = None) -> "LLMStream":
        """Validate now (bad input raises LLMError before anything is sent), stream when iterated."""
        self._validate(request)
        _repair_surrogates(request)
        self.targets(request)
        return LLMStream(self, request, cancel or CancelToken())

    def complete(self, request: LLMRequest, cancel: CancelToken | None = None) -> Completion:
        return self.stream(request, cancel)._finish()

    def cost(self, provider: str, model: str, tokens_in: int, tokens_out: int) -> float:
        """What these tokens cost at the price table the request log uses, so callers' figures match the log's."""
        return self.log.prices.cost(provider, model, tokens_in, tokens_out)

    def worst_case_cost(self, request: LLMRequest) -> float:
        """The most this request can cost on any target it may reach (what a budget holds while it runs)."""
        return self._worst_case_cost(request, self.targets(request))

    def reload_budgets(self) -> None:
        """Read budget definitions again on the next call instead of after the cache's few seconds."""
        self.budgets.invalidate()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued request-log row is committed; False if `timeout` passed first."""
        return self.log.flush(timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop the request-log writer (providers are closed by `core.llm.close_providers`)."""
        self.log.flush(timeout=timeout)
        self.log.close(timeout=timeout)

    def stats(self) -> dict:
        """The request-log writer's counters since start (rows written, failed = lost, quarantined, queued) and
        its failures within `window_s`, which health and the benches report."""
        return {"written": self.log.written, "failed": self.log.failed, "quarantined": self.log.quarantined,
                "queued": self.log.pending, "window_s": self.log.failure_window_s, **self.log.recent()}

    # -- the loop over targets ------------------------------------------------------------------

    def _validate(self, request: LLMRequest) -> None:
        if request.prompt is not None:
            if not isinstance(request.prompt, str):
                raise LLMError("prompt must be text")
            if len(request.prompt) > MAX_INPUT_CHARS:
                raise LLMError(f"the input is {len(request.prompt):,} characters; the limit is {MAX_INPUT_CHARS:,}")
            if not request.prompt.strip():
                raise LLMError("the prompt is empty")
            if not 1 <= request.max_tokens <= 8192:
                raise LLMError("max_tokens must be between 1 and 8192")
            return
        if not request.messages:
            raise LLMError("the request has no messages")
        size = 0
        for message in request.messages:
            if message.get("role") not in ("system", "user", "assistant"):
                raise LLMError(f"message role must be system, user or assistant, not {message.get('role')!r}")
            content = message.get("content")
            if not isinstance(content, str):
                raise LLMError("message content must be text")
            size += len(content)
        if size > MAX_INPUT_CHARS:
            raise LLMError(f"the input is {size:,} characters; the limit is {MAX_INPUT_CHARS:,}")
        if not request.messages[-1]["content"].strip():
            raise LLMError("the last message is empty")
        if not 1 <= request.max_tokens <= 8192:
            raise LLMError("max_tokens must be between 1 and 8192")

    def _run(self, request: LLMRequest, cancel: CancelToken,
             holder: "LLMStream") -> Generator[Chunk, None, None]:
        """Check budgets (holding this call's worst-case cost while it runs), then try the targets in order."""
        targets = self.targets(request)
        try:
            holds = self.budgets.reserve(request.customer, request.feature,
                                         lambda: self._worst_case_cost(request, targets), holder.request_id)
        except BudgetExceeded as exc:
            self._log(request, holder.request_id, 0, targets[0], time.time(), None, None, Usage(), 0.0, None,
                      RequestStatus.BUDGET_REFUSED, str(exc), _render_input(request), holder)
            raise BudgetRefused(str(exc), request_id=holder.request_id) from None
        try:
            yield from self._attempts(request, cancel, holder, targets)
        finally:
            # Queued after this request's last row: the writer deletes the holds in the transaction that commits
            # the cost, so the call never drops out of both the holds and the spend.
            self.log.release_holds(holds)

    def _worst_case_cost(self, request: LLMRequest, targets: list[str]) -> float:
        """The dearest target's price for the bounded input tokens plus every output token allowed."""
        tokens_in = input_token_bound(request)
        costs = [self.log.prices.cost(*_split(t), tokens_in, request.max_tokens) for t in targets]
        return max(costs or [0.0])

    def _attempts(self, request: LLMRequest, cancel: CancelToken, holder: "LLMStream",
                  targets: list[str]) -> Generator[Chunk, None, None]:
        request_id = holder.request_id
        errors: list[str] = []
        attempt = 0
        emitted_any = False
        input_text = _render_input(request)
        for index, target in enumerate(targets):
            provider_name, _, model = target.partition("/")
            provider = self.providers.get(provider_name)
            if provider is None:
                errors.append(f"{target}: provider {provider_name!r} is not configured")
                continue
            breaker = self.breakers[provider_name]  # one per configured provider, made with the gateway
            if not breaker.allow():
                message = f"{target}: circuit open after {breaker.failures} failures; skipped"
                errors.append(message)
                self._log(request, request_id, attempt, target, time.time(), None, None, Usage(),
                          0.0, None, RequestStatus.ERROR, message, input_text, holder)
                attempt += 1
                continue
            retries = 0
            while True:
                if cancel.cancelled:
                    breaker.release()
                    raise LLMCancelled(request_id)
                started_wall, started = time.time(), monotonic_ms()
                usage = Usage()
                pieces: list[str] = []
                ttft = None
                deltas = provider.stream(model, request, usage, cancel)
                try:
                    for text in deltas:
                        if ttft is None:
                            ttft = monotonic_ms() - started
                            if emitted_any:
                                yield Chunk(reset=True)
                            emitted_any = True
                        pieces.append(text)
                        yield Chunk(text=text)
                        if request.stop_when is not None and request.stop_when():
                            usage.finish_reason = "stop"  # the caller has what it needs: a normal end
                            break
                        if monotonic_ms() - started > self.settings.request_timeout_s * 1000:
                            raise ProviderError(
                                f"generation exceeded the {self.settings.request_timeout_s:g} s time limit"
                            )
                    output = "".join(pieces)
                    latency = monotonic_ms() - started
                    if cancel.cancelled:
                        self._log(request, request_id, attempt, target, started_wall, output, ttft, usage,
                                  latency, None, RequestStatus.CANCELLED, "cancelled by caller", input_text, holder)
                        breaker.success()
                        raise LLMCancelled(request_id)
                    parsed, json_valid = None, None
                    if request.json_schema is not None:
                        parsed, problem = _check_json(output, request.json_schema)
                        json_valid = problem is None
                        if problem:
                            raise _InvalidJSON(problem)
                    status = RequestStatus.OK if index == 0 and not errors else RequestStatus.FALLBACK
                    error_note = ("fell back after: " + " | ".join(errors)) if status == RequestStatus.FALLBACK else None
                    self._log(request, request_id, attempt, target, started_wall, output, ttft, usage, latency,
                              json_valid, status, error_note, input_text, holder)
                    breaker.success()
                    holder.result = Completion(
                        request_id=request_id, text=output, tier=request.tier, provider=provider_name,
                        model=model, status=status, tokens_in=usage.tokens_in, tokens_out=usage.tokens_out,
                        ttft_ms=ttft, latency_ms=latency, attempts=attempt + 1, json=parsed,
                        finish_reason=usage.finish_reason,
                        cost_usd=self.cost(provider_name, model, usage.tokens_in, usage.tokens_out),
                    )
                    return
                except LLMCancelled:
                    raise
                except (ProviderError, _InvalidJSON) as exc:
                    latency = monotonic_ms() - started
                    output = "".join(pieces)
                    if cancel.cancelled:  # the failure is the cancellation itself, not the provider's fault
                        self._log(request, request_id, attempt, target, started_wall, output, ttft, usage,
                                  latency, None, RequestStatus.CANCELLED, "cancelled by caller", input_text, holder)
                        breaker.release()
                        raise LLMCancelled(request_id) from None
                    json_valid = False if isinstance(exc, _InvalidJSON) else None
                    self._log(request, request_id, attempt, target, started_wall, output, ttft, usage, latency,
                              json_valid, RequestStatus.ERROR, str(exc), input_text, holder)
                    attempt += 1
                    if isinstance(exc, _InvalidJSON):
                        breaker.success()  # the server works; the model just produced bad output
                    else:
                        breaker.failure()
                    retryable = getattr(exc, "retryable", False)
                    if retryable and retries < self.settings.max_retries and not pieces and breaker.allow():
                        retries += 1
                        delay = exc.retry_after if exc.retry_after is not None else (
                            self.settings.retry_backoff_s * (2 ** (retries - 1)))
                        if _sleep_unless_cancelled(min(delay, 10.0), cancel):
                            breaker.release()
                            raise LLMCancelled(request_id)
                        continue
                    errors.append(f"{target}: {exc}")
                    break
                except GeneratorExit:
                    # the consumer walked away: record it as cancelled, truthfully
                    self._log(request, request_id, attempt, target, started_wall, "".join(pieces), ttft, usage,
                              monotonic_ms() - started, None, RequestStatus.CANCELLED, "stream closed by caller",
                              input_text, holder)
                    breaker.release()
                    raise
                finally:
                    deltas.close()
        raise LLMError(
            "all targets failed for tier "
            f"{request.tier!r}: " + " | ".join(errors or ["no target configured"]),
            request_id=request_id,
            attempts=errors,
        )

    def _log(self, request, request_id, attempt, target, started_wall, output, ttft, usage, latency,
             json_valid, status, error, input_text, holder: "LLMStream | None" = None) -> None:
        provider_name, _, model = target.partition("/")
        done = self.log.write(LogEntry(
            request_id=request_id, attempt=attempt, created_at=started_wall, feature=request.feature,
            task=request.task, prompt_id=request.prompt_id, prompt_version=request.prompt_version,
            tier=request.tier, provider=provider_name, model=model, user=request.user,
            customer=request.customer, input_text=input_text,
            output_text=(output or "")[:_MAX_LOGGED_CHARS] if output is not None else None,
            tokens_in=usage.tokens_in, tokens_out=usage.tokens_out, ttft_ms=ttft, latency_ms=latency,
            status=status, error=error, json_valid=json_valid, metadata=request.metadata,
        ), urgent=request.durable_log)
        if holder is not None:
            holder._logged = done  # the request's latest row; the last one written is the one to wait for


class LLMStream:
    """Iterate for `Chunk`s; afterwards `result` holds the `Completion`. `cancel()` works from any thread."""

    def __init__(self, gateway: Gateway, request: LLMRequest, cancel: CancelToken):
        self.request_id = uuid.uuid4().hex
        self.request = request
        self.result: Completion | None = None
        self._cancel = cancel
        self._logged: threading.Event | None = None
        self._gen = gateway._run(request, cancel, self)

    def __iter__(self) -> Iterator[Chunk]:
        return self._gen

    def cancel(self) -> None:
        self._cancel.cancel()

    def wait_logged(self, timeout: float = 5.0) -> bool:
        """Block until this request's last log row is committed (True), e.g. before an API sends its answer, so a
        crash right after the response cannot lose the row."""
        return self._logged.wait(timeout) if self._logged is not None else True

    def close(self) -> None:
        self._gen.close()

    def text(self) -> str:
        return self._finish().text

    def _finish(self) -> Completion:
        """Run to the end and return the result; a stream closed before it finished has none (LLMCancelled)."""
        for _ in self._gen:
            pass
        if self.result is None:  # closed early: the generator is spent without an answer
            raise LLMCancelled(self.request_id)
        return self.result


class _InvalidJSON(Exception):
    retryable = False
    retry_after = None


def _check_json(output: str, schema: dict):
    try:
        parsed = json.loads(output)
    except json.JSONDecodeError as exc:
        return None, f"output is not valid JSON ({exc.msg} at char {exc.pos})"
    try:
        jsonschema.validate(parsed, schema)
    except jsonschema.ValidationError as exc:
        return None, f"output does not match the schema: {exc.message}"
    return parsed, None


def _render_input(request: LLMRequest) -> str:
    if request.prompt is not None:
        return request.prompt[-_MAX_LOGGED_CHARS:]  # the end is where the cursor is
    text = "\n\n".join(f"[{m['role']}] {m.get('content', '')}" for m in request.messages)
    return text[:_MAX_LOGGED_CHARS]


def _repair_surrogates(request: LLMRequest) -> None:
    """Lone surrogates (valid in JSON, "\\ud800") cannot be encoded as UTF-8 for any provider or database: replace
    them with U+FFFD once, here, so one caller's text never fails the call or its log row."""
    if request.prompt is not None:
        if not request.prompt.isascii() and _SURROGATE.search(request.prompt):
            request.prompt = clean_text(request.prompt, None)
        return
    if any(not m["content"].isascii() and _SURROGATE.search(m["content"]) for m in request.messages):
        request.messages = [dict(m, content=clean_text(m["content"], None)) for m in request.messages]


def _split(target: str) -> tuple[str, str]:
    provider, _, model = target.partition("/")
    return provider, model


def _sleep_unless_cancelled(seconds: float, cancel: CancelToken) -> bool:
    return cancel._event.wait(seconds)

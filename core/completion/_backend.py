"""The engine's link to the model: every generation is a raw text completion through the Keel gateway
(feature `completion`), so it is logged, priced and cancellable like any other call."""

from __future__ import annotations

import hashlib

from core.completion._fim import template_for
from core.llm import CancelToken, LLMCancelled, LLMRequest, get_gateway


class GatewayRun:
    """One streaming generation: iterate for text deltas; `cancel()` from any thread stops it between tokens."""

    def __init__(self, gateway, request: LLMRequest):
        self._cancel = CancelToken()
        self._stream = gateway.stream(request, self._cancel)
        self.request_id = self._stream.request_id
        self.tokens_out = 0
        self.tokens_in = 0

    def __iter__(self):
        try:
            for chunk in self._stream:
                if chunk.reset:
                    continue
                if chunk.text:
                    self.tokens_out += 1
                    yield chunk.text
        except LLMCancelled:
            return
        result = self._stream.result
        if result is not None:
            self.tokens_out = result.tokens_out
            self.tokens_in = result.tokens_in

    def cancel(self) -> None:
        self._cancel.cancel()

    def close(self) -> None:
        self._stream.close()


class GatewayBackend:
    """Raw completions on the `code` tier; the FIM template follows the model the tier maps to."""

    def __init__(self, gateway=None, tier: str = "code", template: str | None = None, temperature: float = 0.0):
        self._gateway = gateway
        self.tier = tier
        self.temperature = temperature
        target = self.gateway.targets(LLMRequest(messages=[], tier=tier))[0]
        self.model = target
        # Only the embedded model keeps a file's evaluated prompt between calls (its KV state): warming a remote
        # provider that nobody asked for would cost a paid call and leave nothing behind.
        provider = getattr(self.gateway, "providers", {}).get(target.split("/", 1)[0])
        self.keeps_prompt_state = hasattr(provider, "kv_stats")
        self.template = template_for(target, template)
        # logged as the prompt id and version, so the dashboards can break completions down by template
        self.prompt_id = f"completion/{self.template.name}"
        self.prompt_version = hashlib.sha256(repr(self.template).encode()).hexdigest()[:12]

    @property
    def gateway(self):
        return self._gateway or get_gateway()

    def stream(self, prompt, *, max_tokens: int, cache_key: str, stop_when, user=None, customer=None,
               task: str = "fim", client: str | None = None) -> GatewayRun:
        request = LLMRequest(
            messages=[], prompt=prompt.text, tier=self.tier, feature="completion", task=task, user=user,
            prompt_id=self.prompt_id, prompt_version=self.prompt_version,
            customer=customer, max_tokens=max_tokens, temperature=self.temperature, stop=list(prompt.stop) or None,
            cache_key=f"completion:{user or '-'}:{cache_key}", stop_when=stop_when,
            metadata={"client": client} if client else None,
        )
        return GatewayRun(self.gateway, request)

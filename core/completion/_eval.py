"""The completion engine's eval target (`completion.fill`), registered with core.evals: one fill-in-the-middle
suggestion per case, no debounce and no cache, so each case is fresh."""

from __future__ import annotations

import time

from core.evals import EvalTargetError, Target, TargetOutput, register_target, tier_model_label


class CompletionFill(Target):
    """One fill-in-the-middle suggestion from the completion engine (no debounce, no cache: each case is fresh)."""

    def prepare(self, options):
        from core.completion import get_completion_service  # noqa: F401  (fails early if the engine is missing)

    def model_label(self, options):
        return tier_model_label(options, "code")

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


register_target("completion.fill", CompletionFill())

"""PR review's eval hooks, registered with core.evals (which imports no feature): the `review.findings` target (the
sample PRs against the demo repository), the `review.real` target (real-world recall cases) and the agent's branches
for branch coverage."""

from __future__ import annotations

import time

from core.evals import Agent, EvalTargetError, Target, TargetOutput, llm_overrides, register_branches, register_target
from core.evals import tier_model_label
from core.review._agent import ReviewBranch


class ReviewFindings(Target):
    """Review the case's diff against the demo repository (cache and dismissals off): the comments as findings, and
    a text with one `path:line category severity` line per comment for the contains scorer."""

    def prepare(self, options):
        from core.review import DEMO_REPO

        if not DEMO_REPO.is_dir():
            raise EvalTargetError(f"the demo repository {DEMO_REPO} is missing")
        if options.settings.get("use_llm", True):
            llm_overrides(options, "capable")

    def model_label(self, options):
        if not options.settings.get("use_llm", True):
            return "tools-only"
        return tier_model_label(options, "capable")

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
            get_gateway().flush()
        latency = (time.perf_counter() - started) * 1000
        findings = [{"path": c.path, "line": c.line, "also_at": c.also_at, "category": c.category,
                     "severity": str(c.severity), "source": c.source, "rule": c.rule} for c in result.comments]
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


register_branches(Agent.REVIEW, ReviewBranch)

"""The eval hooks (the `search.retrieve` target, registered with core.evals): one labelled question retrieved as a user with the case's groups and clearance (channel `eval`,
audited like every retrieval), answered with the doc ids in rank order; a forbidden document retrieved is an error."""

from __future__ import annotations

import time

from core.evals import EvalTargetError, Target, TargetOutput, register_target
from core.search._access import principal_for
from core.search._retrieve import retrieve


class ForbiddenSourceRetrieved(RuntimeError):
    """A document the case's user may not see came back: an access failure, never a quality dip."""


def eval_retrieve(question: str, groups, clearance, *, k: int = 5, forbidden=(), user: str = "eval:search") -> dict:
    principal = principal_for(user, groups or [], int(clearance) if clearance is not None else 0)
    result = retrieve(principal, question, k=k, per_doc=1, channel="eval", use_llm_expansion=False)
    sources = result.doc_ids
    leaked = sorted(set(sources) & set(forbidden or ()))
    if leaked:
        raise ForbiddenSourceRetrieved(f"retrieved forbidden source(s) {leaked} for groups {sorted(principal.groups)}"
                                       f" and clearance {principal.clearance}")
    return {"sources": sources, "covered": result.covered, "best_similarity": result.best_similarity,
            "filter": result.filter_expr}


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
        from core.search import SearchInputError

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

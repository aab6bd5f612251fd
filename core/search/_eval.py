"""The eval hook: one labelled question retrieved as a user with the case's groups and clearance (channel `eval`,
audited like every retrieval), answered with the doc ids in rank order; a forbidden document retrieved is an error."""

from __future__ import annotations

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

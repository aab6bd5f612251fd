"""The eval case store: cases collected at run time (annotation queue, support escalations, investigations, decay
clusters, by hand), kept in SQL apart from the curated datasets in the repo; evals run them in their own segments."""

from __future__ import annotations

import json
import time
from enum import StrEnum

from sqlmodel import col, select

from core import db
from core.evals._runner import EvalError, get_suite, saved_id
from core.tables import EvalCase



class CaseSource(StrEnum):
    """Where a collected case came from (stored in `eval_case.source`; `review_queue` is the annotation queue's old
    name, kept so stored cases keep their label)."""

    ANNOTATION = "review_queue"
    SUPPORT_ESCALATION = "support_escalation"
    MANUAL = "manual"
    INVESTIGATION = "investigation"
    DECAY = "decay"


CASE_SOURCES = tuple(str(s) for s in CaseSource)
MAX_NOTE_CHARS = 4000
MAX_CASE_INPUT_CHARS = 100_000


def add_eval_case(suite: str, input: str, expected: dict, notes: str = "", *, source: str,
                  source_ref: str | None = None, created_by: str | None = None, rubric_version: str | None = None,
                  labelled_by: str | None = None) -> int:
    """Store a collected case for `suite`; evals run it in its own segment, labelled with its source."""
    get_suite(suite)  # raises EvalError naming the known suites
    if source not in CASE_SOURCES:
        raise EvalError(f"source must be one of {', '.join(CASE_SOURCES)}, not {source!r}")
    if not isinstance(expected, dict) or not expected:
        raise EvalError("expected must be a non-empty object, e.g. {\"intent\": \"BILLING\"}")
    text = _clean_text(input, "input", MAX_CASE_INPUT_CHARS)
    if not text.strip():
        raise EvalError("an eval case needs a non-empty input")
    case = EvalCase(suite=suite, input_text=text, expected=json.dumps(expected, ensure_ascii=False),
                    notes=_clean_text(notes or "", "notes", MAX_NOTE_CHARS), source=str(source),
                    source_ref=(source_ref or None) and str(source_ref)[:128], created_by=created_by,
                    created_at=time.time(), rubric_version=(rubric_version or None) and str(rubric_version)[:32],
                    labelled_by=(labelled_by or created_by or None) and str(labelled_by or created_by)[:255])
    with db.session() as session:
        session.add(case)
        session.commit()
        session.refresh(case)
        return saved_id(case.id)


def list_eval_cases(suite: str | None = None, source: str | None = None) -> list[dict]:
    stmt = select(EvalCase).order_by(col(EvalCase.created_at).desc())
    if suite:
        stmt = stmt.where(EvalCase.suite == suite)
    if source:
        stmt = stmt.where(EvalCase.source == source)
    with db.session() as session:
        return [c.model_dump() | {"expected": json.loads(c.expected or "{}")} for c in session.exec(stmt).all()]


def delete_eval_case(case_id: int) -> bool:
    with db.session() as session:
        case = session.get(EvalCase, case_id)
        if case is None:
            return False
        session.delete(case)
        session.commit()
        return True


def _clean_text(value, what: str, limit: int) -> str:
    if isinstance(value, bytes):
        raise EvalError(f"{what} must be text, not bytes")
    value = str(value).replace("\x00", "")
    if len(value) > limit:
        raise EvalError(f"{what} is {len(value):,} characters; the limit is {limit:,}")
    return value

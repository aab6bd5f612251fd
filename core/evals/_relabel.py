"""Annotation drift: every eval case carries the rubric version it was labelled under and who labelled it, and a
re-label audit samples k cases of a suite, hides their old labels, collects new ones and reports agreement
(Cohen's kappa) and the disagreements. Cases labelled under an older rubric than the suite's current one are marked.

Rubrics live in `rubrics.toml` next to the suites file: `[suite] version = "2"`, `rubric = "how to label"`.
Dataset rows carry `rubric_version` and `labelled_by`; collected cases keep them in `eval_case`.
"""

from __future__ import annotations

import random
import time
import tomllib
from collections import Counter
from enum import StrEnum
from typing import Any

from sqlmodel import col, select

from core import db
from core.errors import KeelError
from core.tables import RelabelAudit, RelabelItem

LABEL_KEYS = ("label", "intent", "route")  # a categorical expected value the audit can compare
MAX_K = 200


class AuditStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class RelabelError(KeelError, ValueError):
    """An audit or label that cannot be taken; nothing was stored."""


def rubrics() -> dict[str, dict]:
    from core.evals._runner import suites_file

    path = suites_file().parent / "rubrics.toml"
    if not path.is_file():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RelabelError(f"{path}: not valid TOML: {exc}") from None
    out = {}
    for suite, spec in raw.items():
        if not isinstance(spec, dict) or not str(spec.get("version", "")).strip():
            raise RelabelError(f"{path}: [{suite}] needs a version")
        out[suite] = {"version": str(spec["version"]).strip()[:32], "rubric": str(spec.get("rubric", ""))}
    return out


def current_rubric(suite: str) -> str:
    return rubrics().get(suite, {}).get("version", "1")


def _label_of(expected: dict) -> str | None:
    for key in LABEL_KEYS:
        if isinstance(expected.get(key), str):
            return expected[key]
    return None


def case_annotations(suite_name: str) -> list[dict]:
    """Every case of a suite with its rubric version, labeller and whether it predates the current rubric."""
    from core.evals._runner import get_suite, load_cases
    from core.tables import EvalCase

    suite = get_suite(suite_name)
    cases = load_cases(suite)
    with db.session() as s:
        collected = {f"{c.source}:{c.id}": c for c in s.exec(select(EvalCase).where(EvalCase.suite == suite.name)).all()}
    current = current_rubric(suite.name)
    out = []
    for case in cases:
        row = collected.get(case.id)
        version = (row.rubric_version if row else case.fields.get("rubric_version")) or None
        by = (row.labelled_by if row else case.fields.get("labelled_by")) or None
        out.append({"case_id": case.id, "source": case.source, "label": _label_of(case.expected),
                    "rubric_version": version, "labelled_by": by,
                    "outdated": version is None or str(version) != current, "current_rubric": current})
    return out


def annotation_summary() -> list[dict]:
    """Per suite: cases, how many predate the current rubric, labellers, and the latest audit's kappa."""
    from core.evals._runner import EvalError, load_suites

    latest: dict[str, dict] = {}
    for done in list_audits():
        if done["status"] == AuditStatus.DONE:
            latest.setdefault(done["suite"], done)
    out: list[dict[str, Any]] = []
    for name in load_suites():
        try:
            cases = case_annotations(name)
        except EvalError as exc:
            out.append({"suite": name, "error": str(exc)})
            continue
        audit = latest.get(name)
        report = audit_report(audit["id"]) if audit else None
        out.append({"suite": name, "cases": len(cases), "outdated": sum(c["outdated"] for c in cases),
                    "current_rubric": cases[0]["current_rubric"] if cases else current_rubric(name),
                    "labellers": dict(Counter(c["labelled_by"] or "unknown" for c in cases)),
                    "auditable": any(c["label"] for c in cases),
                    "kappa": report["kappa"] if report else None, "audit_id": audit["id"] if audit else None})
    return out


CASE_ID_MAX = 128  # relabel_item.case_id


def start_audit(suite_name: str, k: int, *, created_by: str | None = None, seed: int | None = None) -> int:
    """Sample k labelled cases of the suite into a new audit (all rows in one transaction)."""
    from core.evals._runner import get_suite, load_cases, saved_id

    suite = get_suite(suite_name)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RelabelError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    labelled = [(c, label) for c in load_cases(suite) if (label := _label_of(c.expected))]
    if not labelled:
        raise RelabelError(f"suite {suite.name} has no categorical label ({', '.join(LABEL_KEYS)}) to re-label")
    if k > len(labelled):
        raise RelabelError(f"suite {suite.name} has {len(labelled)} labelled cases; k={k} is more")
    # An audit item's case id column holds 128 characters; a longer id could be stored but never found again.
    too_long = [c.id for c, _ in labelled if len(c.id) > CASE_ID_MAX]
    if too_long:
        raise RelabelError(f"suite {suite.name} has case ids longer than {CASE_ID_MAX} characters, which an audit "
                           f"cannot hold (first: {too_long[0][:40]!r}…); shorten them in the dataset")
    notes = {a["case_id"]: a for a in case_annotations(suite.name)}
    sample = random.Random(seed).sample(labelled, k)
    with db.session() as s:
        audit = RelabelAudit(suite=suite.name, k=k, rubric_version=current_rubric(suite.name),
                             status=AuditStatus.OPEN, created_by=created_by, created_at=time.time())
        s.add(audit)
        s.flush()
        audit_id = saved_id(audit.id)
        for position, (case, label) in enumerate(sample):
            note = notes.get(case.id, {})
            s.add(RelabelItem(audit_id=audit_id, case_id=case.id, position=position,
                              input_text=case.input[:20_000], old_label=label[:128],
                              old_labelled_by=note.get("labelled_by"), old_rubric_version=note.get("rubric_version")))
        s.commit()
        return audit_id


def suite_labels(suite_name: str) -> list[str]:
    from core.evals._runner import get_suite, load_cases

    return sorted({label for c in load_cases(get_suite(suite_name)) if (label := _label_of(c.expected))})


def audit_items(audit_id: int, *, reveal: bool = False) -> list[dict]:
    """The audit's cases in order; the old label is hidden until the audit is done (or `reveal`)."""
    audit = get_audit(audit_id)
    show = reveal or audit["status"] == AuditStatus.DONE
    with db.session() as s:
        rows = s.exec(select(RelabelItem).where(RelabelItem.audit_id == audit_id)
                      .order_by(col(RelabelItem.position))).all()
    out = []
    for r in rows:
        d = r.model_dump()
        if not show:
            for key in ("old_label", "old_labelled_by", "old_rubric_version"):
                d.pop(key)
        out.append(d)
    return out


def record_label(audit_id: int, case_id: str, label: str, *, labelled_by: str) -> dict:
    """Store one new label; the audit is done when every case has one."""
    audit = get_audit(audit_id)
    if audit["status"] == AuditStatus.DONE:
        raise RelabelError(f"audit {audit_id} is finished")
    label = str(label or "").strip()
    allowed = suite_labels(audit["suite"])
    if label not in allowed:
        raise RelabelError(f"label must be one of {', '.join(allowed)}, not {label!r}")
    if not str(labelled_by or "").strip():
        raise RelabelError("who is labelling? labelled_by is required")
    with db.session() as s:
        item = s.get(RelabelItem, (audit_id, case_id))
        if item is None:
            raise RelabelError(f"case {case_id!r} is not in audit {audit_id}")
        item.new_label, item.labelled_by, item.labelled_at = label, str(labelled_by)[:255], time.time()
        s.add(item)
        s.commit()
        left = s.exec(select(RelabelItem.case_id).where(RelabelItem.audit_id == audit_id,
                                                        col(RelabelItem.new_label).is_(None))).first()
        if left is None:
            row = s.get(RelabelAudit, audit_id)
            if row is None:
                raise RelabelError(f"no re-label audit {audit_id}")
            row.status, row.finished_at = AuditStatus.DONE, time.time()
            s.add(row)
            s.commit()
    return get_audit(audit_id)


def get_audit(audit_id: int) -> dict:
    with db.session() as s:
        row = s.get(RelabelAudit, audit_id)
        if row is None:
            raise RelabelError(f"no re-label audit {audit_id}")
        labelled = len(s.exec(select(RelabelItem.case_id).where(RelabelItem.audit_id == audit_id,
                                                                col(RelabelItem.new_label).is_not(None))).all())
    return row.model_dump() | {"labelled": labelled}


def list_audits(suite: str | None = None) -> list[dict]:
    stmt = select(RelabelAudit).order_by(col(RelabelAudit.created_at).desc(), col(RelabelAudit.id).desc())
    if suite:
        stmt = stmt.where(RelabelAudit.suite == suite)
    with db.session() as s:
        return [r.model_dump() for r in s.exec(stmt).all()]


def cohens_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Agreement beyond chance between two labellings of the same items (1 = perfect, 0 = chance)."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[k] * second[k] for k in set(first) | set(second)) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return round((observed - expected) / (1 - expected), 4)


def audit_report(audit_id: int) -> dict:
    """Kappa and raw agreement over the labelled cases, and every disagreement with both labels."""
    audit = get_audit(audit_id)
    items = [i for i in audit_items(audit_id, reveal=True) if i["new_label"] is not None]
    pairs = [(i["old_label"], i["new_label"]) for i in items]
    return {"audit": audit, "labelled": len(items), "kappa": cohens_kappa(pairs),
            "agreement": round(sum(a == b for a, b in pairs) / len(pairs), 4) if pairs else None,
            "disagreements": [{"case_id": i["case_id"], "input": i["input_text"][:300], "old": i["old_label"],
                               "new": i["new_label"], "old_labelled_by": i["old_labelled_by"],
                               "old_rubric_version": i["old_rubric_version"], "labelled_by": i["labelled_by"]}
                              for i in items if i["old_label"] != i["new_label"]]}

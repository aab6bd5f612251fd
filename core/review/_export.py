"""Exports of a review: a GitHub pull-request review (the body of POST /repos/{o}/{r}/pulls/{n}/reviews) and
SARIF 2.1.0 (for code-scanning dashboards and reviewdog)."""

from __future__ import annotations

from core.review._comments import Comment, Severity

_EVENT = {"request_changes": "REQUEST_CHANGES", "comment": "COMMENT", "approve": "APPROVE"}
_LEVEL = {Severity.BLOCKER: "error", Severity.MAJOR: "error", Severity.MINOR: "warning", Severity.NIT: "note"}


def comment_body(c: Comment) -> str:
    parts = [f"**{c.severity} · {c.category}** — {c.message}"]
    if c.explanation:
        parts.append(c.explanation)
    if c.suggestion:
        parts.append(f"Suggested fix: {c.suggestion}")
    if c.also_at:
        parts.append("Also at lines " + ", ".join(map(str, c.also_at)) + ".")
    parts.append(f"<sub>{c.source} · {c.rule or 'model'} · confidence {c.confidence:.2f}</sub>")
    return "\n\n".join(parts)


def github_review(result) -> dict:
    """Comments anchored on the new side (RIGHT) of their line; the verdict becomes the review event."""
    return {
        "body": result.summary + (f"\n\n{result.model_summary}" if result.model_summary else ""),
        "event": _EVENT.get(result.verdict, "COMMENT"),
        "comments": [{"path": c.path, "line": c.line, "side": "RIGHT", "body": comment_body(c)}
                     for c in result.comments],
    }


def sarif(result) -> dict:
    rules: dict[str, dict] = {}
    results = []
    for c in result.comments:
        rule_id = (c.rule.split(", ")[0] if c.rule else "model") or "model"
        rules.setdefault(rule_id, {"id": rule_id, "name": rule_id.replace(":", "_"),
                                   "shortDescription": {"text": f"{c.category} ({rule_id})"},
                                   "properties": {"category": c.category}})
        text = c.message + (f" Suggested fix: {c.suggestion}" if c.suggestion else "")
        results.append({
            "ruleId": rule_id,
            "level": _LEVEL.get(c.severity, "warning"),
            "message": {"text": text},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": c.path},
                                                "region": {"startLine": c.line}}}],
            "partialFingerprints": {"keelReview/v1": c.fingerprint},
            "properties": {"severity": str(c.severity), "category": c.category, "source": c.source,
                           "confidence": c.confidence},
        })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "keel-review", "informationUri": "https://keel.dev/review",
                                      "rules": list(rules.values())}},
                  "results": results}],
    }

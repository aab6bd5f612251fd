"""The handoff's LLM summary as a delayed durable job: queued a few seconds after the handoff (so the customer's
page and the agent's queue show the handoff first), run by whichever replica's worker is free, and never lost
with the process that handed off (the extractive summary stays if the model fails)."""

from __future__ import annotations

from core import jobs
from core.jobs import JobContext

KIND = "support_summary"


@jobs.kind(KIND, max_attempts=2)  # safe to run again: it only replaces the summary
def summarize(ctx: JobContext, conversation_id: int) -> dict:
    from core.support._console import improve_summary

    return {"conversation_id": conversation_id, "improved": bool(improve_summary(int(conversation_id)))}


def schedule_summary(conversation_id: int, delay_s: float) -> str:
    job_id, _ = jobs.submit(KIND, {"conversation_id": int(conversation_id)}, owner="support",
                            label=f"handoff summary #{conversation_id}", dedupe_key=str(conversation_id),
                            delay_s=delay_s)
    return job_id

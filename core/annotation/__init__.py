"""The annotation queue: people mark a sampled share of answered LLM calls good or bad and turn marked calls into
eval cases. Named apart from PR review (core.review) on purpose; the stored table is still `review_item`."""

from core.annotation._queue import (
    VERDICTS, AnnotationError, AnnotationSource, mark_review, queue_for_review, review_counts, review_queue,
    review_to_eval_case, review_total,
)

__all__ = [
    "VERDICTS", "AnnotationError", "AnnotationSource", "mark_review", "queue_for_review", "review_counts",
    "review_queue", "review_to_eval_case", "review_total",
]

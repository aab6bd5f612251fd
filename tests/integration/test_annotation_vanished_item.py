"""A reviewed call whose queue item is removed (a demo clear) while it is being turned into an eval case: the case is
kept and its id returned, on SQLite and PostgreSQL, instead of a crash on the missing row."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlmodel import delete

from core import config, db
from core.annotation import _queue, mark_review, queue_for_review, review_to_eval_case
from core.evals import list_eval_cases
from core.llm import latency_bucket, record_log_rows
from core.tables import ReviewItem


@pytest.fixture
def suites(database, tmp_path, monkeypatch):
    (tmp_path / "chat.jsonl").write_text(json.dumps({"id": "hi", "input": "[user] Say hello",
                                                     "expected": {"contains": ["hello"]}}) + "\n")
    (tmp_path / "suites.toml").write_text('[chat]\nfeature = "playground"\ntarget = "llm.chat"\n'
                                          'dataset = "chat.jsonl"\nscorers = ["contains"]\nmin_score = 0.1\n')
    monkeypatch.setenv("KEEL_EVAL_SUITES", str(tmp_path / "suites.toml"))
    config.reset_settings()


def _answered_call() -> str:
    request_id = uuid.uuid4().hex
    row = dict(request_id=request_id, attempt=0, created_at=time.time(), feature="playground", task="chat",
               prompt_id=None, prompt_version=None, tier="fast", provider="p", model="m1", user="u@example.com",
               customer="c1", input_text="[user] Say hello", output_text="bye", tokens_in=3, tokens_out=1,
               ttft_ms=5.0, latency_ms=9.0, latency_bucket=latency_bucket(9.0), cost_usd=0.0, status="ok",
               error=None, refusal=False, json_valid=None, metadata_json=None)
    with db.get_engine().begin() as conn:
        record_log_rows(conn, [row])
    return request_id


def test_the_case_is_kept_when_the_queue_item_vanishes_meanwhile(suites, monkeypatch):
    request_id = _answered_call()
    assert queue_for_review([request_id]) == [request_id]
    mark_review(request_id, "bad", "should greet", reviewer="rev")
    real_add = _queue.add_eval_case

    def add_then_clear_the_queue(*args, **kwargs) -> int:
        case_id = real_add(*args, **kwargs)
        with db.session() as s:  # what a demo clear does to the queue between the two transactions
            s.exec(delete(ReviewItem).where(ReviewItem.request_id == request_id))
            s.commit()
        return case_id

    monkeypatch.setattr(_queue, "add_eval_case", add_then_clear_the_queue)
    case_id = review_to_eval_case(request_id, "chat", {"contains": ["hello"]}, created_by="rev")
    (case,) = list_eval_cases("chat")
    assert case["id"] == case_id and case["source_ref"] == request_id and case["notes"] == "should greet"
    with db.session() as s:
        assert s.get(ReviewItem, request_id) is None

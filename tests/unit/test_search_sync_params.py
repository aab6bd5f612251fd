"""The parameters of a queued search sync keep the caller's allow-list exactly: an empty list means "no folder is
allowed", and must not turn into None, which means "no restriction"."""

from __future__ import annotations

from pathlib import Path

from core.search._jobs import sync_params


def test_an_empty_allow_list_stays_a_restriction():
    assert sync_params("/data/docs", []) == {"root": "/data/docs", "allowed_roots": []}


def test_no_allow_list_means_no_restriction_and_a_list_is_kept():
    assert sync_params("/data/docs", None)["allowed_roots"] is None
    assert sync_params(Path("/data/docs"), [Path("/data"), Path("/srv")]) == {
        "root": "/data/docs", "allowed_roots": ["/data", "/srv"]}


def test_a_sync_queued_with_an_empty_allow_list_is_refused(keel_home, tmp_path):
    from core import jobs
    from core.jobs import JobStatus
    from core.search import start_background_sync

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nSome text.\n")
    job = start_background_sync(docs, started_by="ivan", allowed_roots=[])
    done = jobs.wait(job.id, 60)
    assert done.params["allowed_roots"] == []
    assert done.status == JobStatus.FAILED and "outside the folders" in done.error

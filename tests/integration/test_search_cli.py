"""`keel search ingest|ask|audit` as real subprocesses against a fresh data directory."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.search._pdfwrite import simple_pdf

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def keel(tmp_path):
    home = tmp_path / "keel"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update({"KEEL_HOME": str(home), "HF_HUB_OFFLINE": "1", "USER": "tester"})

    def run(*args, timeout: float = 300):
        return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=REPO, capture_output=True,
                              timeout=timeout, text=True)

    run.home = home
    return run


def make_folder(root: Path) -> Path:
    docs = root / "docs"
    (docs / "ops").mkdir(parents=True)
    (docs / "ops" / "pager.md").write_text("---\ntitle: Pager policy\naccess_groups: [engineering]\n"
                                           "clearance_level: 1\n---\nThe pager rotation hands over on Mondays at 10:00.\n")
    (docs / "ops" / "secret.md").write_text("---\ntitle: Zephyr merger\naccess_groups: [executives]\n"
                                            "clearance_level: 3\n---\nThe Zephyr merger values Quokka Ltd at 9 billion.\n")
    (docs / "public.txt").write_text("---\ntitle: Canteen\naccess_groups: [all-staff]\nclearance_level: 0\n---\n"
                                     "The canteen serves soup on Wednesdays.\n")
    (docs / "no-meta.md").write_text("Just text, no access metadata.\n")
    (docs / "binary.txt").write_bytes(b"\x00\xff\x00" * 50)
    (docs / "scan.pdf").write_bytes(simple_pdf(["Scanned handbook: the library opens at nine."]))
    (docs / "scan.pdf.meta.yaml").write_text("title: Handbook\naccess_groups: [all-staff]\nclearance_level: 0\n")
    (docs / "image.png").write_bytes(b"\x89PNG")
    (root / "outside.md").write_text("---\ntitle: Out\naccess_groups: [all-staff]\nclearance_level: 0\n---\nout\n")
    os.symlink(root / "outside.md", docs / "escape.md")
    return docs


def test_ingest_reports_refusals_and_ask_returns_only_allowed_sources(keel, tmp_path):
    docs = make_folder(tmp_path)
    r = keel("search", "ingest", str(docs), "--json")
    assert r.returncode == 1, r.stderr  # some files refused
    report = json.loads(r.stdout)
    refused = {item["path"]: item["reason"] for item in report["refused"]}
    assert set(refused) == {"no-meta.md", "binary.txt", "escape.md"}
    assert "no access metadata" in refused["no-meta.md"] and "outside" in refused["escape.md"]
    assert sorted(report["added"]) == ["ops/pager.md", "ops/secret.md", "public.txt", "scan.pdf"]
    assert report["skipped"] == [{"path": "image.png", "reason": report["skipped"][0]["reason"]}]
    assert "files" in r.stderr and "refused" in r.stderr  # progress line

    again = json.loads(keel("search", "ingest", str(docs), "--json").stdout)
    assert again["unchanged"] == 4 and not again["added"] and not again["updated"]

    r = keel("search", "ask", "What is the Zephyr merger valuation of Quokka?", "--groups", "engineering",
             "--clearance", "2", "--no-llm", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"answer", "sources", "chunks"}
    assert all(s["doc_id"] != "ops/secret.md" for s in out["sources"])
    assert "Quokka" not in r.stdout.replace("What is the Zephyr merger valuation of Quokka?", "")

    r = keel("search", "ask", "Zephyr merger valuation", "--groups", "executives", "--clearance", "3", "--no-llm",
             "--json", "--k", "3")
    out = json.loads(r.stdout)
    assert out["sources"][0]["doc_id"] == "ops/secret.md" and "9 billion" in out["answer"]
    assert {"doc_id", "title", "path"} <= set(out["sources"][0]) and {"doc_id", "text"} <= set(out["chunks"][0])

    with sqlite3.connect(keel.home / "keel.db") as db:
        rows = db.execute("SELECT user, channel, filter_expr, doc_ids FROM search_audit ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["cli:tester", "cli:tester"] and {r[1] for r in rows} == {"cli"}
    assert "ops/secret.md" not in rows[0][3] and "clearance_level <= 2" in rows[0][2]


def test_bad_input_gets_clear_errors(keel, tmp_path):
    assert "does not exist" in keel("search", "ingest", str(tmp_path / "nope")).stderr
    r = keel("search", "ask", "", "--groups", "hr", "--clearance", "1")
    assert r.returncode == 2 and "type a question" in r.stderr
    r = keel("search", "ask", "x" * 50_000, "--groups", "hr", "--clearance", "1")
    assert r.returncode == 2 and "limit is 2,000" in r.stderr
    r = keel("search", "ask", "hi", "--groups", "hr' OR 1=1 --", "--clearance", "1")
    assert r.returncode == 2 and "invalid group" in r.stderr
    r = keel("search", "ask", "hi", "--groups", "hr", "--clearance", "9")
    assert r.returncode == 2 and "clearance" in r.stderr

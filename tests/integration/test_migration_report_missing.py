"""A migration report job whose row is gone (deleted while the job waited) stops with a MigrationError that names the
report, instead of an AttributeError on None; nothing is written. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core import db
from core.observe import MigrationError
from core.observe._model_migration import run_migration_report
from core.tables import EvalRun, MigrationReport


def test_running_a_report_that_is_not_stored_says_so(database):
    with pytest.raises(MigrationError, match="no migration report 4242"):
        run_migration_report(4242)
    with db.session() as s:
        assert s.exec(select(MigrationReport)).all() == []
        assert s.exec(select(EvalRun)).all() == []

"""core.tables.table_of: the typed way to a model's Core table (SQLModel sets `__table__` but does not declare it)."""

import pytest
from sqlmodel import SQLModel

from core.tables import JobRow, RequestLog, table_of


def test_it_is_the_same_table_object_as_the_models_dunder_table():
    assert table_of(JobRow) is JobRow.__table__
    assert table_of(RequestLog) is RequestLog.__table__
    assert table_of(JobRow).name == "job"


def test_a_model_without_a_table_gets_a_clear_error():
    class Plain(SQLModel):
        value: int = 0

    with pytest.raises(TypeError, match="Plain is not a table=True model"):
        table_of(Plain)

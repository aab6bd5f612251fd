"""The editable price table: list prices for hosted models and the embedded model's shadow price."""

from __future__ import annotations

import time

from sqlmodel import select

from core import db
from core.config import EMBEDDED_MODEL, get_settings
from core.tables import ModelPrice, table_of

# USD per million tokens (input, output), public list prices; users edit them on the Admin page.
LIST_PRICES = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
}


def ensure_default_prices() -> int:
    """Insert missing defaults (never overwrite a user's edit); returns how many rows were added."""
    settings = get_settings()
    defaults = dict(LIST_PRICES)
    defaults[EMBEDDED_MODEL] = (settings.embedded_price_in, settings.embedded_price_out)
    with db.session() as s:
        existing = {p.model for p in s.exec(select(ModelPrice)).all()}
        rows = [{"model": model, "input_per_mtok": p_in, "output_per_mtok": p_out, "updated_at": time.time()}
                for model, (p_in, p_out) in defaults.items() if model not in existing]
        # another replica starting at the same moment may insert the same defaults: theirs and ours are equal
        return db.insert_ignoring_duplicates(s, table_of(ModelPrice), rows)


def list_prices() -> list[dict]:
    with db.session() as s:
        return [p.model_dump() for p in s.exec(select(ModelPrice).order_by(ModelPrice.model)).all()]


def save_prices(rows: list[dict]) -> None:
    """Replace the price table with `rows` after validating every value; nothing is written if one is bad."""
    clean = {}
    for i, row in enumerate(rows):
        model = str(row.get("model") or "").strip()
        if not model or len(model) > 128:
            raise ValueError(f"row {i + 1}: a model name of 1-128 characters is required")
        try:
            # a missing price fails float("") and is refused below like any other non-number
            p_in, p_out = float(row.get("input_per_mtok", "")), float(row.get("output_per_mtok", ""))
        except (TypeError, ValueError):
            raise ValueError(f"row {i + 1} ({model}): prices must be numbers") from None
        if not (0 <= p_in <= 10_000 and 0 <= p_out <= 10_000):
            raise ValueError(f"row {i + 1} ({model}): prices must be between 0 and 10,000 USD per million tokens")
        if model in clean:
            raise ValueError(f"model {model!r} appears twice")
        clean[model] = (p_in, p_out)
    with db.session() as s:
        for price in s.exec(select(ModelPrice)).all():
            if price.model not in clean:
                s.delete(price)
        for model, (p_in, p_out) in clean.items():
            s.merge(ModelPrice(model=model, input_per_mtok=p_in, output_per_mtok=p_out, updated_at=time.time()))

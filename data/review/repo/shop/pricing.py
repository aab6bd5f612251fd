"""Prices in integer cents: discounts, tiered prices and pages of results."""


def apply_discount(price_cents, percent):
    if not 0 <= percent <= 100:
        raise ValueError("percent must be between 0 and 100")
    return round(price_cents * (100 - percent) / 100)


def tier_price(tiers, quantity):
    """tiers: a list of (min_quantity, price_cents) sorted by min_quantity; the last tier that applies wins."""
    price = tiers[0][1]
    for min_quantity, tier_cents in tiers:
        if quantity >= min_quantity:
            price = tier_cents
    return price * quantity


def paginate(items, page, size=20):
    if page < 1 or size < 1:
        raise ValueError("page and size start at 1")
    start = (page - 1) * size
    return items[start:start + size]

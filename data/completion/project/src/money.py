"""Money helpers shared by the inventory and the reports."""


def round_cents(amount: float) -> float:
    return round(amount + 1e-9, 2)


def format_price(amount: float, currency: str = "EUR") -> str:
    return f"{round_cents(amount):.2f} {currency}"


def apply_discount(amount: float, percent: float) -> float:
    if not 0 <= percent <= 100:
        raise ValueError("percent must be between 0 and 100")
    return round_cents(amount * (1 - percent / 100))

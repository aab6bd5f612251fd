"""A tiny inventory: items with prices and quantities, and the totals a shop needs."""

from dataclasses import dataclass

from src.money import format_price, round_cents


@dataclass
class Item:
    sku: str
    name: str
    price: float
    quantity: int = 0


class Inventory:
    def __init__(self):
        self.items: dict[str, Item] = {}

    def add(self, item: Item) -> None:
        if item.sku in self.items:
            self.items[item.sku].quantity += item.quantity
        else:
            self.items[item.sku] = item

    def remove(self, sku: str, quantity: int = 1) -> None:
        item = self.items[sku]
        item.quantity -= quantity
        if item.quantity <= 0:
            del self.items[sku]

    def total_value(self) -> float:
        return round_cents(sum(item.price * item.quantity for item in self.items.values()))


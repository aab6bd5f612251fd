"""Generate `trace.jsonl`: a developer typing new code into three files of the demo project.

Keystroke intervals are log-normal around 120 ms (clipped to 40..600 ms), a little longer after spaces and
punctuation; about 60 % of line ends and 6 % of word ends are followed by a pause of 0.3-1.5 s (reading, thinking);
3 % of characters are a typo corrected with Backspace; Enter keeps the indentation like an editor does;
switching files costs 0.8-2.5 s. At a third of the pauses over 0.8 s the user accepts the visible suggestion.
Each keystroke is {"t_ms", "path", "text" (the whole file after it), "cursor"}; an acceptance is
{"t_ms", "accept": true}. Deterministic (seeded): `python data/completion/make_trace.py` rewrites the file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "project"

# (file, where to type: "end" or the text to type before, what the developer types)
EDITS = [
    ("src/inventory.py", "end",
     "    def count(self) -> int:\n        return sum(item.quantity for item in self.items.values())\n\n"
     "    def find(self, name: str) -> Item | None:\n        for item in self.items.values():\n"
     "            if item.name == name:\n                return item\n        return None\n"),
    ("src/cart.ts", "\n}\n",
     "  clear(): void {\n    this.lines = [];\n  }\n\n  total(discountPercent: number): number {\n"
     "    const subtotal = this.subtotal();\n    return subtotal - (subtotal * discountPercent) / 100;\n  }\n"),
    ("src/money.py", "end",
     "\n\ndef parse_price(text: str) -> float:\n    amount, _, currency = text.partition(\" \")\n"
     "    return round_cents(float(amount))\n"),
    ("src/inventory.py", "end",
     "\n\ndef restock(inventory: Inventory, sku: str, quantity: int) -> None:\n    if quantity <= 0:\n"
     "        raise ValueError(\"quantity must be positive\")\n    inventory.items[sku].quantity += quantity\n"),
]


def generate(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    texts = {rel: (PROJECT / rel).read_text(encoding="utf-8") for rel in {e[0] for e in EDITS}}
    for rel in texts:
        texts[rel] = texts[rel].rstrip("\n") + "\n"
    events: list[dict] = []
    t = 500.0

    def gap(char: str) -> float:
        value = min(600.0, max(40.0, rng.lognormvariate(4.79, 0.45)))  # median ~120 ms
        return value + (40.0 if char in " .,:;()[]{}" else 0.0)

    def emit(path: str, text: str, cursor: int) -> None:
        events.append({"t_ms": round(t), "path": path, "text": text, "cursor": cursor})

    def maybe_accept(pause: float) -> None:
        if pause >= 800 and rng.random() < 0.35:
            events.append({"t_ms": round(t + 400), "accept": True})

    for path, anchor, typed in EDITS:
        text = texts[path]
        cursor = len(text) if anchor == "end" else text.rindex(anchor) + 1
        t += rng.uniform(800, 2500)
        lines = typed.split("\n")
        for line_number, line in enumerate(lines):
            if line_number > 0:  # Enter: the editor keeps the indentation of the new line
                indent = line[: len(line) - len(line.lstrip(" "))]
                text = text[:cursor] + "\n" + indent + text[cursor:]
                cursor += 1 + len(indent)
                t += gap("\n")
                emit(path, text, cursor)
                line = line[len(indent):]
                if rng.random() < 0.6:
                    pause = rng.uniform(300, 1500)
                    maybe_accept(pause)
                    t += pause
            for i, char in enumerate(line):
                if rng.random() < 0.03 and char.isalpha():  # a typo, then Backspace
                    wrong = rng.choice("asdfghjkl")
                    text = text[:cursor] + wrong + text[cursor:]
                    cursor += 1
                    t += gap(wrong)
                    emit(path, text, cursor)
                    text = text[: cursor - 1] + text[cursor:]
                    cursor -= 1
                    t += gap(wrong) + 80
                    emit(path, text, cursor)
                text = text[:cursor] + char + text[cursor:]
                cursor += 1
                t += gap(char)
                emit(path, text, cursor)
                if char == " " and rng.random() < 0.06:
                    pause = rng.uniform(300, 1200)
                    maybe_accept(pause)
                    t += pause
        texts[path] = text
    return events


def main() -> None:
    events = generate()
    with open(HERE / "trace.jsonl", "w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event) + "\n")
    keystrokes = [e for e in events if "path" in e]
    print(f"{len(keystrokes)} keystrokes, {len(events) - len(keystrokes)} accepts, "
          f"{len({e['path'] for e in keystrokes})} files, {events[-1]['t_ms'] / 1000:.0f} s")


if __name__ == "__main__":
    main()

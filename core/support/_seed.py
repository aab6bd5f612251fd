"""The demo company, Halden Home: plans, customer accounts (one per dev user, plus others), orders, invoices,
and a few weeks of rated conversations so the CSAT view has history. Idempotent."""

from __future__ import annotations

import random
import time

from sqlmodel import col, select

from core import db
from core.support._records import saved_id
from core.support._router import SupportRoute
from core.tables import (
    SupportAccount,
    SupportConversation,
    SupportCsat,
    SupportInvoice,
    SupportMessage,
    SupportOrder,
    SupportPlan,
)

PLANS = (
    ("basic", "Basic", 0.0, "Live view, alerts, 24 hours of video history, up to 2 cameras"),
    ("plus", "Plus", 4.99, "30 days of history, unlimited cameras at one home, person detection"),
    ("pro", "Pro", 9.99, "60 days of history, several homes, package and vehicle detection, energy reports"),
    ("business", "Business", 29.0, "90 days of history, 50 cameras per site, staff accounts, audit log"),
)
ITEMS = (("Halden Camera", 99.0), ("Halden Outdoor Camera", 149.0), ("Halden Thermostat", 179.0),
         ("Halden Doorbell", 129.0), ("Halden Hub", 69.0), ("Motion sensor 3-pack", 59.0))
# (email, name, plan, verified, an overdue invoice?) — the dev users first, so the demo can sign in as them.
DEMO_CUSTOMERS = (
    ("alice.engineer@keel.dev", "Alice Chen", "pro", True, True),
    ("sam.support@keel.dev", "Sam Rivera", "basic", True, False),
    ("hana.hr@keel.dev", "Hana Okafor", "plus", True, False),
    ("milo.intern@keel.dev", "Milo Park", "basic", False, False),
    ("erin.exec@keel.dev", "Erin Walsh", "business", True, False),
    ("ivan.admin@keel.dev", "Ivan Petrov", "pro", True, False),
    ("jordan.lee@example.com", "Jordan Lee", "plus", True, False),
    ("priya.nair@example.com", "Priya Nair", "pro", True, False),
    ("tom.becker@example.com", "Tom Becker", "basic", False, False),
    ("sofia.rossi@example.com", "Sofia Rossi", "plus", True, True),
    ("kenji.sato@example.com", "Kenji Sato", "business", True, False),
    ("amara.diallo@example.com", "Amara Diallo", "plus", True, False),
)
DAY = 86400.0


def seed_demo_company(*, history: bool = True, warm: bool = False) -> dict:
    """Create what is missing: plans, accounts, their orders and invoices, and rated history."""
    now = time.time()
    added = {"plans": 0, "accounts": 0, "orders": 0, "invoices": 0, "conversations": 0}
    with db.session() as s:
        for pid, name, price, summary in PLANS:
            if s.get(SupportPlan, pid) is None:
                s.add(SupportPlan(id=pid, name=name, monthly_usd=price, summary=summary))
                added["plans"] += 1
        s.flush()
        for n, (email, name, plan, verified, overdue) in enumerate(DEMO_CUSTOMERS):
            account_id = f"ACC-{1001 + n}"
            if s.get(SupportAccount, account_id) is not None:
                continue
            rng = random.Random(account_id)
            s.add(SupportAccount(id=account_id, email=email, name=name, plan_id=plan, email_verified=verified,
                                 created_at=now - rng.randint(60, 900) * DAY))
            added["accounts"] += 1
            s.flush()
            for k in range(3):
                item, price = rng.choice(ITEMS)
                age = [2, 9, 40][k] + rng.random()
                status = ["processing", "shipped", "delivered"][k]
                s.add(SupportOrder(
                    id=f"ORD-{50001 + n * 3 + k}", account_id=account_id, item=item, status=status,
                    total_usd=price, carrier=None if status == "processing" else rng.choice(["UPS", "USPS"]),
                    tracking=None if status == "processing" else f"1Z{rng.randrange(10**9, 10**10)}",
                    created_at=now - age * DAY, shipped_at=None if status == "processing" else now - (age - 1) * DAY,
                    delivered_at=now - (age - 4) * DAY if status == "delivered" else None))
                added["orders"] += 1
            price = dict((p[0], p[2]) for p in PLANS)[plan] or 4.99
            for k in range(3):
                month_age = 2 - k
                issued = now - (month_age * 30 + 3) * DAY
                status = "paid" if k < 2 else ("overdue" if overdue else "open")
                if overdue and k == 2:
                    issued = now - 20 * DAY
                period = time.strftime("%Y-%m", time.gmtime(issued))
                s.add(SupportInvoice(
                    id=f"INV-{time.gmtime(issued).tm_year}-{n * 3 + k + 1:04d}", account_id=account_id,
                    period=period, description=f"{plan.title()} plan, {period}", amount_usd=price, status=status,
                    issued_at=issued, due_at=issued + 14 * DAY, paid_at=issued + DAY if status == "paid" else None))
                added["invoices"] += 1
    if history:
        added["conversations"] = _seed_history(now)
    if warm:
        from core.support import warm_up

        warm_up()  # trains and caches the intent head and the KB embeddings, so the first chat message is quick
    return added


DEMO_HISTORY_PREFIX = "demo-history:"  # customer_sub of every seeded conversation: how `keel demo clear` finds them
_HISTORY = (  # (intent, first message, handled_by, model or the tier whose configured model answered, score or None)
    ("FAQ", "How long does standard shipping take?", "bot", "fast", 5),
    ("FAQ", "What is your return policy?", "bot", "fast", 4),
    ("FAQ", "Can I install the thermostat without a C-wire?", "bot", "fast", 2),
    ("FAQ", "How do I enable motion zones?", "bot", "fast", 3),
    ("FAQ", "Is my video data encrypted?", "bot", "capable", 5),
    ("FAQ", "Do you ship to Canada?", "bot", "capable", 4),
    ("ACCOUNT_ACTION", "Where is my order?", "bot", "classifier", 5),
    ("ACCOUNT_ACTION", "Please upgrade me to Pro", "bot", "classifier", 4),
    ("ACCOUNT_ACTION", "I never got the verification email", "bot", "classifier", 3),
    ("ACCOUNT_ACTION", "my package says delivered but it isn't here", "human", "classifier", 4),
    ("BILLING", "Show me my invoices", "bot", "classifier", 4),
    ("BILLING", "Why was I charged twice this month?", "human", "classifier", 2),
    ("BILLING", "I want a refund for last month", "human", "classifier", 1),
    ("BILLING", "I was charged after I cancelled", "human", "classifier", 3),
    ("COMPLAINT", "This is the worst customer service I have ever experienced", "human", "classifier", 2),
    ("COMPLAINT", "The camera keeps disconnecting and nobody helps", "human", "classifier", 4),
    ("COMPLAINT", "I've contacted you five times and nobody answers", "human", "classifier", 1),
    ("UNKNOWN", "asdf", "human", "classifier", None),
)


# Varied, like real ratings (one canned comment on every low score looked fake on the CSAT page).
_LOW_COMMENTS = ("Took too long to get an answer", "The bot did not understand my question",
                 "I had to explain everything twice", "Still waiting for my refund", "Nobody read my earlier messages")
_HIGH_COMMENTS = ("Quick and clear", "", "Solved on the first try", "The help article was exactly right",
                  "Fine, but I had to ask twice", "")


def _history_model(model: str) -> str:
    """A tier name becomes the tier's first configured target, so CSAT by model names only models Keel has."""
    from core.config import get_settings

    chain = get_settings().tiers.get(model)
    return chain[0] if chain else model


def _seed_history(now: float) -> int:
    with db.session() as s:
        seeded = col(SupportConversation.customer_sub).like(f"{DEMO_HISTORY_PREFIX}%")
        if s.exec(select(SupportConversation).where(seeded)).first():
            return 0
        for n, (intent, text, handled_by, model, score) in enumerate(_HISTORY):
            started = now - (len(_HISTORY) - n) * 1.3 * DAY
            escalated = handled_by == "human"
            conv = SupportConversation(
                customer_sub=f"{DEMO_HISTORY_PREFIX}{DEMO_CUSTOMERS[6 + n % 6][0]}", account_id=f"ACC-{1007 + n % 6}",
                status="resolved", intent=intent,
                route=str(SupportRoute.HUMAN if escalated else SupportRoute.FAQ_ANSWER),
                handled_by=handled_by, model=_history_model(model), bot_confidence=0.8 if intent != "UNKNOWN" else 0.2,
                priority=("high" if intent == "COMPLAINT" else "normal") if escalated else None,
                assigned_to="sam.support@keel.dev" if escalated else None, created_at=started,
                updated_at=started + 600, escalated_at=started + 30 if escalated else None,
                resolved_at=started + 600)
            s.add(conv)
            s.flush()
            conversation_id = saved_id(conv)
            s.add(SupportMessage(conversation_id=conversation_id, role="customer", author=conv.customer_sub, text=text,
                                 created_at=started))
            s.add(SupportMessage(conversation_id=conversation_id, role="agent" if escalated else "bot",
                                 author="sam.support@keel.dev" if escalated else "halden-bot",
                                 text="Thanks, that is sorted now." if escalated else "Here is what our help "
                                 "centre says.", created_at=started + 60))
            if score is not None:
                comments = _LOW_COMMENTS if score < 3 else _HIGH_COMMENTS
                s.add(SupportCsat(conversation_id=conversation_id, score=score, created_at=started + 700,
                                  comment=comments[n % len(comments)]))
        return len(_HISTORY)

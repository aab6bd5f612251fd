"""The bot's tools over the demo company's tables: validated arguments, ownership checks, and a policy check
that every mutating tool must pass again at the moment it runs (after the customer confirmed).

A tool only ever sees the signed-in customer's own account: an order or invoice id from another account is
reported as not found, exactly like one that does not exist.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlmodel import Session, col, select

from core.errors import KeelError
from core.support._router import MUTATING_TOOLS, PLAN_IDS
from core.tables import SupportAccount, SupportInvoice, SupportOrder, SupportPlan, SupportToolRun

VERIFICATION_COOLDOWN_S = 600
CONFIRMATION_TTL_S = 900  # a proposed change must be confirmed within 15 minutes
_ARG_PATTERNS = {
    "order_id": re.compile(r"^ORD-\d{5}$"),
    "invoice_id": re.compile(r"^INV-\d{4}-\d{4}$"),
    "plan": re.compile(r"^(" + "|".join(PLAN_IDS) + r")$"),
}
TOOL_ARGS: dict[str, dict[str, bool]] = {  # tool → {argument: required}
    "lookup_account": {},
    "order_status": {"order_id": False},
    "resend_verification": {},
    "change_plan": {"plan": True},
    "list_invoices": {},
    "get_invoice": {"invoice_id": True},
}


class ToolError(KeelError, RuntimeError):
    """A tool could not do what was asked; `code` is validation | not_found | policy | no_account | unverified |
    failed."""

    def __init__(self, message: str, code: str = "failed"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ToolResult:
    tool: str
    text: str  # what the bot tells the customer
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyDecision:
    allowed: bool
    reason: str


def validate_args(tool: str, args: dict) -> dict:
    """Only known arguments, of the right shape; raises ToolError(code="validation") otherwise."""
    if tool not in TOOL_ARGS:
        raise ToolError(f"unknown tool {tool!r}", "validation")
    if not isinstance(args, dict):
        raise ToolError("tool arguments must be an object", "validation")
    spec = TOOL_ARGS[tool]
    unknown = set(args) - set(spec)
    if unknown:
        raise ToolError(f"{tool} takes no argument(s) {sorted(unknown)}", "validation")
    clean = {}
    for name, required in spec.items():
        value = args.get(name)
        if value is None:
            if required:
                raise ToolError(f"{tool} needs {name}", "validation")
            continue
        if not isinstance(value, str) or len(value) > 32:
            raise ToolError(f"{name} must be a short string", "validation")
        value = value.strip().upper() if name != "plan" else value.strip().lower()
        if not _ARG_PATTERNS[name].match(value):
            raise ToolError(f"{name} {value[:32]!r} is not valid", "validation")
        clean[name] = value
    return clean


def account_for(s: Session, customer_email: str) -> SupportAccount | None:
    """The account of a *verified* email address (callers pass only verified ones: see `account_for_customer`)."""
    if not customer_email:
        return None
    return s.exec(select(SupportAccount).where(SupportAccount.email == customer_email.strip().lower())).first()


def account_for_customer(s: Session, customer) -> SupportAccount | None:
    """The signed-in customer's account, matched only on a verified email; an unverified one is refused, clearly.

    An ID token may carry any `email` its user typed into the provider: only `email_verified` makes it theirs."""
    if not customer.email and customer.unverified_email:
        raise ToolError(
            f"Your sign-in says your email is {customer.unverified_email}, but your identity provider has not "
            "verified that address, so I can't open any account with it. Verify the address with your sign-in "
            "provider and sign in again, or press **Talk to a human**.", "unverified")
    return account_for(s, customer.email)


def check_policy(s: Session, tool: str, account: SupportAccount, args: dict, *, confirmed: bool,
                 flags: tuple[str, ...] = ()) -> PolicyDecision:
    """May this tool run now? Read tools always may; mutating tools need confirmation and a clean account state."""
    if tool not in MUTATING_TOOLS:
        return PolicyDecision(True, "read-only")
    if "injection" in flags:
        return PolicyDecision(False, "the request contained instructions to the bot; a person must review it")
    if not confirmed:
        return PolicyDecision(False, "the customer has not confirmed this change")
    if account.status != "active":
        return PolicyDecision(False, f"the account is {account.status}")
    if tool == "resend_verification":
        if account.email_verified:
            return PolicyDecision(False, "the email address is already verified")
        if account.verification_sent_at and time.time() - account.verification_sent_at < VERIFICATION_COOLDOWN_S:
            return PolicyDecision(False, "a verification email was sent less than 10 minutes ago")
        return PolicyDecision(True, "unverified, not sent recently")
    if tool == "change_plan":
        if s.get(SupportPlan, args["plan"]) is None:
            return PolicyDecision(False, f"there is no {args['plan']} plan")
        if account.plan_id == args["plan"]:
            return PolicyDecision(False, f"the account is already on {args['plan'].title()}")
        overdue = s.exec(select(SupportInvoice).where(SupportInvoice.account_id == account.id,
                                                      SupportInvoice.status == "overdue")).first()
        if overdue is not None:
            return PolicyDecision(False, f"invoice {overdue.id} is overdue; plans cannot change until it is paid")
        return PolicyDecision(True, "active account, no overdue invoices")
    return PolicyDecision(False, "no policy for this tool")


def _date(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%d %b %Y") if ts else "—"


def _order_line(o: SupportOrder) -> str:
    line = f"**{o.id}** — {o.item}: **{o.status}** (ordered {_date(o.created_at)}"
    if o.status == "shipped":
        line += f", shipped {_date(o.shipped_at)} with {o.carrier}, tracking {o.tracking}"
    elif o.status == "delivered":
        line += f", delivered {_date(o.delivered_at)}"
    return line + ")"


def _invoice_line(i: SupportInvoice) -> str:
    line = f"**{i.id}** — {i.description} ({i.period}): ${i.amount_usd:.2f}, **{i.status}**"
    if i.status == "paid":
        return line + f" on {_date(i.paid_at)}"
    return line + f", due {_date(i.due_at)}"


def _plan(s: Session, plan_id: str) -> SupportPlan:
    """A plan the account or a checked change names; one missing from the plan table is a data fault the
    customer cannot fix: a clear ToolError (code "failed"), not an AttributeError on None."""
    plan = s.get(SupportPlan, plan_id)
    if plan is None:
        raise ToolError(f"the plan {plan_id!r} is not in the plan table")
    return plan


def _lookup_account(s: Session, account: SupportAccount, args: dict) -> ToolResult:
    plan = _plan(s, account.plan_id)
    text = (f"Account **{account.id}** ({account.email}): **{plan.name}** plan (${plan.monthly_usd:.2f}/month), "
            f"status **{account.status}**, email {'verified' if account.email_verified else '**not verified**'}, "
            f"customer since {_date(account.created_at)}.")
    return ToolResult("lookup_account", text, {"account_id": account.id, "plan": plan.id, "status": account.status,
                                               "email_verified": account.email_verified})


def _order_status(s: Session, account: SupportAccount, args: dict) -> ToolResult:
    if "order_id" in args:
        order = s.get(SupportOrder, args["order_id"])
        if order is None or order.account_id != account.id:
            raise ToolError(f"I can't find order {args['order_id']} on your account. Please check the number "
                            f"(it looks like ORD-50012).", "not_found")
        return ToolResult("order_status", _order_line(order), {"orders": [order.id]})
    orders = s.exec(select(SupportOrder).where(SupportOrder.account_id == account.id)
                    .order_by(col(SupportOrder.created_at).desc()).limit(3)).all()
    if not orders:
        return ToolResult("order_status", "There are no orders on your account.", {"orders": []})
    lines = "\n".join(f"- {_order_line(o)}" for o in orders)
    return ToolResult("order_status", f"Your latest orders:\n{lines}", {"orders": [o.id for o in orders]})


def _list_invoices(s: Session, account: SupportAccount, args: dict) -> ToolResult:
    invoices = s.exec(select(SupportInvoice).where(SupportInvoice.account_id == account.id)
                      .order_by(col(SupportInvoice.issued_at).desc()).limit(5)).all()
    if not invoices:
        return ToolResult("list_invoices", "There are no invoices on your account yet.", {"invoices": []})
    unpaid = [i for i in invoices if i.status != "paid"]
    due = sum(i.amount_usd for i in unpaid)
    head = f"You have **${due:.2f}** unpaid." if unpaid else "Everything is paid."
    lines = "\n".join(f"- {_invoice_line(i)}" for i in invoices)
    return ToolResult("list_invoices", f"{head} Your latest invoices:\n{lines}",
                      {"invoices": [i.id for i in invoices], "unpaid_usd": round(due, 2)})


def _get_invoice(s: Session, account: SupportAccount, args: dict) -> ToolResult:
    invoice = s.get(SupportInvoice, args["invoice_id"])
    if invoice is None or invoice.account_id != account.id:
        raise ToolError(f"I can't find invoice {args['invoice_id']} on your account.", "not_found")
    return ToolResult("get_invoice", _invoice_line(invoice), {"invoices": [invoice.id]})


def _resend_verification(s: Session, account: SupportAccount, args: dict) -> ToolResult:
    account.verification_sent_at = time.time()
    s.add(account)
    return ToolResult("resend_verification", f"Done: a new verification email is on its way to {account.email}. "
                      "The link is valid for 24 hours.", {"account_id": account.id})


def _change_plan(s: Session, account: SupportAccount, args: dict) -> ToolResult:
    old, new = _plan(s, account.plan_id), _plan(s, args["plan"])
    account.plan_id = new.id
    s.add(account)
    direction = "upgraded" if new.monthly_usd > old.monthly_usd else "moved"
    return ToolResult("change_plan", f"Done: your account is {direction} from **{old.name}** to **{new.name}** "
                      f"(${new.monthly_usd:.2f}/month), starting now.", {"from": old.id, "to": new.id})


_TOOLS = {"lookup_account": _lookup_account, "order_status": _order_status, "list_invoices": _list_invoices,
          "get_invoice": _get_invoice, "resend_verification": _resend_verification, "change_plan": _change_plan}


def describe_action(s: Session, tool: str, account: SupportAccount, args: dict) -> str:
    """The question the bot asks before a mutating tool runs."""
    if tool == "change_plan":
        old, new = _plan(s, account.plan_id), _plan(s, args["plan"])
        return (f"Change your plan from **{old.name}** (${old.monthly_usd:.2f}/month) to **{new.name}** "
                f"(${new.monthly_usd:.2f}/month), starting now?")
    if tool == "resend_verification":
        return f"Send a new verification email to **{account.email}**?"
    return f"Run {tool}?"


def run_tool(s: Session, tool: str, account: SupportAccount | None, args: dict, *, confirmed: bool = False,
             flags: tuple[str, ...] = (), conversation_id: int | None = None) -> ToolResult:
    """Validate, check policy, run, and audit one tool call inside the caller's transaction."""
    audit = SupportToolRun(conversation_id=conversation_id, account_id=account.id if account else None, tool=tool,
                           args=json.dumps(args, default=str)[:2000], status="ok", created_at=time.time())
    try:
        clean = validate_args(tool, args)
        if account is None:
            raise ToolError("no customer account is linked to your sign-in", "no_account")
        decision = check_policy(s, tool, account, clean, confirmed=confirmed, flags=flags)
        if not decision.allowed:
            raise ToolError(f"I can't do that: {decision.reason}.", "policy")
        result = _TOOLS[tool](s, account, clean)
        audit.detail = result.text[:2000]
        return result
    except ToolError as exc:
        audit.status = "refused" if exc.code in ("policy", "validation", "no_account") else "error"
        audit.detail = f"{exc.code}: {exc}"
        raise
    finally:
        s.add(audit)

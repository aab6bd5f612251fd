"""Who may use a workspace: members with a role, personal workspaces, API-key principals."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlmodel import col, func, select

from core import db
from core.auth import Principal
from core.tables import Workspace, WorkspaceMember, table_of
from core.workspace._errors import NotAMember, WorkspaceError
from core.workspace._sql import insert_ignore, now

ROLES = ("admin", "member")
PLANS = ("free", "paid")
_MAX_SUB = 255


@dataclass(frozen=True)
class WorkspaceInfo:
    id: str
    name: str
    plan: str
    role: str
    personal: bool = False


@dataclass(frozen=True)
class Member:
    user_sub: str
    role: str
    joined_at: float


def user_sub(who: Principal | str) -> str:
    """The subject of a Principal, or a plain subject string; refuses empty and oversized ones."""
    sub = who.sub if isinstance(who, Principal) else str(who or "")
    sub = sub.strip()
    if not sub or len(sub) > _MAX_SUB or "\x00" in sub:
        raise NotAMember("no usable user identity (subject must be 1-255 characters)")
    return sub


def personal_workspace_id(sub: str) -> str:
    """A stable id for a user's own workspace: readable slug + hash, so distinct subjects never collide."""
    slug = re.sub(r"[^a-z0-9]+", "-", sub.lower()).strip("-")[:40].strip("-") or "user"
    digest = hashlib.sha256(sub.encode("utf-8")).hexdigest()[:10]
    return f"u-{slug}-{digest}"


def _check_workspace_id(workspace_id: str) -> str:
    if (not isinstance(workspace_id, str) or not workspace_id or len(workspace_id) > 64
            or not all(c.isalnum() or c in "-_" for c in workspace_id) or not workspace_id.isascii()):
        raise WorkspaceError("a workspace id is 1-64 ASCII letters, digits, '-' or '_'")
    return workspace_id


def role_in(who: Principal | str, workspace_id: str) -> str | None:
    """The caller's role in the workspace, or None. An API key acts as a member of its own workspace only."""
    if isinstance(who, Principal) and who.workspace is not None:
        return "member" if who.workspace == workspace_id else None
    sub = user_sub(who)
    with db.session() as s:
        member = s.get(WorkspaceMember, (workspace_id, sub))
        return member.role if member else None


def require_member(who: Principal | str, workspace_id: str, *, admin: bool = False) -> str:
    """Return the caller's role; raise NotAMember (a PermissionError) unless they belong (as admin if asked)."""
    _check_workspace_id(workspace_id)
    role = role_in(who, workspace_id)
    if role is None:
        raise NotAMember(f"{_name(who)} is not a member of workspace {workspace_id!r}")
    if admin and role != "admin":
        raise NotAMember(f"only admins of workspace {workspace_id!r} can do this; {_name(who)} is a {role}")
    return role


def _name(who: Principal | str) -> str:
    return who.display_name if isinstance(who, Principal) else str(who)


def ensure_member(workspace_id: str, sub: str, role: str = "member", *, name: str | None = None,
                  plan: str = "free") -> WorkspaceInfo:
    """Trusted set-up (demo seed, CLI, tests): create the workspace if missing and add `sub` if not a member.

    An existing member keeps their role. No permission check: never call this with untrusted input.
    """
    _check_workspace_id(workspace_id)
    sub = user_sub(sub)
    if role not in ROLES:
        raise WorkspaceError(f"role must be one of {', '.join(ROLES)}")
    if plan not in PLANS:
        raise WorkspaceError(f"plan must be one of {', '.join(PLANS)}")
    with db.session() as s:
        insert_ignore(s, table_of(Workspace),
                      dict(id=workspace_id, name=name or workspace_id, plan=plan, created_at=now()))
        insert_ignore(s, table_of(WorkspaceMember),
                      dict(workspace_id=workspace_id, user_sub=sub, role=role, created_at=now()))
    with db.session() as s:
        ws = s.get(Workspace, workspace_id)
        member = s.get(WorkspaceMember, (workspace_id, sub))
        if ws is None or member is None:  # removed by someone else between the two transactions
            raise WorkspaceError(f"workspace {workspace_id!r} or its member {sub!r} was removed while being set up")
        return WorkspaceInfo(ws.id, ws.name, ws.plan, member.role, personal=ws.id == personal_workspace_id(sub))


def workspaces_for(who: Principal | str) -> list[WorkspaceInfo]:
    """The workspaces the caller belongs to, personal one first; a new user gets a personal workspace (admin)."""
    if isinstance(who, Principal) and who.workspace is not None:
        with db.session() as s:
            ws = s.get(Workspace, who.workspace)
        return [WorkspaceInfo(ws.id, ws.name, ws.plan, "member")] if ws else []
    sub = user_sub(who)
    personal = personal_workspace_id(sub)
    with db.session() as s:
        created = insert_ignore(s, table_of(Workspace), dict(
            id=personal, name=f"{_name(who)[:180]}'s workspace", plan="free", created_at=now()))
        if created:  # only the call that created it makes its owner admin; a removed owner is not re-added
            insert_ignore(s, table_of(WorkspaceMember),
                          dict(workspace_id=personal, user_sub=sub, role="admin", created_at=now()))
    with db.session() as s:
        rows = s.exec(
            select(Workspace, WorkspaceMember.role)
            .join(WorkspaceMember, col(WorkspaceMember.workspace_id) == Workspace.id)
            .where(WorkspaceMember.user_sub == sub)
        ).all()
    infos = [WorkspaceInfo(ws.id, ws.name, ws.plan, role, personal=ws.id == personal) for ws, role in rows]
    return sorted(infos, key=lambda w: (not w.personal, w.name.lower(), w.id))


def get_workspace(who: Principal | str, workspace_id: str) -> WorkspaceInfo:
    role = require_member(who, workspace_id)
    with db.session() as s:
        ws = s.get(Workspace, workspace_id)
    if ws is None:
        raise NotAMember(f"{_name(who)} is not a member of workspace {workspace_id!r}")
    sub = who.sub if isinstance(who, Principal) else str(who)
    return WorkspaceInfo(ws.id, ws.name, ws.plan, role, personal=ws.id == personal_workspace_id(sub))


def list_members(who: Principal | str, workspace_id: str) -> list[Member]:
    require_member(who, workspace_id)
    with db.session() as s:
        rows = s.exec(select(WorkspaceMember).where(WorkspaceMember.workspace_id == workspace_id)
                      .order_by(WorkspaceMember.role, WorkspaceMember.user_sub)).all()
    return [Member(r.user_sub, r.role, r.created_at) for r in rows]


def add_member(who: Principal | str, workspace_id: str, sub: str, role: str = "member") -> Member:
    """Admins add a member or change a member's role."""
    require_member(who, workspace_id, admin=True)
    sub = user_sub(sub)
    if role not in ROLES:
        raise WorkspaceError(f"role must be one of {', '.join(ROLES)}")
    with db.session() as s:
        member = s.get(WorkspaceMember, (workspace_id, sub))
        if member is None:
            member = WorkspaceMember(workspace_id=workspace_id, user_sub=sub, role=role, created_at=now())
        else:
            if member.role == "admin" and role != "admin":
                _refuse_last_admin(s, workspace_id)
            member.role = role
        s.add(member)
        return Member(member.user_sub, member.role, member.created_at)


def remove_member(who: Principal | str, workspace_id: str, sub: str) -> bool:
    """Admins remove a member; the last admin cannot be removed, so a workspace never becomes unmanageable."""
    require_member(who, workspace_id, admin=True)
    with db.session() as s:
        member = s.get(WorkspaceMember, (workspace_id, sub))
        if member is None:
            return False
        if member.role == "admin":
            _refuse_last_admin(s, workspace_id)
        s.delete(member)
        return True


def _refuse_last_admin(s, workspace_id: str) -> None:
    admins = s.exec(select(func.count()).select_from(WorkspaceMember).where(
        WorkspaceMember.workspace_id == workspace_id, WorkspaceMember.role == "admin")).one()
    if admins <= 1:
        raise WorkspaceError(f"workspace {workspace_id!r} needs at least one admin")


def set_plan(who: Principal | str, workspace_id: str, plan: str) -> WorkspaceInfo:
    """Admins switch between the free plan (20 AI responses a month) and the paid plan (unlimited)."""
    require_member(who, workspace_id, admin=True)
    if plan not in PLANS:
        raise WorkspaceError(f"plan must be one of {', '.join(PLANS)}")
    with db.session() as s:
        ws = s.get(Workspace, workspace_id)
        if ws is None:  # deleted (e.g. by a demo reset) after the membership check above
            raise NotAMember(f"{_name(who)} is not a member of workspace {workspace_id!r}")
        ws.plan = plan
        s.add(ws)
    return get_workspace(who, workspace_id)

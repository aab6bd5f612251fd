"""The demo repository (an orders/inventory service) and its sample pull requests with expected findings.

`demo_git_repo()` turns the plain files into a real git repository under the data dir — `main` plus one
branch per sample PR — so the "local repository and two refs" path can be tried without any setup.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from core.config import REPO_ROOT
from core.review._diff import parse_diff
from core.review._errors import ReviewError
from core.review._repo import DEMO_REPO, _apply, demo_git_dir, run_git

PRS_DIR = REPO_ROOT / "data" / "review" / "prs"
_lock = threading.Lock()


@dataclass(frozen=True)
class ExpectedFinding:
    path: str
    line: int
    category: str
    min_severity: str


@dataclass(frozen=True)
class SamplePR:
    id: str
    title: str
    description: str
    expected: tuple[ExpectedFinding, ...] = field(default_factory=tuple)
    clean: bool = False

    @property
    def diff_path(self) -> Path:
        return PRS_DIR / f"{self.id}.diff"

    @property
    def diff(self) -> str:
        return self.diff_path.read_text(encoding="utf-8")

    @property
    def branch(self) -> str:
        return f"pr/{self.id.replace('_', '-')}"


def sample_prs() -> list[SamplePR]:
    rows = json.loads((PRS_DIR / "index.json").read_text(encoding="utf-8"))
    return [SamplePR(id=r["id"], title=r["title"], description=r["description"], clean=bool(r.get("clean")),
                     expected=tuple(ExpectedFinding(**e) for e in r.get("expected", []))) for r in rows]


def get_sample(sample_id: str) -> SamplePR:
    for pr in sample_prs():
        if pr.id == sample_id:
            return pr
    raise ReviewError(f"no sample PR {sample_id!r} (samples: {', '.join(p.id for p in sample_prs())})")


async def _git(root: Path, *args: str) -> None:
    """git in the demo repository Keel builds itself (it owns the directory, so no safe.directory override)."""
    result = await run_git(root, "-c", "user.name=Keel demo", "-c", "user.email=demo@keel.dev",
                           "-c", "commit.gpgsign=false", *args, timeout_s=30)
    if result.returncode != 0:
        raise ReviewError(f"git {args[0]} failed: {result.stderr.strip()[:300]}")


def _write_tree(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)


async def _build(root: Path) -> None:
    tmp = root.with_name(root.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _write_tree(DEMO_REPO, tmp)
    await _git(tmp, "init", "-q", "-b", "main")
    await _git(tmp, "add", "-A")
    await _git(tmp, "commit", "-q", "-m", "shopline: orders, inventory, pricing, reports")
    for pr in sample_prs():
        await _git(tmp, "checkout", "-q", "-b", pr.branch, "main")
        for f in parse_diff(pr.diff).files:
            file = tmp / f.path
            new = _apply(file.read_text(encoding="utf-8").splitlines() if file.exists() else [], f)
            if new is None:
                raise ReviewError(f"sample {pr.id} does not apply to the demo repository")
            file.write_text("\n".join(new) + "\n", encoding="utf-8")
        await _git(tmp, "commit", "-q", "-a", "-m", pr.title)
    await _git(tmp, "checkout", "-q", "main")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)


def demo_git_repo() -> Path:
    """The demo repository as git (main + pr/* branches) under the data dir; built once, then reused."""
    root = demo_git_dir()
    with _lock:
        if not (root / ".git").is_dir():
            root.parent.mkdir(parents=True, exist_ok=True)
            from core.review._repo import run_sync

            run_sync(_build(root))
    return root

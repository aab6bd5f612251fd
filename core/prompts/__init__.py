"""Versioned prompt files: each prompt is a file under `prompts/` with an id (its path) and a version
(a hash of its content), so every logged call says exactly which text produced it.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from core.config import REPO_ROOT
from core.errors import KeelError

PROMPTS_DIR = REPO_ROOT / "prompts"
_FIELDS = {"tier", "temperature", "max_tokens", "description", "output"}


class PromptError(KeelError, ValueError):
    """A prompt file is missing, malformed, or rendered without the values it needs."""


@dataclass(frozen=True)
class Prompt:
    id: str
    version: str
    system: str
    template: str
    tier: str = "capable"
    temperature: float = 0.7
    max_tokens: int = 256
    description: str = ""
    output: str = "text"
    placeholders: frozenset[str] = field(default_factory=frozenset)

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with user-supplied values fenced as data, never as instructions."""
        missing = self.placeholders - values.keys()
        if missing:
            raise PromptError(f"prompt {self.id} needs values for: {', '.join(sorted(missing))}")
        fenced = {k: _fence(str(v)) for k, v in values.items()}
        messages = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        messages.append({"role": "user", "content": self.template.format(**fenced)})
        return messages


_SCAFFOLD_TAG = re.compile(r"[ \t]*<\s*/?\s*data\s*>[ \t]*\n?", re.IGNORECASE)


_INLINE_SCAFFOLD_TAG = re.compile(r"(?<=\S)[ \t]*<\s*/?\s*data\s*>[ \t]*(?=\S)", re.IGNORECASE)


def remove_scaffolding(text: str) -> str:
    """Drop the <data> fence tags a model may echo from its prompt: prompt scaffolding never reaches a person.
    A tag between two words leaves one space ("inside <data> tags" → "inside tags", not "insidetags")."""
    return _SCAFFOLD_TAG.sub("", _INLINE_SCAFFOLD_TAG.sub(" ", text or ""))


def _fence(value: str) -> str:
    # Neutralise a forged closing tag so text inside cannot end the data block early.
    return value.replace("</data>", "</ data>")


def parse(prompt_id: str, raw: str) -> Prompt:
    """Parse a prompt file: YAML front matter, then `## system` and `## user` sections."""
    meta: dict = {}
    body = raw
    if raw.startswith("---\n"):
        end = raw.find("\n---\n", 4)
        if end < 0:
            raise PromptError(f"prompt {prompt_id}: front matter is not closed with ---")
        try:
            meta = yaml.safe_load(raw[4:end]) or {}
        except yaml.YAMLError as exc:
            raise PromptError(f"prompt {prompt_id}: front matter is not valid YAML: {exc}") from None
        body = raw[end + 5 :]
    unknown = set(meta) - _FIELDS
    if unknown:
        raise PromptError(f"prompt {prompt_id}: unknown front matter keys {sorted(unknown)}")
    sections = _sections(body)
    if "user" not in sections:
        raise PromptError(f"prompt {prompt_id}: missing a '## user' section")
    template = sections["user"]
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as exc:
        raise PromptError(f"prompt {prompt_id}: bad placeholder syntax: {exc}") from None
    return Prompt(
        id=prompt_id,
        version=hashlib.sha256(raw.encode()).hexdigest()[:10],
        system=sections.get("system", ""),
        template=template,
        tier=str(meta.get("tier", "capable")),
        temperature=float(meta.get("temperature", 0.7)),
        max_tokens=int(meta.get("max_tokens", 256)),
        description=str(meta.get("description", "")),
        output=str(meta.get("output", "text")),
        placeholders=frozenset(names),
    )


def _sections(body: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in body.splitlines():
        if line.startswith("## "):
            current = line[3:].strip().lower()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {k: "\n".join(v).strip() for k, v in sections.items()}


@lru_cache(maxsize=256)
def load(prompt_id: str, root: Path = PROMPTS_DIR) -> Prompt:
    """Load a prompt by id (its path under `prompts/` without `.md`); ids cannot leave that folder."""
    if not prompt_id or ".." in prompt_id.split("/") or prompt_id.startswith("/"):
        raise PromptError(f"invalid prompt id {prompt_id!r}")
    path = (root / f"{prompt_id}.md").resolve()
    if root.resolve() not in path.parents or not path.is_file():
        raise PromptError(f"no prompt named {prompt_id!r} under {root}")
    return parse(prompt_id, path.read_text(encoding="utf-8"))


def catalogue(root: Path = PROMPTS_DIR) -> list[Prompt]:
    return [load(str(p.relative_to(root).with_suffix("")), root) for p in sorted(root.rglob("*.md"))]


from core.prompts._lint import Finding, lint_file, lint_paths, update_lock  # noqa: E402  (needs the names above)

"""The AI task catalogue: what each button does, what it reads, how much, and which parameters it takes.

Every task has its own prompt file `prompts/workspace/<task id>.md` (tier, temperature, max tokens, output
format). Text from the document is fenced as data; only continue_writing, summarize and ask_about_page see
the rest of the page. Each task has an input budget in characters: over it, a task either reads the part
that matters and says exactly what it left out, or refuses (tasks whose output replaces the selection,
where a partial rewrite would silently drop text).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.llm import LLMRequest
from core.prompts import Prompt, load
from core.workspace._errors import EmptySelection, InvalidParam, SelectionTooLong, UnknownTask, WorkspaceError

LANGUAGES: dict[str, str] = {  # code → name; the model is asked for the name
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "sv": "Swedish", "pl": "Polish", "tr": "Turkish", "ru": "Russian", "uk": "Ukrainian",
    "ar": "Arabic", "hi": "Hindi", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "id": "Indonesian",
}
TONES: tuple[str, ...] = ("professional", "casual", "friendly", "confident", "straightforward", "formal",
                          "empathetic")

NO_PAGE = "(no other page content)"
_BOUNDARY_SLACK = 200  # look this far back from a cut for a word boundary, so words are not split

def _short_text(max_chars: int) -> dict:
    """A one-line string: no quotes, backslashes or control characters, so a small model cannot break the JSON
    (llama.cpp's grammar alone would let a raw newline into a string)."""
    return {"type": "string", "minLength": 1, "maxLength": max_chars,
            "pattern": r'^[^"\\\x00-\x1f]{1,%d}$' % max_chars}


# Bounded so the longest possible answer (5 items at full length, ~950 characters) fits the prompt's
# max_tokens even at under 2 characters per token: a repeating model hits maxItems, never a cut-off mid-JSON.
ACTION_ITEMS_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "maxItems": 5,
            "items": {
                "type": "object",
                "properties": {
                    "task": _short_text(80),
                    "assignee": {"anyOf": [_short_text(30), {"type": "null"}]},
                    "due": {"anyOf": [_short_text(30), {"type": "null"}]},
                },
                "required": ["task", "assignee", "due"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["items"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Param:
    name: str
    label: str
    choices: tuple[str, ...] | None = None  # an allow-list; None = free text up to max_chars
    max_chars: int = 500


@dataclass(frozen=True)
class Task:
    id: str
    label: str
    input_budget: int  # characters of the selection (of the page, for ask_about_page)
    over_budget: str  # "truncate" (with a notice) or "refuse"
    keep: str = "start"  # which part survives truncation: "start" or "end" (continue_writing needs the end)
    uses_page: bool = False  # the page is sent as context
    page_budget: int = 0
    params: tuple[Param, ...] = ()
    replaces_selection: bool = True  # the output is meant to replace the selection (UI default action)
    json_schema: dict | None = None
    # A rewrite of the selection: its answer is about as long as the input, so the token budget follows the
    # input (small models otherwise append explanations or loop) and the answer is trimmed to the rewrite.
    rewrite: bool = False

    @property
    def prompt_id(self) -> str:
        return f"workspace/{self.id}"

    @property
    def prompt(self) -> Prompt:
        return load(self.prompt_id)

    @property
    def description(self) -> str:
        return self.prompt.description

    @property
    def output(self) -> str:
        return self.prompt.output


_LANGUAGE = Param("language", "Target language", tuple(LANGUAGES.values()), 32)
_TONE = Param("tone", "Tone", TONES, 32)
_INSTRUCTION = Param("instruction", "Instruction", None, 500)
_QUESTION = Param("question", "Question", None, 500)

TASKS: dict[str, Task] = {t.id: t for t in (
    Task("summarize", "Summarize", 4000, "truncate", uses_page=True, page_budget=1500, replaces_selection=False),
    Task("improve_writing", "Improve writing", 2000, "refuse", rewrite=True),
    Task("fix_grammar", "Fix spelling & grammar", 2000, "refuse", rewrite=True),
    Task("continue_writing", "Continue writing", 3000, "truncate", keep="end", uses_page=True, page_budget=1200,
         replaces_selection=False),
    Task("find_action_items", "Find action items", 3000, "truncate", replaces_selection=False,
         json_schema=ACTION_ITEMS_SCHEMA),
    Task("explain", "Explain this", 3000, "truncate", replaces_selection=False),
    Task("translate", "Translate", 2000, "refuse", params=(_LANGUAGE,), rewrite=True),
    Task("change_tone", "Change tone", 2000, "refuse", params=(_TONE,), rewrite=True),
    Task("make_shorter", "Make shorter", 3000, "refuse", rewrite=True),
    Task("make_longer", "Make longer", 1500, "refuse"),
    Task("ask_ai", "Ask AI", 2500, "refuse", params=(_INSTRUCTION,)),
    Task("ask_about_page", "Ask about this page", 4000, "truncate", uses_page=True, params=(_QUESTION,),
         replaces_selection=False),
)}


def list_tasks() -> list[Task]:
    return list(TASKS.values())


def get_task(task_id) -> Task:
    task = TASKS.get(task_id) if isinstance(task_id, str) else None
    if task is None:
        raise UnknownTask(task_id, list(TASKS))
    return task


@dataclass(frozen=True)
class Truncation:
    """What a task left out of an over-budget text; `message` says it in words for the user."""

    part: str  # "selection" or "page"
    original_chars: int
    kept_chars: int
    kept: str  # "start" or "end"
    message: str

    @property
    def cut_chars(self) -> int:
        return self.original_chars - self.kept_chars


@dataclass(frozen=True)
class PreparedTask:
    task: Task
    values: dict[str, str]
    params: dict[str, str]
    truncations: tuple[Truncation, ...] = field(default_factory=tuple)

    @property
    def notice(self) -> str | None:
        return " ".join(t.message for t in self.truncations) or None

    def request(self, *, user: str | None = None, customer: str | None = None,
                max_tokens: int | None = None) -> LLMRequest:
        prompt = self.task.prompt
        overrides: dict[str, object] = dict(feature="workspace", task=self.task.id, user=user, customer=customer,
                         json_schema=self.task.json_schema)
        if max_tokens is not None:
            if not 1 <= int(max_tokens) <= prompt.max_tokens:
                raise WorkspaceError(f"max_tokens for {self.task.id} must be 1-{prompt.max_tokens}")
            overrides["max_tokens"] = int(max_tokens)
        elif self.task.rewrite:
            text = self.values["text"]
            overrides["max_tokens"] = min(prompt.max_tokens, len(text) // 2 + 48)  # ~2x the input's tokens
        return LLMRequest.from_prompt(prompt, self.values, **overrides)


def validate_params(task: Task, params: dict | None) -> dict[str, str]:
    """Check parameters against the task: known names only, each present, bounded, and on its allow-list."""
    params = dict(params or {})
    accepted = {p.name: p for p in task.params}
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        hint = f"it takes: {', '.join(accepted)}" if accepted else "it takes no parameters"
        raise InvalidParam(f"task {task.id} does not take {', '.join(map(str, unknown))}; {hint}")
    clean: dict[str, str] = {}
    for name, spec in accepted.items():
        raw = params.get(name)
        value = " ".join(raw.split()) if isinstance(raw, str) else ""
        if not value:
            allowed = f" (one of: {', '.join(spec.choices)})" if spec.choices else ""
            raise InvalidParam(f"task {task.id} needs a {spec.label.lower()}{allowed}")
        if len(value) > spec.max_chars or "\x00" in value:
            raise InvalidParam(f"the {spec.label.lower()} is at most {spec.max_chars} characters")
        if spec.choices is not None:
            value = _choose(spec, spec.choices, value)
        clean[name] = value
    return clean


def _choose(spec: Param, choices: tuple[str, ...], value: str) -> str:
    wanted = value.casefold()
    if spec.name == "language" and wanted in LANGUAGES:  # an ISO code
        return LANGUAGES[wanted]
    for choice in choices:
        if choice.casefold() == wanted:
            return choice
    raise InvalidParam(f"unsupported {spec.label.lower()} {value[:40]!r}; choose one of: {', '.join(choices)}")


def prepare(task_id, selection: str | None, page: str | None = None, params: dict | None = None) -> PreparedTask:
    """Validate everything a task needs and fit its text to the budget; raises before anything is spent."""
    task = get_task(task_id)
    clean = validate_params(task, params)
    for name, value in (("selection", selection), ("page", page)):
        if value is not None and not isinstance(value, str):
            raise WorkspaceError(f"the {name} must be text")
    selection, page = selection or "", page or ""
    truncations: list[Truncation] = []
    if task.id == "ask_about_page":
        source, part = (page, "page") if page.strip() else (selection, "selection")
        if not source.strip():
            raise EmptySelection("the page is empty: there is nothing to ask about "
                                 "(nothing was sent and no credit was used)")
    else:
        source, part = selection, "selection"
        if not source.strip():
            raise EmptySelection("the selection is empty: select some text first "
                                 "(nothing was sent and no credit was used)")
    text, cut = fit(source, task.input_budget, keep=task.keep, part=part, task=task,
                    refuse=task.over_budget == "refuse")
    if cut:
        truncations.append(cut)
    values = {"text": text, **clean}
    if task.uses_page and task.id != "ask_about_page":
        values["page"] = NO_PAGE
        if page.strip() and page.strip() != selection.strip():
            context, cut = fit(page, task.page_budget, keep="start", part="page", task=task, refuse=False)
            values["page"] = context
            if cut:
                truncations.append(cut)
    return PreparedTask(task, values, clean, tuple(truncations))


def fit(text: str, budget: int, *, keep: str, part: str, task: Task, refuse: bool) -> tuple[str, Truncation | None]:
    """Return the text, or the part of it that fits at a word boundary plus a notice saying what was cut."""
    if len(text) <= budget:
        return text, None
    if refuse:
        raise SelectionTooLong(
            f"the {part} is {len(text):,} characters; {task.label} works on at most {budget:,} at a time, "
            f"because its result replaces the {part}. Select less text and run it in parts "
            "(nothing was sent and no credit was used).", chars=len(text), budget=budget)
    if keep == "end":
        start = len(text) - budget
        if not text[start - 1].isspace():  # the cut fell inside a word: move it to the next word start
            space = _first_space(text[start:start + _BOUNDARY_SLACK])
            start = start + space + 1 if space is not None else start
        kept, dropped = text[start:], text[:start]
        where = (f"only its last {len(kept):,} characters were used; the first {len(dropped):,} "
                 f"(up to “…{_edge(dropped, end=True)}”) were left out")
    else:
        stop = budget
        if not text[stop].isspace():  # the cut fell inside a word: move it back to the word's start
            low = max(1, stop - _BOUNDARY_SLACK)
            space = _last_space(text[low:stop])
            stop = low + space if space is not None else stop
        kept, dropped = text[:stop], text[stop:]
        where = (f"only its first {len(kept):,} characters were used; the last {len(dropped):,} "
                 f"(from “{_edge(dropped, end=False)}…”) were left out")
    message = (f"The {part} is {len(text):,} characters but {task.label} reads at most {budget:,}: {where}.")
    return kept, Truncation(part, len(text), len(kept), keep, message)


def _edge(text: str, *, end: bool, words: int = 6) -> str:
    parts = text.split()
    chosen = parts[-words:] if end else parts[:words]
    return " ".join(chosen)[:60]


def _first_space(text: str) -> int | None:
    for index, char in enumerate(text):
        if char.isspace():
            return index
    return None


def _last_space(text: str) -> int | None:
    for index in range(len(text) - 1, -1, -1):
        if text[index].isspace():
            return index
    return None

"""Prompt templates: fill-in-the-middle per model family, and a prefix-only fallback for models without FIM.

Every template puts what changes least first (other files, the path tree), then what changes per keystroke
last, so llama.cpp can reuse its KV cache for the common beginning. Where a family was trained on the
suffix-prefix-middle order (StarCoder, CodeLlama) the suffix goes before the prefix: typing at the cursor
then only appends tokens at the very end of the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.completion._languages import Language


@dataclass(frozen=True)
class ContextChunk:
    kind: str  # tree | imports | similar | tab | recent
    path: str
    text: str


@dataclass
class Prompt:
    text: str
    stop: tuple[str, ...]
    template: str
    stable_chars: int  # length of the beginning that does not change while typing at the cursor
    heal: str = ""  # indentation left out of the prompt's end, dropped from the start of the answer


@dataclass(frozen=True)
class FimTemplate:
    name: str
    pre: str
    suf: str
    mid: str
    spm: bool  # suffix-prefix-middle order
    file_sep: str | None  # repo-level marker the family was trained with, else a comment header
    stop: tuple[str, ...]

    def render(self, chunks: list[ContextChunk], path: str, prefix: str, suffix: str,
               language: Language) -> Prompt:
        head = "".join(self._chunk(c, language) for c in chunks)
        head += self._file_header(path, language)
        if self.spm:
            stable = head + self.pre + self.suf + suffix + self.mid
            return Prompt(stable + prefix, self.stop, self.name, len(stable))
        stable = head + self.pre
        return Prompt(stable + prefix + self.suf + suffix + self.mid, self.stop, self.name, len(stable))

    def _chunk(self, chunk: ContextChunk, language: Language) -> str:
        if self.file_sep:
            return f"{self.file_sep}{chunk.path}\n{chunk.text.rstrip()}\n"
        return f"{language.comment} {chunk.kind}: {chunk.path}\n{chunk.text.rstrip()}\n\n"

    def _file_header(self, path: str, language: Language) -> str:
        if self.file_sep:
            return f"{self.file_sep}{path}\n"
        return f"{language.comment} File: {path}\n"


TEMPLATES = {
    # bigcode's SPM variant: <fim_prefix><fim_suffix>suffix<fim_middle>prefix
    "starcoder": FimTemplate("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", True, "<file_sep>",
                             ("<|endoftext|>", "<file_sep>", "<fim_prefix>")),
    # Qwen2.5-Coder documents prefix-suffix-middle only; the repo-level format takes context files.
    "qwen2.5-coder": FimTemplate("qwen2.5-coder", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", False,
                                 "<|file_sep|>", ("<|endoftext|>", "<|file_sep|>", "<|fim_pad|>", "<|repo_name|>")),
    "deepseek-coder": FimTemplate("deepseek-coder", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", False, None,
                                  ("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>")),
    # CodeLlama infilling, suffix first: <PRE> <SUF>suffix <MID> prefix
    "codellama": FimTemplate("codellama", "<PRE> ", "<SUF>", " <MID>", True, None, ("<EOT>", "</s>")),
}


@dataclass(frozen=True)
class PrefixOnlyTemplate:
    """For models without FIM tokens (the embedded SmolLM2): context as commented chunks, then the prefix."""

    name: str = "prefix-only"
    stop: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>", "<|im_start|>")

    def render(self, chunks: list[ContextChunk], path: str, prefix: str, suffix: str,
               language: Language) -> Prompt:
        head = "".join(f"{language.comment} {c.kind}: {c.path}\n{c.text.rstrip()}\n\n" for c in chunks)
        head += f"{language.comment} File: {path}\n"
        return Prompt(head + prefix, self.stop, self.name, len(head))


PREFIX_ONLY = PrefixOnlyTemplate()


def template_for(model: str, override: str | None = None):
    """The template for a model id such as `ollama/qwen2.5-coder:1.5b` or `embedded/smollm2-135m-instruct`."""
    if override:
        if override in TEMPLATES:
            return TEMPLATES[override]
        if override == PREFIX_ONLY.name:
            return PREFIX_ONLY
        raise ValueError(f"unknown completion template {override!r}; known: {', '.join([*TEMPLATES, PREFIX_ONLY.name])}")
    name = model.lower()
    if "starcoder" in name:
        return TEMPLATES["starcoder"]
    if "qwen" in name and "coder" in name:
        return TEMPLATES["qwen2.5-coder"]
    if "deepseek" in name and "coder" in name:
        return TEMPLATES["deepseek-coder"]
    if "codellama" in name or "code-llama" in name:
        return TEMPLATES["codellama"]
    return PREFIX_ONLY

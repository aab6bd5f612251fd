"""`core.prompts._lint`: one file per kind of finding, each producing exactly that finding on the right line."""

from __future__ import annotations

import pytest

from core.prompts import PROMPTS_DIR, lint_file, lint_paths, update_lock
from core.prompts._lint import iban_ok, luhn_ok

HEAD = "---\ndescription: Test prompt.\ntier: fast\ntemperature: 0.0\nmax_tokens: {max_tokens}\n---\n"
# Line numbers: 1-6 front matter, 7 "## system", 8 the system text, 9 blank, 10 "## user", 11-14 the template.


def prompt(system="You are a helpful assistant.", user="Summarize:\n<data>\n{text}\n</data>", extra="",
           max_tokens=100):
    return HEAD.format(max_tokens=max_tokens) + f"## system\n{system}\n\n## user\n{user}\n{extra}"


def lint(tmp_path, text, name="p.md"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return [(f.line, f.severity, f.rule) for f in lint_file(path, ctx=2048)]


def test_clean_prompt_has_no_findings(tmp_path):
    assert lint(tmp_path, prompt()) == []


def test_example_domains_and_non_checksummed_numbers_are_not_pii(tmp_path):
    system = ("Example: write to jane@example.com. Order 4111 1111 1111 1112 and account "
              "GB82 WEST 1234 5698 7654 33 are made up. Dates like 2026-11-23 are fine.")
    assert lint(tmp_path, prompt(system=system)) == []


@pytest.mark.parametrize("system, rule", [
    ("Send questions to jane.doe@gmail.com.", "pii-email"),
    ("Call +44 20 7946 0958 for help.", "pii-phone"),
    ("Or call (415) 555-0132.", "pii-phone"),
    ("Example card: 4111 1111 1111 1111.", "pii-card"),
    ("Example card: 5500-0000-0000-0004.", "pii-card"),
    ("Pay to GB82 WEST 1234 5698 7654 32.", "pii-iban"),
    ("Pay to DE89370400440532013000.", "pii-iban"),
    ("Example: Alice Chen asked for the report.", "pii-demo-user"),
    ("Example: mail sam.support@keel.dev.", "pii-demo-user"),
    ("You are a helpful assistant.\t", "trailing-whitespace"),
    ("You are helping {user_name}.", "placeholder-unresolved"),
])
def test_each_finding_on_the_system_line(tmp_path, system, rule):
    severity = "warning" if rule == "trailing-whitespace" else "error"
    assert lint(tmp_path, prompt(system=system)) == [(8, severity, rule)]


def test_pii_in_a_few_shot_example_in_the_user_section(tmp_path):
    user = "Example input: reach me on 415-555-0132\nNow summarize:\n<data>\n{text}\n</data>"
    assert lint(tmp_path, prompt(user=user)) == [(11, "error", "pii-phone")]


def test_json_braces_in_the_system_section_are_not_placeholders(tmp_path):
    system = 'Reply with JSON only, in the form {"items": [{"task": "..."}]}.'
    assert lint(tmp_path, prompt(system=system)) == []


@pytest.mark.parametrize("line", ["{text} {}", "{text} {0}", "{text.upper}", "{text[0]}", "{text", "{text} }"])
def test_malformed_placeholders(tmp_path, line):
    user = f"Summarize:\n<data>\n{line}\n</data>"
    assert lint(tmp_path, prompt(user=user)) == [(13, "error", "placeholder-malformed")]


def test_escaped_braces_are_fine(tmp_path):
    user = 'Summarize as {{"summary": "..."}}:\n<data>\n{text}\n</data>'
    assert lint(tmp_path, prompt(user=user)) == []


def test_declared_inputs_unused_and_undeclared(tmp_path):
    # "## inputs" starts at line 15; its items are lines 16 and 17.
    assert lint(tmp_path, prompt(extra="## inputs\n- text\n- tone\n")) == [(17, "error", "placeholder-unused")]
    user = "Rewrite in a {tone} tone:\n<data>\n{text}\n</data>"
    assert lint(tmp_path, prompt(user=user, extra="## inputs\n- text\n")) == [(11, "error", "placeholder-undeclared")]
    assert lint(tmp_path, prompt(user=user, extra="## inputs\n- text\n- tone\n")) == []


@pytest.mark.parametrize("system", [
    "Reply with JSON only.\nExplain your reasoning before the answer.",
    "Think step by step.\nReturn only valid JSON.",
    "Be concise.\nDescribe every change in detail.",
    "Answer in one sentence.\nDiscuss the topic at length.",
    "Use no markdown.\nUse bullet points for lists.",
])
def test_contradictions_are_reported_on_the_later_line(tmp_path, system):
    assert lint(tmp_path, prompt(system=system)) == [(9, "error", "contradiction")]


def test_over_the_token_budget(tmp_path):
    system = "You are a helpful assistant. " * 60  # ~1,740 characters, ~435 tokens
    assert lint(tmp_path, prompt(system=system.strip(), max_tokens=1700)) == [(5, "error", "token-budget")]
    assert lint(tmp_path, prompt(system=system.strip(), max_tokens=1500)) == []


@pytest.mark.parametrize("head, line", [
    ("---\ndescription: x\ncolour: red\n---\n", 1),   # unknown key
    ("---\ndescription: x\ntier: [fast\n---\n", 3),   # YAML syntax error, reported near the bad line
    ("---\ndescription: x\nmax_tokens: lots\n---\n", 1),
    ("---\ndescription: x\n", 1),                      # front matter never closed
])
def test_front_matter_failures(tmp_path, head, line):
    text = head + "## system\nHello.\n\n## user\n{text}\n"
    found = lint(tmp_path, text)
    assert [(f[1], f[2]) for f in found] == [("error", "parse-error")]
    assert found[0][0] == line


def test_missing_user_section(tmp_path):
    assert lint(tmp_path, "## system\nHello.\n") == [(1, "error", "parse-error")]


def test_non_utf8_is_a_finding(tmp_path):
    path = tmp_path / "bad.md"
    path.write_bytes(b"---\ndescription: caf\xe9\n---\n")
    [finding] = lint_file(path)
    assert (finding.line, finding.rule, finding.severity) == (2, "encoding", "error")


def test_text_changed_without_a_version_bump(tmp_path):
    folder = tmp_path / "prompts"
    (folder / "sub").mkdir(parents=True)
    file = folder / "sub" / "p.md"
    file.write_text(prompt(), encoding="utf-8")
    update_lock(folder)
    assert "sub/p " in (folder / "versions.lock").read_text()
    assert lint_file(file, ctx=2048) == []
    file.write_text(prompt(system="You are a very helpful assistant."), encoding="utf-8")
    assert [(f.line, f.rule) for f in lint_file(file, ctx=2048)] == [(1, "version-changed")]
    update_lock(folder)
    assert lint_file(file, ctx=2048) == []
    other = folder / "new.md"
    other.write_text(prompt(), encoding="utf-8")
    assert [(f.line, f.rule) for f in lint_file(other, ctx=2048)] == [(1, "version-unlocked")]


def test_lock_versions_are_the_versions_load_reports():
    from core.prompts import catalogue
    from core.prompts._lint import read_lock

    locked = read_lock(PROMPTS_DIR / "versions.lock")
    assert {p.id: p.version for p in catalogue()} == locked


def test_shipped_prompts_lint_clean():
    assert [str(f) for f in lint_paths()] == []


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")


def test_negated_instructions_do_not_contradict(tmp_path):
    system = "Reply with JSON only; do not explain your reasoning. Never think step by step.\nBe concise."
    assert lint(tmp_path, prompt(system=system)) == []


def test_numbers_that_are_not_personal_data(tmp_path):
    system = ("Version 1.2.3 was released on 2026-11-23 at 14:09:28; order #12345678 costs $1,299.00; "
              "ISBN 978-3-16-148410-0; extension 4412.")
    assert lint(tmp_path, prompt(system=system)) == []

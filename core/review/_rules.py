"""Deterministic findings: targeted AST and text rules for the bug classes a small model misses (SQL built from
strings, swallowed exceptions, a query inside a loop, range/len off-by-one, text addressed to an AI reviewer),
and the mapping of linter output (ruff, bandit) onto review comments. These are always part of a review.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field

from core.review._comments import Comment

_SQL = re.compile(r"\b(select\b.+\bfrom|insert\s+into|update\b.+\bset|delete\s+from)\b", re.IGNORECASE | re.DOTALL)
_QUERY_CALLS = {"execute", "executemany", "executescript", "query", "raw", "fetch_one", "fetch_all", "fetchone_sql",
                "scalar", "scalars", "read_sql", "exec_driver_sql"}
_INJECTION = re.compile(
    r"(ignore|disregard|forget)\s+(all\s+|any\s+)?(the\s+|your\s+)?(previous|prior|above|earlier)\s+instructions"
    r"|\b(ai|llm|automated)\s+reviewer\b|approve\s+(this|the)\s+(pr|pull request|change)"
    r"|report\s+no\s+(issues|problems|findings)|you\s+are\s+now\s+", re.IGNORECASE)
_NOT_QUERIES = set(dir(builtins)) | {"append", "extend", "add", "get", "items", "keys", "values", "update", "pop",
                                     "format", "join", "split", "strip", "lower", "upper", "replace", "startswith",
                                     "endswith", "writerow", "write", "info", "debug", "warning", "error",
                                     "exception", "copy", "setdefault", "encode", "decode", "round"}


@dataclass
class FileAnalysis:
    comments: list[Comment] = field(default_factory=list)
    loop_calls: list[tuple[int, str]] = field(default_factory=list)  # (line, callee) inside loops, on added lines
    parsed: bool = True


def _name_of(func: ast.AST) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _string_built(node: ast.AST) -> tuple[bool, str, list[str]]:
    """(is the expression text built from values at run time, its literal text, the names interpolated)."""
    names = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)})
    literal = " ".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values), literal, names
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        left = node.left
        return isinstance(left, (ast.Constant, ast.JoinedStr)) and bool(names), literal, names
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = [n for n in ast.walk(node) if isinstance(n, (ast.Constant, ast.JoinedStr))]
        return bool(parts) and bool(names), literal, names
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
            and isinstance(node.func.value, ast.Constant):
        return bool(node.args or node.keywords), literal, names
    return False, literal, names


def _walk_module_level(tree: ast.AST):
    """Every node outside function bodies (those are scopes of their own)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in ast.iter_child_nodes(node)
                     if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


def _functions(tree: ast.AST):
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _sql_rules(tree: ast.AST, added: dict[int, str], out: FileAnalysis) -> None:
    for scope in _functions(tree):
        body_nodes = list(ast.walk(scope)) if scope is not tree else list(_walk_module_level(tree))
        tainted: dict[str, int] = {}
        flagged: set[int] = set()
        for node in body_nodes:
            value = None
            target_names = []
            if isinstance(node, ast.Assign):
                value, target_names = node.value, [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                value = node.value
                target_names = [node.target.id] if isinstance(node.target, ast.Name) else []
            if value is None:
                continue
            built, literal, names = _string_built(value)
            if built and _SQL.search(literal):
                for name in target_names:
                    tainted[name] = node.lineno
                flagged.add(node.lineno)
                _sql_comment(out, node.lineno, names, literal, added, into_query=False)
        for node in body_nodes:
            if not isinstance(node, ast.Call) or _name_of(node.func) not in _QUERY_CALLS:
                continue
            for arg in node.args:
                built, literal, names = _string_built(arg)
                uses = [n.id for n in ast.walk(arg) if isinstance(n, ast.Name) and n.id in tainted]
                if built and _SQL.search(literal) and arg.lineno not in flagged:
                    flagged.add(arg.lineno)
                    _sql_comment(out, arg.lineno, names, literal, added, into_query=True)
                elif uses:
                    for c in out.comments:  # the string reaches a query call: upgrade to blocker
                        if c.rule == "rule:sql-string" and c.line == tainted[uses[0]]:
                            c.severity, c.confidence = "blocker", 0.95


def _sql_comment(out: FileAnalysis, line: int, names: list[str], literal: str, added: dict, *, into_query: bool):
    if line not in added:
        return
    values = [n for n in names if n not in ("self", "cls")][:4]
    shown = ", ".join(f"`{n}`" for n in values) or "run-time values"
    out.comments.append(Comment(
        path="", line=line, severity="blocker" if into_query else "major", category="security",
        message=f"SQL built from strings with {shown} interpolated: a crafted value changes the query "
                f"(SQL injection).",
        suggestion="Keep the SQL constant with `?` placeholders and pass the values as parameters, e.g. "
                   f"conn.execute(\"... WHERE x = ?\", ({', '.join(values) or 'value'},)).",
        rule="rule:sql-string", confidence=0.9))


def _swallowed(tree: ast.AST, added: dict[int, str], out: FileAnalysis) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.ExceptHandler):
            continue
        if node.lineno not in added and not any(getattr(b, "lineno", 0) in added for b in node.body):
            continue
        quiet = all(isinstance(b, (ast.Pass, ast.Continue)) or
                    (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant)) for b in node.body)
        if not quiet:
            continue
        broad = node.type is None or (isinstance(node.type, ast.Name) and node.type.id in ("Exception",
                                                                                           "BaseException"))
        caught = "every exception" if broad else f"`{ast.unparse(node.type)}`"
        line = node.lineno if node.lineno in added else next(b.lineno for b in node.body if b.lineno in added)
        out.comments.append(Comment(
            path="", line=line, severity="major" if broad else "minor", category="correctness",
            message=f"This `except` swallows {caught} silently: failures (a missing product, a database error) "
                    "disappear and the code carries on as if the step succeeded.",
            suggestion="Catch only the exception you expect, and log it or re-raise: "
                       "`except KeyError: log.warning(...)`; never `except Exception: pass`.",
            rule="rule:swallowed-exception", confidence=0.9 if broad else 0.6))


def _loops(tree: ast.AST, added: dict[int, str], out: FileAnalysis) -> None:
    for loop in ast.walk(tree):
        if isinstance(loop, (ast.For, ast.AsyncFor, ast.While)):
            body = loop.body
            loop_var = loop.target.id if isinstance(loop, (ast.For, ast.AsyncFor)) and \
                isinstance(loop.target, ast.Name) else None
            _off_by_one(loop, loop_var, added, out)
        elif isinstance(loop, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            body = [loop.elt] if not isinstance(loop, ast.DictComp) else [loop.key, loop.value]
            body += [cond for gen in loop.generators for cond in gen.ifs]
        else:
            continue
        for stmt in body:
            for node in ast.walk(stmt):
                if not isinstance(node, ast.Call) or node.lineno not in added:
                    continue
                name = _name_of(node.func)
                if not name:
                    continue
                if name in ("execute", "executemany", "query", "fetch_one", "fetch_all"):
                    _n_plus_one(out, node.lineno, name, via=None)
                elif name not in _NOT_QUERIES and not name[0].isupper():
                    out.loop_calls.append((node.lineno, name))


def _n_plus_one(out: FileAnalysis, line: int, name: str, via: str | None) -> None:
    path = f"`{name}()`" + (f" (which runs `{via}`)" if via else "")
    out.comments.append(Comment(
        path="", line=line, severity="major", category="performance",
        message=f"N+1 query: {path} runs one database query per loop iteration; 100 rows cost 100 round trips.",
        suggestion="Fetch everything in one query before the loop (a JOIN or `WHERE id IN (...)` / GROUP BY), "
                   "then look results up in a dict inside the loop.",
        rule="rule:n-plus-one", confidence=0.85 if via is None else 0.8))


def n_plus_one_comment(line: int, name: str, via: str | None) -> Comment:
    """The N+1 comment for a loop call the agent resolved to a query (via = the query call it found)."""
    out = FileAnalysis()
    _n_plus_one(out, line, name, via)
    return out.comments[0]


def _len_plus_one(node: ast.AST) -> str | None:
    """`len(x) + 1` → "x"."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.Constant) \
            and node.right.value == 1 and isinstance(node.left, ast.Call) and _name_of(node.left.func) == "len" \
            and node.left.args:
        return ast.unparse(node.left.args[0])
    return None


def _indexed_by(body: list[ast.stmt], seq: str, var: str | None) -> bool:
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == seq and \
                    (var is None or var in {n.id for n in ast.walk(node.slice) if isinstance(n, ast.Name)}):
                return True
    return False


def _off_by_one(loop, var: str | None, added: dict[int, str], out: FileAnalysis) -> None:
    if loop.lineno not in added:
        return
    seq = None
    if isinstance(loop, (ast.For, ast.AsyncFor)) and isinstance(loop.iter, ast.Call) and \
            _name_of(loop.iter.func) == "range" and loop.iter.args:
        seq = _len_plus_one(loop.iter.args[-1] if len(loop.iter.args) <= 2 else loop.iter.args[1])
        if seq is None and len(loop.iter.args) >= 2 and isinstance(loop.iter.args[1], ast.Call):
            seq = None
        bound = f"range(..., len({seq}) + 1)"
    elif isinstance(loop, ast.While) and isinstance(loop.test, ast.Compare) and \
            any(isinstance(op, ast.LtE) for op in loop.test.ops) and isinstance(loop.test.comparators[-1], ast.Call) \
            and _name_of(loop.test.comparators[-1].func) == "len" and loop.test.comparators[-1].args:
        seq = ast.unparse(loop.test.comparators[-1].args[0])
        var = ast.unparse(loop.test.left) if isinstance(loop.test.left, ast.Name) else None
        bound = f"{var} <= len({seq})"
    if seq is None or not _indexed_by(loop.body, seq, var):
        return
    out.comments.append(Comment(
        path="", line=loop.lineno, severity="major", category="correctness",
        message=f"Off-by-one: the loop bound {bound} reaches index len({seq}), one past the last element, so "
                f"`{seq}[{var or 'i'}]` raises IndexError on the final iteration.",
        suggestion=f"Loop over range(len({seq})) — or better, iterate `for item in {seq}` (itertools.accumulate "
                   "for running totals).",
        rule="rule:off-by-one", confidence=0.9))


def _index_at_len(tree: ast.AST, added: dict[int, str], out: FileAnalysis) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and node.lineno in added and isinstance(node.slice, ast.Call) and \
                _name_of(node.slice.func) == "len" and node.slice.args and \
                ast.unparse(node.slice.args[0]) == ast.unparse(node.value):
            seq = ast.unparse(node.value)
            out.comments.append(Comment(
                path="", line=node.lineno, severity="major", category="correctness",
                message=f"Off-by-one: `{seq}[len({seq})]` is one past the end and always raises IndexError.",
                suggestion=f"Use `{seq}[-1]` (or `{seq}[len({seq}) - 1]`) for the last element.",
                rule="rule:off-by-one", confidence=0.95))


def injection_text(added: dict[int, str]) -> list[Comment]:
    """Lines that speak to an AI reviewer. They change nothing (diff text is data) but deserve a human's eye."""
    found = []
    for line, text in added.items():
        match = _INJECTION.search(text)
        if match:
            found.append(Comment(
                path="", line=line, severity="minor", category="security",
                message=f"This line addresses an automated reviewer (\"{match.group(0).strip()}\"). Keel treats diff "
                        "text as data and ignored it; instructions to reviewers hidden in code are a "
                        "social-engineering red flag.",
                suggestion="Remove the note; ask a human reviewer for approval instead.",
                rule="rule:reviewer-injection", confidence=0.9))
    return found


def analyse_python(source: str, added: dict[int, str]) -> FileAnalysis:
    """Every AST rule on one post-change file; only findings on added lines are reported."""
    out = FileAnalysis()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        out.parsed = False
        _line_by_line(added, out)
        return out
    _sql_rules(tree, added, out)
    _swallowed(tree, added, out)
    _loops(tree, added, out)
    _index_at_len(tree, added, out)
    return out


def _line_by_line(added: dict[int, str], out: FileAnalysis) -> None:
    """The file does not parse (a partial reconstruction, or broken code): run the SQL rule on each added line
    that parses on its own, so the worst finding is not lost."""
    for number, text in added.items():
        try:
            tree = ast.parse(text.strip())
        except (SyntaxError, ValueError):
            continue
        single = FileAnalysis()
        _sql_rules(tree, {1: text}, single)
        for c in single.comments:
            c.line = number
            out.comments.append(c)


def defines_query(source: str) -> str | None:
    """The query call a function's source makes (e.g. "conn.execute"), or None; how the agent confirms N+1."""
    match = re.search(r"\b([\w.]*\.(?:execute|executemany|executescript|query|scalars?|read_sql))\s*\(", source)
    return match.group(1) if match else None


# -- linter findings → comments ------------------------------------------------------------------------------

_BANDIT_SKIP = {"B101", "B404", "B603"}  # assert, import subprocess, subprocess without shell: noise in review
_RUFF_MAP = {  # code prefix → (category, severity)
    "E9": ("correctness", "blocker"), "F821": ("correctness", "blocker"), "F811": ("correctness", "major"),
    "F63": ("correctness", "major"), "F7": ("correctness", "major"), "F841": ("quality", "minor"),
    "F401": ("quality", "nit"), "F": ("quality", "minor"), "E722": ("quality", "minor"),
    "BLE": ("quality", "minor"), "B006": ("correctness", "major"), "B": ("correctness", "minor"),
    "PERF": ("performance", "minor"), "PLE": ("correctness", "major"),
}


def linter_comment(finding: dict) -> Comment | None:
    code = str(finding.get("code") or "")
    tool = finding.get("tool")
    if tool == "bandit":
        if code in _BANDIT_SKIP:
            return None
        severity = {"HIGH": "blocker", "MEDIUM": "major", "LOW": "minor"}.get(finding.get("severity", ""), "minor")
        category = "security"
        if code == "B110":  # try/except/pass: a correctness problem first
            category, severity = "correctness", "minor"
        confidence = {"HIGH": 0.85, "MEDIUM": 0.7, "LOW": 0.5}.get(finding.get("confidence") or "", 0.6)
        suggestion = _BANDIT_FIX.get(code, "")
    else:
        category, severity = next((v for k, v in sorted(_RUFF_MAP.items(), key=lambda kv: -len(kv[0]))
                                   if code.startswith(k)), ("quality", "minor"))
        confidence = 0.8
        suggestion = finding.get("fix") or ""
    return Comment(path=finding["path"], line=int(finding["line"]), severity=severity, category=category,
                   message=f"{finding.get('message', '').strip()} ({tool} {code})", suggestion=suggestion,
                   rule=f"{tool}:{code}", confidence=confidence)


_BANDIT_FIX = {
    "B608": "Use a constant SQL string with placeholders and pass values as parameters.",
    "B602": "Pass the command as a list to subprocess.run without shell=True.",
    "B605": "Use subprocess.run([...]) with a list of arguments (no shell), or a library call such as gzip.open.",
    "B607": "Call the executable by its full path and pass arguments as a list.",
    "B110": "Log the exception or catch a narrower one; do not pass silently.",
    "B307": "Use ast.literal_eval for data, never eval on input.",
    "B301": "Do not unpickle untrusted data; use JSON.",
    "B506": "Use yaml.safe_load.",
    "B105": "Read secrets from the environment or a secret store, not source code.",
}

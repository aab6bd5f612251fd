"""Deterministic findings the analyzers do not make, and the mapping of analyzer output onto review comments.

ruff (with its S/B/BLE/PLE/PLW families) and bandit run first; every rule here exists because neither covers it:

- sql-string: SQL text built with f-strings, `%`, `+` or `.format` in one statement and passed to `execute` in a
  later one (bandit's B608 sees only a literal SQL string at the call; ruff's S608 likewise).
- swallowed-exception: an `except` (of any type, not only bare or broad) whose body only passes or continues;
  ruff's E722/BLE001 and bandit's B110/B112 miss a narrow type that is silenced, and B112 is off by default.
- n-plus-one: a query call in a loop body, and (with the agent's follow-up) a helper called in a loop that runs one.
- off-by-one: index arithmetic that runs past the end (`range(len(x) + 1)`, `<= len(x)`, a `< len(x)` bound with
  an increment before indexing, `x[i + 1]` under `range(len(x))`) or drops the last item (`range(len(x) - 1)`
  with only `x[i]` read). No linter reasons about loop bounds against the indexing in the body.
- removed-guard: diff-aware, which no linter can be: a PR that deletes a check on `..`, a normpath/abspath/realpath
  or commonpath guard, `safe_join`/`secure_filename`, an `escape`, an auth decorator or a size limit, without
  putting the same guard back anywhere in the file. Flagged on the removal.
- reviewer-injection: text in the diff addressed to an AI reviewer.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.review._comments import Comment, Severity, first_added
from core.review._diff import FileDiff

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


def _walk_module_level(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node outside function bodies (those are scopes of their own)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in ast.iter_child_nodes(node)
                     if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


def _functions(tree: ast.AST) -> Iterator[ast.AST]:
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
            value: ast.expr
            if isinstance(node, ast.Assign):
                value, target_names = node.value, [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                value = node.value
                target_names = [node.target.id] if isinstance(node.target, ast.Name) else []
            else:
                continue
            built, literal, names = _string_built(value)
            if built and _SQL.search(literal):
                for name in target_names:
                    tainted[name] = node.lineno
                flagged.add(node.lineno)
                _sql_comment(out, node.lineno, names, literal, added, into_query=False,
                             end=getattr(node, "end_lineno", 0) or 0)
        for node in body_nodes:
            if not isinstance(node, ast.Call) or _name_of(node.func) not in _QUERY_CALLS:
                continue
            for arg in node.args:
                built, literal, names = _string_built(arg)
                uses = [n.id for n in ast.walk(arg) if isinstance(n, ast.Name) and n.id in tainted]
                if built and _SQL.search(literal) and arg.lineno not in flagged:
                    flagged.add(arg.lineno)
                    _sql_comment(out, arg.lineno, names, literal, added, into_query=True,
                                 end=getattr(node, "end_lineno", 0) or 0)
                elif uses:
                    for c in out.comments:  # the string reaches a query call: upgrade to blocker
                        if c.rule == "rule:sql-string" and c.line == tainted[uses[0]]:
                            c.severity, c.confidence = Severity.BLOCKER, 0.95


def _sql_comment(out: FileAnalysis, line: int, names: list[str], literal: str, added: dict[int, str], *,
                 into_query: bool, end: int = 0) -> None:
    if line not in added:
        first = first_added(added, line, end)
        if first is None:
            return
        line = first
    values = [n for n in names if n not in ("self", "cls")][:4]
    shown = ", ".join(f"`{n}`" for n in values) or "run-time values"
    out.comments.append(Comment(
        path="", line=line, severity=Severity.BLOCKER if into_query else Severity.MAJOR, category="security",
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
        broad = node.type is None or (isinstance(node.type, ast.Name) and node.type.id in ("Exception",
                                                                                           "BaseException"))
        if not quiet and broad and not _reports(node):
            quiet = True  # e.g. `except: return []`: every error becomes a default value, nobody hears of it
        if not quiet:
            continue
        caught = "every exception" if broad or node.type is None else f"`{ast.unparse(node.type)}`"
        line = node.lineno if node.lineno in added else next(b.lineno for b in node.body if b.lineno in added)
        out.comments.append(Comment(
            path="", line=line, severity=Severity.MAJOR if broad else Severity.MINOR, category="correctness",
            message=f"This `except` swallows {caught} silently: failures (a missing product, a database error) "
                    "disappear and the code carries on as if the step succeeded.",
            suggestion="Catch only the exception you expect, and log it or re-raise: "
                       "`except KeyError: log.warning(...)`; never `except Exception: pass`.",
            rule="rule:swallowed-exception", confidence=0.9 if broad else 0.6))


def _reports(handler: ast.ExceptHandler) -> bool:
    """Does the handler re-raise, or log/print/warn/record the exception?"""
    for node in ast.walk(handler):
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, ast.Call):
            name = (_name_of(node.func) or "").lower()
            owner = ast.unparse(node.func).lower()
            if name in ("print", "warn", "exception", "error", "warning", "critical", "info", "debug", "log",
                        "capture_exception", "print_exc", "format_exc") or "log" in owner:
                return True
        if handler.name and isinstance(node, ast.Name) and node.id == handler.name:
            return True  # the exception object is used (stored, returned, wrapped)
    return False


def _loops(tree: ast.AST, added: dict[int, str], out: FileAnalysis) -> None:
    for loop in ast.walk(tree):
        body: list[ast.AST]
        if isinstance(loop, (ast.For, ast.AsyncFor, ast.While)):
            body = list(loop.body)
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
        path="", line=line, severity=Severity.MAJOR, category="performance",
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


def _len_of(node: ast.AST | None) -> str | None:
    """`len(x)` → "x"."""
    if isinstance(node, ast.Call) and _name_of(node.func) == "len" and len(node.args) == 1 and not node.keywords:
        return ast.unparse(node.args[0])
    return None


def _len_minus_one(node: ast.AST) -> str | None:
    """`len(x) - 1` → "x"."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.right, ast.Constant) \
            and node.right.value == 1:
        return _len_of(node.left)
    return None


def _offsets(body: list[ast.stmt], seq: str, var: str) -> set[int | None]:
    """How the body indexes `seq` with `var`: x[i] → 0, x[i + 2] → 2, x[i - 1] → -1, anything else → None."""
    found: set[int | None] = set()
    for stmt in body:
        for node in ast.walk(stmt):
            if not isinstance(node, ast.Subscript) or ast.unparse(node.value) != seq:
                continue
            index = node.slice
            if isinstance(index, ast.Name) and index.id == var:
                found.add(0)
            elif isinstance(index, ast.BinOp) and isinstance(index.left, ast.Name) and index.left.id == var and \
                    isinstance(index.right, ast.Constant) and isinstance(index.right.value, int) and \
                    isinstance(index.op, (ast.Add, ast.Sub)):
                found.add(index.right.value if isinstance(index.op, ast.Add) else -index.right.value)
            elif var in {n.id for n in ast.walk(index) if isinstance(n, ast.Name)}:
                found.add(None)
    return found


def _increment_before_index(body: list[ast.stmt], seq: str, var: str) -> bool:
    """`var += 1` runs before the first `seq[var]` read in the loop body (so the last pass reads seq[len])."""
    bumped = False
    for stmt in body:
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == var and \
                isinstance(stmt.op, ast.Add):
            bumped = True
            continue
        if 0 in _offsets([stmt], seq, var):
            return bumped
    return False


def _while_bound(test: ast.AST) -> tuple[str, str, ast.cmpop] | None:
    """(var, seq, op) of a `var < len(seq)` / `var <= len(seq)` comparison, also inside `and`."""
    parts = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
    for part in parts:
        if isinstance(part, ast.Compare) and len(part.ops) == 1 and isinstance(part.left, ast.Name) and \
                isinstance(part.ops[0], (ast.Lt, ast.LtE)):
            seq = _len_of(part.comparators[0])
            if seq is not None:
                return part.left.id, seq, part.ops[0]
    return None


def _off_by_one(loop, var: str | None, added: dict[int, str], out: FileAnalysis) -> None:
    """Loop bounds against the indexing in the body: past the end, or one short of it."""
    header_end = getattr(loop.iter if isinstance(loop, (ast.For, ast.AsyncFor)) else loop.test, "end_lineno", 0)
    line = loop.lineno if loop.lineno in added else first_added(added, loop.lineno, header_end or 0)
    if line is None:
        return
    problem = None  # (message, suggestion, severity)
    if isinstance(loop, (ast.For, ast.AsyncFor)) and var and isinstance(loop.iter, ast.Call) and \
            _name_of(loop.iter.func) == "range" and 1 <= len(loop.iter.args) <= 2:
        stop = loop.iter.args[-1]
        seq = _len_plus_one(stop)
        if seq is not None and 0 in _offsets(loop.body, seq, var):
            problem = ((f"the loop bound `range(..., len({seq}) + 1)` reaches index len({seq}), one past the last "
                       f"element, so `{seq}[{var}]` raises IndexError on the final iteration."),
                       f"Loop over range(len({seq})) — or iterate `for item in {seq}`.")
        elif (seq := _len_of(stop)) is not None:
            ahead = sorted(k for k in _offsets(loop.body, seq, var) if isinstance(k, int) and k > 0)
            if ahead:
                problem = ((f"`{seq}[{var} + {ahead[-1]}]` inside `range(len({seq}))` reads past the end on the last "
                           f"iteration ({var} = len({seq}) - 1): IndexError."),
                           f"Stop at `range(len({seq}) - {ahead[-1]})`, or iterate pairs with zip({seq}, {seq}[1:]).")
        elif (seq := _len_minus_one(stop)) is not None:
            used = _offsets(loop.body, seq, var)
            if used == {0}:
                problem = ((f"`range(len({seq}) - 1)` stops one short: the body reads only `{seq}[{var}]`, so the "
                           f"last element of `{seq}` is never processed (an off-by-one that silently drops data)."),
                           f"Loop over range(len({seq})) — or iterate `for item in {seq}`.")
    elif isinstance(loop, ast.While):
        bound = _while_bound(loop.test)
        if bound is not None:
            var, seq, op = bound
            if isinstance(op, ast.LtE) and _offsets(loop.body, seq, var) & {0}:
                problem = ((f"the loop bound `{var} <= len({seq})` reaches index len({seq}), one past the last "
                           f"element, so `{seq}[{var}]` raises IndexError on the final iteration."),
                           f"Use `{var} < len({seq})`.")
            elif isinstance(op, ast.Lt) and _increment_before_index(loop.body, seq, var):
                problem = ((f"`{var} < len({seq})` is checked before `{var} += 1`, so the last pass reads "
                           f"`{seq}[{var}]` with {var} = len({seq}): IndexError past the end."),
                           (f"Check `{var} < len({seq}) - 1` (or `{var} + 1 < len({seq})`), or increment after "
                           "reading."))
    if problem is None:
        return
    message, suggestion = problem
    out.comments.append(Comment(
        path="", line=line, severity=Severity.MAJOR, category="correctness", message=f"Off-by-one: {message}",
        suggestion=suggestion, rule="rule:off-by-one", confidence=0.9))


def _index_at_len(tree: ast.AST, added: dict[int, str], out: FileAnalysis) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and node.lineno in added and isinstance(node.slice, ast.Call) and \
                _name_of(node.slice.func) == "len" and node.slice.args and \
                ast.unparse(node.slice.args[0]) == ast.unparse(node.value):
            seq = ast.unparse(node.value)
            out.comments.append(Comment(
                path="", line=node.lineno, severity=Severity.MAJOR, category="correctness",
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
                path="", line=line, severity=Severity.MINOR, category="security",
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


# -- removed guards (diff-aware) ---------------------------------------------------------------------------------

_DOTDOT = re.compile(r"""(['"])\.\.\1|\.\.[/\\]|[/\\]\.\.""")
_PATH_GUARD = re.compile(r"\b(normpath|abspath|realpath|commonpath|commonprefix|is_relative_to|relative_to|safe_join|"
                         r"secure_filename|send_from_directory|safe_extract|is_within_directory)\s*\(")
_ESCAPE = re.compile(r"(?<!re\.)\b((?:html|markupsafe|cgi|saxutils|flask|jinja2)\.)?(escape|quote|quoteattr|"
                     r"clean|sanitize\w*|bleach\w*)\s*\(")
_AUTH_DECORATOR = re.compile(r"^\s*@\s*([\w.]*(?:login|auth|permission|require|admin|staff|approver|role|csrf|"
                             r"protect|verified)[\w.]*)", re.IGNORECASE)
_CHECK_CALL = re.compile(r"\bif\s+not\s+[\w.]*(?:inside|within|safe|allowed|valid|permitted|authori[sz]ed)\w*\s*\(")
_SIZE_LIMIT = re.compile(r"\b([A-Z0-9_]*(?:MAX|LIMIT|SIZE|LENGTH)[A-Z0-9_]*|max_\w+|\w+_limit|content_length)\b")
_COMPARE = re.compile(r"[<>]=?")


def _guard_in(text: str) -> tuple[str, str, str] | None:
    """(kind, the guard's own text to look for on the added side, how to name it) for a removed line."""
    code = text.split("#", 1)[0]
    if not code.strip():
        return None
    if (m := _AUTH_DECORATOR.match(code)):
        return "auth", m.group(1), f"the `@{m.group(1)}` decorator (an access check)"
    if (m := _PATH_GUARD.search(code)):
        return "path", m.group(1), f"the `{m.group(1)}()` path guard"
    if _DOTDOT.search(code):
        return "dotdot", "..", "the check on `..` (path traversal)"
    if (m := _CHECK_CALL.search(code)):
        return "check", m.group(0), f"the check `{m.group(0).strip()}...)`"
    if (m := _ESCAPE.search(code)):
        return "escape", m.group(2), f"the `{(m.group(1) or '') + m.group(2)}()` escaping of the value"
    if (m := _SIZE_LIMIT.search(code)) and _COMPARE.search(code) and re.match(r"\s*(if|elif|assert|while)\b", code):
        return "size", m.group(1), f"the size limit on `{m.group(1)}`"
    return None


def _still_there(kind: str, token: str, added_text: str) -> bool:
    if kind in ("dotdot", "path", "check"):  # any path guard the PR adds covers a removed one
        return bool(_DOTDOT.search(added_text) or _PATH_GUARD.search(added_text) or _CHECK_CALL.search(added_text))
    if kind == "auth":
        return re.search(r"@\s*" + re.escape(token) + r"\b", added_text) is not None
    return re.search(r"\b" + re.escape(token) + r"\b", added_text) is not None


_WHY = {
    "auth": "the endpoint now runs for callers who are not signed in or not allowed",
    "path": "a crafted name (`../../etc/passwd`, an absolute path) now reaches the file system outside the intended "
            "directory (path traversal)",
    "dotdot": "a name with `..` now walks out of the intended directory (path traversal)",
    "check": "input the check refused (a path outside the directory, a value not allowed) now goes through",
    "escape": "the value now reaches the output unescaped: markup or script in it runs in the reader's browser (XSS) "
              "or breaks the quoting",
    "size": "input of any size is now accepted: one large request can exhaust memory or disk",
}


def removed_guards(f: FileDiff) -> tuple[list[Comment], dict[int, str]]:
    """Validation or sanitising the PR deletes without putting it back anywhere in the file: (comments, the new-side
    lines they anchor on → text). A removal has no new-side line, so the comment sits on the line that now follows it."""
    added_text = "\n".join(f.added.values())
    comments, anchors = [], {}
    for h in f.hunks:
        rows = h.lines
        for i, (kind, old, _, text) in enumerate(rows):
            if kind != "-":
                continue
            guard = _guard_in(text)
            if guard is None or _still_there(guard[0], guard[1], added_text):
                continue
            after = next(((new, t) for _, _, new, t in rows[i + 1:] if new is not None), None) or \
                next(((new, t) for _, _, new, t in reversed(rows[:i]) if new is not None), None)
            if after is None:
                continue
            kind_, _, name = guard
            anchors[after[0]] = after[1]
            comments.append(Comment(
                path=f.path, line=after[0], severity=Severity.BLOCKER if kind_ == "auth" else Severity.MAJOR,
                category="security",
                message=f"This PR removes {name} (old line {old}: `{text.strip()[:80]}`) and nothing in the file "
                        f"replaces it: {_WHY[kind_]}.",
                suggestion="Keep the check (or move it, visibly, to a helper every caller goes through); if it was "
                           "redundant, say which check now covers this input.",
                rule="rule:removed-guard", confidence=0.8))
    return comments, anchors


# -- linter findings → comments ------------------------------------------------------------------------------

_BANDIT_SEVERITY = {"HIGH": Severity.BLOCKER, "MEDIUM": Severity.MAJOR, "LOW": Severity.MINOR}
_BANDIT_SKIP = {"B101", "B404", "B603"}  # assert, import subprocess, subprocess without shell: noise in review
_RUFF_MAP = {  # code prefix → (category, severity)
    "E9": ("correctness", Severity.BLOCKER), "F821": ("correctness", Severity.BLOCKER),
    "F811": ("correctness", Severity.MAJOR), "F63": ("correctness", Severity.MAJOR),
    "F7": ("correctness", Severity.MAJOR), "F841": ("quality", Severity.MINOR), "F401": ("quality", Severity.NIT),
    "F": ("quality", Severity.MINOR), "E722": ("quality", Severity.MINOR), "BLE": ("quality", Severity.MINOR),
    "B006": ("correctness", Severity.MAJOR), "B": ("correctness", Severity.MINOR),
    "PERF": ("performance", Severity.MINOR), "PERF4": ("performance", Severity.NIT),
    "PLE": ("correctness", Severity.MAJOR), "PLW": ("correctness", Severity.MINOR),
    "RUF": ("correctness", Severity.MINOR),
    # S: bandit's checks as ported to ruff (S608 is bandit's B608); the same severities as bandit gives them
    "S": ("security", Severity.MINOR), "S1": ("security", Severity.MINOR), "S201": ("security", Severity.MAJOR),
    "S202": ("security", Severity.MAJOR), "S301": ("security", Severity.MAJOR), "S302": ("security", Severity.MAJOR),
    "S307": ("security", Severity.MAJOR), "S102": ("security", Severity.MAJOR), "S501": ("security", Severity.MAJOR),
    "S506": ("security", Severity.MAJOR), "S507": ("security", Severity.MAJOR), "S602": ("security", Severity.BLOCKER),
    "S604": ("security", Severity.MAJOR), "S605": ("security", Severity.BLOCKER), "S608": ("security", Severity.MAJOR),
    "S610": ("security", Severity.MAJOR), "S611": ("security", Severity.MAJOR), "S701": ("security", Severity.MAJOR),
    "S702": ("security", Severity.MAJOR), "S704": ("security", Severity.MAJOR), "S4": ("security", Severity.NIT),
    "S110": ("correctness", Severity.MINOR), "S112": ("correctness", Severity.MINOR),
}


def linter_comment(finding: dict) -> Comment | None:
    code = str(finding.get("code") or "")
    tool = finding.get("tool")
    if tool == "bandit":
        if code in _BANDIT_SKIP:
            return None
        severity = _BANDIT_SEVERITY.get(finding.get("severity", ""), Severity.MINOR)
        category = "security"
        if code in ("B110", "B112"):  # try/except/pass or continue: a correctness problem first
            category, severity = "correctness", Severity.MINOR
        confidence = {"HIGH": 0.85, "MEDIUM": 0.7, "LOW": 0.5}.get(finding.get("confidence") or "", 0.6)
        suggestion = _BANDIT_FIX.get(code, "")
    else:
        category, severity = next((v for k, v in sorted(_RUFF_MAP.items(), key=lambda kv: -len(kv[0]))
                                   if code.startswith(k)), ("quality", Severity.MINOR))
        confidence = 0.8
        suggestion = finding.get("fix") or (_BANDIT_FIX.get("B" + code[1:], "") if code.startswith("S") else "")
    line = int(finding["line"])
    return Comment(path=finding["path"], line=line, severity=severity, category=category,
                   message=f"{finding.get('message', '').strip()} ({tool} {code})", suggestion=suggestion,
                   rule=f"{tool}:{code}", confidence=confidence, end_line=int(finding.get("end_line") or line))


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
    "B202": "Check every member's path (tarfile's filter='data', Python 3.12+) before extracting an archive.",
    "B701": "Create the Jinja2 Environment with autoescape=True (or select_autoescape()).",
    "B604": "Pass the command as a list of arguments without a shell.",
    "B501": "Keep certificate verification on (verify=True).",
}

"""Shared helpers for the benchmarks: isolated settings, statistics and the report every script prints.

A benchmark fills a `Report` with metrics (what was measured), a baseline measured in the same process and
checks against targets, then calls `report.emit(as_json)`: one JSON object with `--json`, otherwise a
readable table with PASS/FAIL. The exit status is 0 only if every check passed and nothing failed.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_VAR = REPO_ROOT / "var" / "bench"

if str(REPO_ROOT) not in sys.path:  # `python bench/NAME.py` works without PYTHONPATH=.
    sys.path.insert(0, str(REPO_ROOT))


# -- settings -----------------------------------------------------------------------------------------


def isolate_env(**values: str) -> None:
    """Drop every KEEL_* variable inherited from the shell, then set `values` (names without KEEL_)."""
    for name in list(os.environ):
        if name.startswith("KEEL_"):
            del os.environ[name]
    for key, value in values.items():
        os.environ[f"KEEL_{key}"] = str(value)


def fresh_core(**env: str):
    """Point Keel at `env` (KEEL_* without the prefix), forget cached settings and engine, migrate.

    Returns the new `Settings`.
    """
    isolate_env(**env)
    from core import config, db

    config.reset_settings()
    db.dispose_engine()
    settings = config.get_settings()
    settings.ensure_dirs()
    db.upgrade()
    return settings


# -- statistics ---------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Percentile with linear interpolation (p in 0..100)."""
    data = sorted(values)
    if not data:
        return math.nan
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * p / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return data[lo] + (data[hi] - data[lo]) * (rank - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def rnd(value, digits: int = 3):
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return round(value, digits)
    return value


# -- report -------------------------------------------------------------------------------------------


_OPS = {"<=": lambda v, t: v <= t, "<": lambda v, t: v < t, ">=": lambda v, t: v >= t,
        ">": lambda v, t: v > t, "==": lambda v, t: v == t}


class Report:
    """What one benchmark measured: metrics, baseline, ratios, checks against targets, notes, error."""

    def __init__(self, name: str, title: str):
        self.name = name
        self.title = title
        self.metrics: dict[str, dict] = {}
        self.checks: list[dict] = []
        self.notes: list[str] = []
        self.error: str | None = None
        self.started = time.perf_counter()
        self._cpu_start = _cpu_snapshot()

    def metric(self, key: str, value, unit: str = "", label: str | None = None, digits: int = 3) -> None:
        self.metrics[key] = {"value": rnd(value, digits), "unit": unit, "label": label or key}

    def check(self, key: str, value, op: str, target, unit: str = "", label: str | None = None) -> bool:
        passed = value is not None and not (isinstance(value, float) and math.isnan(value)) and _OPS[op](value, target)
        self.checks.append({"name": key, "label": label or key, "value": rnd(value), "op": op, "target": target,
                            "unit": unit, "passed": bool(passed)})
        return bool(passed)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def fail(self, message: str) -> None:
        self.error = message if self.error is None else f"{self.error}; {message}"

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c["passed"] for c in self.checks)

    def machine_noise(self) -> dict:
        """CPU used by processes outside this benchmark while it ran, in cores (0 = the machine was quiet)."""
        end = _cpu_snapshot()
        if self._cpu_start is None or end is None:
            return {}
        wall = max(time.perf_counter() - self.started, 1e-6)
        system = end[0] - self._cpu_start[0]
        own = end[1] - self._cpu_start[1]
        return {"other_cpu_cores": round(max(0.0, system - own) / wall, 2), "cores": os.cpu_count()}

    def as_dict(self) -> dict:
        noise = self.machine_noise()
        if noise.get("other_cpu_cores", 0) >= 0.25 and not any(n.startswith("machine busy") for n in self.notes):
            self.notes.append(f"machine busy: other processes used {noise['other_cpu_cores']} of "
                              f"{noise['cores']} cores on average during this run, so timings are noisy; re-run "
                              "on a quiet machine before trusting small differences")
        return {
            "benchmark": self.name,
            "title": self.title,
            "ok": self.ok,
            "error": self.error,
            "metrics": {k: v["value"] for k, v in self.metrics.items()},
            "units": {k: v["unit"] for k, v in self.metrics.items() if v["unit"]},
            "checks": self.checks,
            "notes": self.notes,
            "machine": noise,
            "wall_s": round(time.perf_counter() - self.started, 2),
        }

    def emit(self, as_json: bool) -> int:
        if as_json:
            print(json.dumps(self.as_dict()), flush=True)
        else:
            print(self.table(), flush=True)
        return 0 if self.ok else 1

    def table(self) -> str:
        data = self.as_dict()
        lines = [f"== {self.name}: {self.title}", ""]
        if self.metrics:
            width = max(len(m["label"]) for m in self.metrics.values())
            for m in self.metrics.values():
                lines.append(f"  {m['label']:<{width}}  {_fmt(m['value'])} {m['unit']}".rstrip())
            lines.append("")
        if self.checks:
            width = max(len(c["label"]) for c in self.checks)
            lines.append(f"  {'check':<{width}}  {'value':>12}  {'target':<16} result")
            for c in self.checks:
                target = f"{c['op']} {_fmt(c['target'])} {c['unit']}".strip()
                lines.append(f"  {c['label']:<{width}}  {_fmt(c['value']):>12}  {target:<16} "
                             f"{'PASS' if c['passed'] else 'FAIL'}")
            lines.append("")
        for text in self.notes:
            lines.append(f"  note: {text}")
        if self.error:
            lines.append(f"  ERROR: {self.error}")
        if data["machine"]:
            lines.append(f"  other processes' CPU during the run: {data['machine']['other_cpu_cores']} of "
                         f"{data['machine']['cores']} cores")
        lines.append(f"  overall: {'PASS' if self.ok else 'FAIL'}  ({data['wall_s']:.1f} s)")
        return "\n".join(lines)


def _cpu_snapshot() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its children)."""
    try:
        import psutil

        total = psutil.cpu_times()
        busy = total.user + total.system + getattr(total, "nice", 0.0) + getattr(total, "irq", 0.0) + \
            getattr(total, "softirq", 0.0)
        me = psutil.Process()
        times = me.cpu_times()
        own = times.user + times.system + times.children_user + times.children_system
        for child in me.children(recursive=True):
            try:
                t = child.cpu_times()
                own += t.user + t.system
            except psutil.Error:
                pass
        return busy, own
    except Exception:
        return None


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def run(report: Report, body, as_json: bool) -> int:
    """Run `body(report)`; any exception becomes the report's error instead of a bare traceback."""
    try:
        body(report)
    except KeyboardInterrupt:
        report.fail("interrupted")
    except Exception as exc:  # the report must still come out, and say what broke
        report.fail(f"{type(exc).__name__}: {exc}")
        if not as_json:
            traceback.print_exc()
        else:
            print(traceback.format_exc(), file=sys.stderr)
    return report.emit(as_json)

"""PR review on the real-world suite (data/review/real): recall, precision and false positives per bug class, with
the repository at the PR's head (the CI way) and at its base, tools only. Goal: recall >= 80 % with precision
>= 90 % at both checkouts.

    python bench/review_real.py [--json]
"""

from __future__ import annotations

import argparse
import tempfile

import _common
from _common import Report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = Report("review_real", "PR review recall and precision per bug class on the real-world suite")
    try:
        _common.fresh_core(HOME=tempfile.mkdtemp(prefix="keel-bench-review-real-", dir=_common.BENCH_VAR
                                                 if _common.BENCH_VAR.exists() else None))
        from core.review._realsuite import metrics, real_cases, review_real_case

        for checkout in ("head", "base"):
            rows = []
            for case in real_cases():
                counts, _ = review_real_case(case, checkout)
                rows.append(counts)
                for text in counts["missed"] + counts["false_positives"]:
                    report.note(f"{checkout} {case.id}: {'missed' if text in counts['missed'] else 'false positive'}"
                                f" {text}")
            table = metrics(rows)
            for cls, t in table.items():
                shown = (f"recall {t['recall']:.0%}" if t["recall"] is not None else "recall -") + \
                    (f", precision {t['precision']:.0%}" if t["precision"] is not None else ", precision -")
                report.metric(f"{checkout}_{cls}", t["fp"], "fp",
                              f"{checkout} · {cls} ({t['cases']} PRs, {t['tp']}/{t['tp'] + t['fn']} bugs): {shown}")
            report.check(f"{checkout}_recall", table["all"]["recall"], ">=", 0.8, "", f"recall, repo at {checkout}")
            report.check(f"{checkout}_precision", table["all"]["precision"], ">=", 0.9, "",
                         f"precision, repo at {checkout}")
    except Exception as exc:  # the report says what failed instead of a traceback
        import traceback

        traceback.print_exc()
        report.fail(f"{type(exc).__name__}: {exc}")
    return report.emit(args.json)


if __name__ == "__main__":
    raise SystemExit(main())

"""Demo data: seed and synthetic traffic."""

from __future__ import annotations

from core.cli._common import _print


def cmd_demo_seed(args) -> int:
    from core import services
    from core.demo import seed

    services.prepare()
    report = seed(traffic_rows=args.traffic)
    _print(args, report, "\n".join(f"{k}: {v}" for k, v in report.items()))
    return 0


def cmd_demo_clear(args) -> int:
    from core import services
    from core.demo import clear

    if not args.yes:
        import sys

        if not sys.stdin.isatty():
            print("keel demo clear deletes every demo row; add --yes to confirm", file=sys.stderr)
            return 2
        if input("Delete all demo data (demo traffic, its review items, seeded support history)? [y/N] ").strip().lower() \
                not in ("y", "yes"):
            print("nothing deleted")
            return 1
    services.prepare()
    report = clear()
    _print(args, report, "removed " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in report.items()))
    return 0


def cmd_demo_traffic(args) -> int:
    """Demo rows name only the configured models (settings.tiers): a chart must never show a model this install
    does not have. Every row is marked demo (its request id), so pages label it and `keel demo clear` removes it."""
    import time

    from core import services
    from core.config import get_settings
    from core.observe._synthetic import ensure_customer_workspaces, insert_synthetic

    services.prepare()
    settings = get_settings()
    end = time.time()
    workspaces = 0 if args.no_workspaces else ensure_customer_workspaces(args.customers)
    n = insert_synthetic(args.rows, days=args.days, end=end, customers=args.customers,
                         review_share=settings.annotation_sample_share, tiers=settings.tiers)
    models = sorted({target.partition("/")[2] for chain in settings.tiers.values() for target in chain})
    payload = {"rows": n, "days": args.days, "customers": args.customers, "workspaces_created": workspaces,
               "models": models, "demo": True}
    _print(args, payload, f"wrote {n:,} demo request-log rows over {args.days:g} days for {args.customers} "
                          f"customers ({workspaces} workspace rows created), on the configured models "
                          f"{', '.join(models)}; `keel demo clear` removes them")
    return 0

"""How far concurrent calls overshoot a hard customer budget, per script of input (ASCII, emoji, CJK).

Not part of run_all: a measurement for issue 13 #3. A loopback OpenAI-compatible server bills one prompt token
per UTF-8 byte (a byte-level tokenizer's worst case); 8 threads make 3 calls each against a hard budget with room
for about six calls. Prints spend / hard limit per script: 1.00 or less means the limit held.

    .venv/bin/python bench/budget_overshoot.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["KEEL_HOME"] = tempfile.mkdtemp(prefix="keel-budget-")
os.environ.pop("KEEL_DATABASE_URL", None)

from sqlalchemy import text  # noqa: E402

from core import config, db, services  # noqa: E402
from core.llm import LLMError, LLMRequest, build_gateway, save_budgets, save_prices  # noqa: E402
from tests.support.fault_server import FaultServer  # noqa: E402

INPUTS = {"ascii": "the quick brown fox " * 30, "emoji": "\U0001F600\U0001F680\U0001F525" * 50,
          "cjk": "預算超支測試" * 34}
PRICE = 0.001  # per token


def main() -> None:
    with FaultServer(token_delay=0.01) as upstream:
        upstream.prompt_tokens = "bytes"
        upstream.token_delay_all = True
        os.environ["KEEL_PROVIDERS"] = json.dumps({"up": {"kind": "openai", "base_url": upstream.url,
                                                          "api_key": "k"}})
        os.environ["KEEL_TIERS"] = json.dumps({"capable": ["up/m1"]})
        os.environ["KEEL_LOG_FLUSH_INTERVAL"] = "0.05"
        config.reset_settings()
        services.prepare()
        save_prices([{"model": "m1", "input_per_mtok": PRICE * 1e6, "output_per_mtok": PRICE * 1e6}])
        gateway = build_gateway()
        for script, content in INPUTS.items():
            customer = f"cust-{script}"
            one_call = (len(content.encode()) + 4 + 5) * PRICE
            hard = round(one_call * 6.5, 6)
            save_budgets([{"scope": "customer", "key": customer, "hard_usd": hard}])
            gateway.reload_budgets()  # read the new budget now

            def caller() -> None:
                for _ in range(3):
                    try:
                        gateway.complete(LLMRequest(messages=[{"role": "user", "content": content}],
                                                    customer=customer, feature="api", max_tokens=5))
                    except LLMError:
                        pass

            threads = [threading.Thread(target=caller) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            gateway.flush()
            with db.get_engine().connect() as conn:
                spent = conn.execute(text("SELECT COALESCE(SUM(cost_usd), 0) FROM log_rollup_customer"
                                          " WHERE customer = :c"), {"c": customer}).scalar()
            print(f"{script:6} hard ${hard:.4f}  spent ${spent:.4f}  spent/hard {spent / hard:.2f}  "
                  f"calls {round(spent / one_call)}")
        gateway.close()


if __name__ == "__main__":
    main()

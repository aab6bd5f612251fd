"""Admin: model prices, monthly budgets per customer and feature, and per-workspace API keys for /v1."""

from datetime import datetime, timezone
from typing import cast

import pandas as pd
import streamlit as st

from core.auth import create_api_key, ensure_workspace, list_api_keys, revoke_api_key
from core.llm import list_budgets, list_prices, save_budgets, save_prices
from ui.session import require_principal
from ui.text import code, plain

require_principal("admin")
st.title("Prices & API keys")

st.subheader("Model prices (USD per million tokens)")
st.caption("The embedded model's row is its shadow price, so offline dashboards still show meaningful cost.")
edited = st.data_editor(list_prices(), num_rows="dynamic", hide_index=True, key="prices",
                        column_order=["model", "input_per_mtok", "output_per_mtok"])
if st.button("Save prices", type="primary"):
    try:
        save_prices(edited)
        st.success("Prices saved; new calls are priced with them within a few seconds.")
    except ValueError as exc:
        st.error(str(exc))

st.subheader("Monthly budgets (USD)")
st.caption("Per customer (workspace id) or per feature. A soft budget raises an alert on the Dashboard; a hard "
           "budget makes the gateway refuse further calls this month (logged as `budget_refused`).")
BUDGET_COLUMNS = ["scope", "key", "soft_usd", "hard_usd", "spent_this_month"]
budgets = st.data_editor(
    pd.DataFrame([{"scope": b.scope, "key": b.key, "soft_usd": b.soft_usd, "hard_usd": b.hard_usd,
                   "spent_this_month": round(b.spent_usd, 4)} for b in list_budgets()], columns=BUDGET_COLUMNS),
    num_rows="dynamic", hide_index=True, key="budgets", disabled=["spent_this_month"],
    column_config={"scope": st.column_config.SelectboxColumn("scope", options=["customer", "feature"])},
)
if st.button("Save budgets", type="primary"):
    try:
        save_budgets(budgets.to_dict("records"))
        st.success("Budgets saved; the gateway applies them within a few seconds.")
    except ValueError as exc:
        st.error(str(exc))

st.subheader("API keys")
with st.form("new-key", clear_on_submit=True):
    cols = st.columns(2)
    workspace = cols[0].text_input("Workspace id", value="demo", max_chars=64)
    name = cols[1].text_input("Key name", placeholder="e.g. ci-bot", max_chars=200)
    if st.form_submit_button("Create key"):
        try:
            ensure_workspace(workspace.strip())
            key, _ = create_api_key(workspace.strip(), name)
            st.success("Copy this key now; it is not shown again.")
            st.code(key)
        except ValueError as exc:
            st.error(str(exc))


def _when(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M") if ts else ""


for record in list_api_keys():
    row = st.columns([4, 2, 2, 2, 1])  # the key's name is what people read first: give it the room
    row[0].markdown(f"{code(record.prefix + '…')} {plain(record.name)}")
    row[1].write(record.workspace_id)
    row[2].write(f"created {_when(record.created_at)}")
    row[3].write(f"revoked {_when(record.revoked_at)}" if record.revoked_at else
                  f"last used {_when(record.last_used_at) or 'never'}")
    if not record.revoked_at:
        with row[4].popover("Revoke", key=f"revoke-pop-{record.id}"):  # a revoked key breaks its callers at once
            st.markdown(f"Revoke {code(record.prefix + '…')}? Every program using it stops working immediately.")
            if st.button("Revoke key", type="primary", key=f"revoke-{record.id}"):
                revoke_api_key(cast(int, record.id))  # a key read from the database has its primary key
                st.rerun()

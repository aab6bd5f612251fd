"""Search admin: index folders (progress and ETA), change a document's access, and read the retrieval audit log."""

import streamlit as st

from core.idp import DEV_USERS
from core.search import ingest_roots
from ui.search import access_editor, audit_view, documents_table, sync_panel
from ui.session import require_principal

principal = require_principal("admin")
user = principal.email or principal.sub
st.title("Search admin")
index_tab, access_tab, audit_tab = st.tabs(["Index", "Access", "Audit"])
with index_tab:
    st.caption("A sync hashes every file: unchanged ones are skipped, changed ones are re-embedded and swapped in "
               "atomically, access-only changes rewrite rows without re-embedding, and removed files leave the "
               "index. Files without access metadata are refused.")
    sync_panel(ingest_roots(), user)
with access_tab:
    docs = documents_table()
    known = {g for u in DEV_USERS for g in u.groups} | {"all-staff"} | {g for d in docs for g in d.access_groups}
    access_editor(docs, sorted(known), user)
with audit_tab:
    audit_view()

"""Document search: ask company documents a question; only documents your groups and clearance allow are read."""

import streamlit as st

from ui.search import ask_box, identity
from ui.session import require_principal

principal = require_principal()
st.title("Document search")
identity(principal)
ask_box(principal)

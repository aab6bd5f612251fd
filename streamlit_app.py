"""Streamlit entry script: the shell decides which pages the signed-in user sees."""

from ui.shell import run

run()

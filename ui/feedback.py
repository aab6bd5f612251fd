"""What a person sees while an AI call runs and when it fails: a "working…" line from the click to the first
token, and plain-language failure notes. Internal error text (tier names, target lists, time limits, stack
words) goes to the request log, never to the page.
"""

from __future__ import annotations

WORKING = "Working… the model is reading your request (first words usually appear within a few seconds)."


def working(box, what: str = WORKING) -> None:
    """Show the waiting state in `box` (an st.empty) until the first token replaces it."""
    box.markdown(f":gray[:material/hourglass_top: {what}]")


def failure_note(*, kept: bool, credit: bool = False) -> str:
    """Why an AI answer is missing or incomplete, said plainly; `kept` when partial output stays on the page."""
    back = " Your AI response credit was given back." if credit else ""
    if kept:
        return ("The AI stopped before it finished (the model is busy or did not answer in time). What it wrote so "
                f"far is kept here; press **Retry** for a complete answer.{back}")
    return f"The AI could not answer just now (the model is busy or did not answer in time).{back} Please try again."

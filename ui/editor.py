"""A document editor (Streamlit custom component v2) that reports its text and the user's real selection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

# The textarea starts read-only ("Opening…") and becomes editable only once the script below has bound it to its
# document: before that, keystrokes would land in a box the script then overwrites with the stored text.
_HTML = '<textarea class="keel-editor" spellcheck="true" aria-label="Document editor" readonly ' \
        'aria-busy="true" placeholder="Opening the document…"></textarea>' \
        '<div class="keel-editor-status" aria-live="polite"></div>'

_CSS = """
.keel-editor {
  width: 100%; min-height: 360px; box-sizing: border-box; resize: vertical;
  font: 15px/1.6 var(--st-font, ui-sans-serif, system-ui); padding: 14px 16px;
  color: var(--st-text-color); background: var(--st-secondary-background-color);
  border: 1px solid var(--st-border-color, #d0d4dc); border-radius: 8px; outline: none;
}
.keel-editor:focus { border-color: var(--st-primary-color); }
.keel-editor[aria-busy="true"] { opacity: .6; }
.keel-editor::selection { background: color-mix(in srgb, var(--st-primary-color) 30%, transparent); }
.keel-editor-status { font-size: 12px; color: var(--st-text-color); opacity: .65; margin-top: 4px; min-height: 16px; }
"""

# The textarea is the source of truth while the user types; Python gets the text (debounced) and the selection
# (start, end) whenever it settles, each tagged with the document and text version they belong to. One editor
# element serves every document: when Python sends another document (or a new version after Replace/Insert/Undo)
# the box is reset, and text typed but not yet sent is first sent for the document it was typed into, so a switch
# or a new document never swallows a keystroke.
# Between a click that switches documents (a button, or a radio option not yet chosen, inside one of the containers
# `data.switches` names) and the rerun that binds the next one, the box still shows the old text: keystrokes then
# are held, not typed, and land in the document switched to as soon as it is bound (or after 10 s where the caret
# is, if no switch came: a failed Create).
_JS = """
export default function(component) {
  const { data, setStateValue, parentElement } = component;
  const area = parentElement.querySelector('textarea.keel-editor');
  const status = parentElement.querySelector('.keel-editor-status');
  area._keelSend = setStateValue;  // the latest callback; listeners below are bound once per element
  area._keelSwitches = data.switches || [];
  const ident = `${data.doc}:${data.version}`;
  if (area.dataset.ident === undefined && area.value && area.value !== (data.text || '')) {
    // Typed before the script bound the box (only possible if readonly was bypassed): keep it, never drop it.
    area.dataset.ident = ident;
    area.dataset.doc = String(data.doc);
    area.dataset.version = String(data.version);
    area._keelEarly = true;
  }
  if (area.dataset.ident !== ident) {
    if (area.dataset.ident !== undefined && area.value !== area._keelSentText) {
      setStateValue('text', { value: area.value, version: Number(area.dataset.version), doc: area.dataset.doc });
    }
    area.value = data.text || '';
    area.dataset.ident = ident;
    area.dataset.doc = String(data.doc);
    area.dataset.version = String(data.version);
    area._keelSentText = area.value;
    area._keelSentSel = '';
    if (data.select && data.select.length === 2) {
      area.setSelectionRange(data.select[0], data.select[1]);
    }
  }
  if (area._keelHold !== undefined && area._keelHold.doc !== area.dataset.doc) area._keelRelease();
  if (area._keelBound) return;
  area._keelBound = true;
  area._keelSentText = area._keelEarly ? (data.text || '') : area.value;
  area._keelSentSel = '';
  let textTimer = null, selTimer = null;
  const version = () => Number(area.dataset.version);
  // Send only real changes: a redundant update (e.g. on blur when a toolbar button is clicked) would start a
  // second rerun that interrupts the one the button started.
  const sendText = () => {
    if (area.value === area._keelSentText) return;
    area._keelSentText = area.value;
    area._keelSend('text', { value: area.value, version: version(), doc: area.dataset.doc });
  };
  const sendSelection = () => {
    const start = area.selectionStart, end = area.selectionEnd;
    status.textContent = end > start ? `${end - start} characters selected` : '';
    const key = `${area.dataset.ident}:${start}:${end}`;
    if (key === area._keelSentSel) return;
    area._keelSentSel = key;
    area._keelSend('selection', { start, end, version: version(), doc: area.dataset.doc });
  };
  // Hold keystrokes from a switch click until the next document is bound (10 s at most, then they land here).
  area._keelRelease = () => {
    const hold = area._keelHold;
    if (hold === undefined) return;
    clearTimeout(hold.timer);
    area._keelHold = undefined;
    area.removeAttribute('aria-busy');
    status.textContent = '';
    if (hold.text) {
      area.setRangeText(hold.text, area.selectionStart, area.selectionEnd, 'end');
      area.dispatchEvent(new Event('input'));
    }
  };
  const hold = () => {
    if (area._keelHold !== undefined) return;
    area._keelHold = { doc: area.dataset.doc, text: '', timer: setTimeout(area._keelRelease, 10000) };
    area.setAttribute('aria-busy', 'true');
    status.textContent = 'Opening the document… what you type now goes into it.';
  };
  area.addEventListener('beforeinput', (e) => {
    const held = area._keelHold;
    if (held === undefined) return;
    e.preventDefault();
    const kind = e.inputType || '';
    if (kind === 'deleteContentBackward') held.text = held.text.slice(0, -1);
    else if (kind === 'insertLineBreak' || kind === 'insertParagraph') held.text += '\\n';
    else if (kind.startsWith('insert')) held.text += e.data ?? e.dataTransfer?.getData('text/plain') ?? '';
  });
  // A switch: a click on a button, or on an option that is not already chosen, or an arrow key on a radio.
  const switches = (target, type) => {
    if (type === 'keydown') return target.matches('input[type=radio]');
    if (target.closest('button')) return true;
    const option = target.closest('label')?.querySelector('input[type=radio]');
    return option ? !option.checked : false;
  };
  const onSwitch = (e) => {
    if (!area.isConnected) {  // this element left the page: stop listening
      for (const type of ['click', 'keydown']) document.removeEventListener(type, onSwitch, true);
      return;
    }
    const target = e.target instanceof Element ? e.target : null;
    if (!target || (e.type === 'keydown' && !e.key.startsWith('Arrow'))) return;
    if (area._keelSwitches.some((sel) => target.closest(sel)) && switches(target, e.type)) hold();
  };
  for (const type of ['click', 'keydown']) document.addEventListener(type, onSwitch, true);
  area.addEventListener('input', () => { clearTimeout(textTimer); textTimer = setTimeout(sendText, 400); });
  const onSelect = () => { clearTimeout(selTimer); selTimer = setTimeout(sendSelection, 150); };
  for (const name of ['select', 'mouseup', 'keyup']) area.addEventListener(name, onSelect);
  area.addEventListener('blur', () => { clearTimeout(textTimer); sendText(); });
  // Leaving or hiding the page sends what the debounce still holds.
  const flush = () => { clearTimeout(textTimer); sendText(); };
  window.addEventListener('pagehide', flush);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') flush(); });
  area.readOnly = false;
  area.removeAttribute('aria-busy');
  area.placeholder = 'Start writing…';
  if (area._keelEarly) sendText();
}
"""

_component = st.components.v2.component("keel_editor", html=_HTML, css=_CSS, js=_JS)


@dataclass(frozen=True)
class EditorState:
    text: str
    start: int
    end: int
    # Text the browser reported for another document (typed into it just before a switch): (doc, version, text).
    other: tuple[str, int, str] | None = None

    @property
    def selection(self) -> str:
        return self.text[self.start:self.end]


def editor(text: str, *, version: int, key: str, doc: str = "", select: tuple[int, int] | None = None,
           switches: Sequence[str] = ()) -> EditorState:
    """Render the editor for document `doc`; returns the current text and selection (clamped to the text).

    Keep `key` the same for every document: the one element then hands over unsent keystrokes (`other`).
    `switches`: CSS selectors of the containers of the widgets that change the document (radios, buttons)."""
    result = _component(data={"text": text, "version": version, "doc": str(doc),
                              "select": list(select) if select else None, "switches": list(switches)},
                        key=key, on_text_change=lambda: None, on_selection_change=lambda: None)
    reported = getattr(result, "text", None) or {}
    ours = reported.get("doc", str(doc)) == str(doc)
    # Only trust what the browser reports for this document at the version Python last sent (not a stale copy).
    current = reported.get("value", text) if ours and reported.get("version") == version else text
    other = None
    if not ours and isinstance(reported.get("value"), str) and isinstance(reported.get("version"), int):
        other = (str(reported["doc"]), reported["version"], reported["value"])
    sel = getattr(result, "selection", None) or {}
    if sel.get("version") != version or sel.get("doc", str(doc)) != str(doc):
        sel = {"start": select[0], "end": select[1]} if select else {}
    start = max(0, min(int(sel.get("start", 0) or 0), len(current)))
    end = max(start, min(int(sel.get("end", 0) or 0), len(current)))
    return EditorState(text=current, start=start, end=end, other=other)

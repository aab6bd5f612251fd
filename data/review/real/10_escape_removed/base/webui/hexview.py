"""Hex preview of a binary file for the web interface: hex bytes and their printable characters, as HTML."""

import html
import string

PRINTABLE = {ord(c) for c in string.printable if c not in "\t\n\r\x0b\x0c"}


def preview_line(chunk: bytes) -> tuple[str, str]:
    hex_part, text_part = "", ""
    for byte in chunk:
        hex_part += f" {byte:02x}"
        text_part += html.escape(chr(byte)) if byte in PRINTABLE else "."
    return hex_part.strip(), text_part


def preview(data: bytes, width: int = 16) -> str:
    rows = []
    for offset in range(0, len(data), width):
        hex_part, text_part = preview_line(data[offset:offset + width])
        rows.append(f"<tr><td>{offset:08x}</td><td>{hex_part}</td><td>{text_part}</td></tr>")
    return "<table class='hex'>" + "".join(rows) + "</table>"

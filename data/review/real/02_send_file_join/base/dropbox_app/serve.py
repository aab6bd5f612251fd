"""Serve files that were shared through a link: /share/<name> returns the file from the share directory."""

import os

from flask import Flask, abort, send_from_directory

SHARE_DIR = os.environ.get("SHARE_DIR", "/srv/shared")
app = Flask(__name__)


@app.route("/share/<path:req_path>")
def download(req_path):
    if not req_path:
        abort(404)
    return send_from_directory(SHARE_DIR, req_path, as_attachment=True)

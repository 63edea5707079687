"""The notes API on Flask, served by Werkzeug's threaded server, recording what each handler acted on.

Idioms of a typical Flask app: `request.get_json(silent=True)` (JSON only when the content type says so),
else `request.form`; query values with `request.args.to_dict()` (the first of a repeated key wins); the
documented WSGI method-override middleware (`X-HTTP-Method-Override` or `X-Method-Override` on a POST),
extended Rails-style to a `_method` field of a form body.
Run: `python flask_app.py PORT`.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import urllib.parse
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

NONCE = "X-Diff-Nonce"
SEEN: dict[str, list[dict[str, Any]]] = {}
LOCK = threading.Lock()
OVERRIDES = ("HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_METHOD_OVERRIDE")


class MethodOverride:
    """A POST's method from an override header, else from a `_method` field of its form body (Rails-style)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") == "POST":
            value = next((environ[k].strip() for k in OVERRIDES if environ.get(k, "").strip()), "")
            if not value and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(raw)
                fields = dict(urllib.parse.parse_qsl(raw.decode("latin-1")))
                value = fields.get("_method", "").strip()
            if value:
                environ["REQUEST_METHOD"] = value.upper()
        return self.app(environ, start_response)


app = Flask(__name__)
app.wsgi_app = MethodOverride(app.wsgi_app)  # type: ignore[method-assign]


def _record(op: str | None, params: dict[str, str]) -> tuple[Response, int]:
    body: Any = request.get_json(silent=True)
    if body is None and request.form:
        body = request.form.to_dict()
    record = {
        "op": op,
        "method": request.method,
        "params": params,
        "query": request.args.to_dict(),
        "body": body,
        "host": request.headers.get("Host"),
    }
    with LOCK:
        SEEN.setdefault(request.headers.get(NONCE, "-"), []).append(record)
    return jsonify(record), 200 if op else 404


@app.get("/__diff/seen/<nonce>")
def seen(nonce: str) -> Response:
    with LOCK:
        return jsonify(SEEN.pop(nonce, []))


@app.get("/v1/notes/<id>")
def get_note(id: str) -> tuple[Response, int]:
    return _record("getNote", {"id": id})


@app.post("/v1/notes/<id>")
def update_note(id: str) -> tuple[Response, int]:
    return _record("updateNote", {"id": id})


@app.delete("/v1/notes/<id>")
def delete_note(id: str) -> tuple[Response, int]:
    return _record("deleteNote", {"id": id})


@app.post("/v1/notes/<id>/purge")
def purge_note(id: str) -> tuple[Response, int]:
    return _record("purgeNote", {"id": id})


@app.errorhandler(404)
@app.errorhandler(405)
def unrouted(_exc: Exception) -> tuple[Response, int]:
    return _record(None, {})


if __name__ == "__main__":
    port = int(sys.argv[1])
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(json.dumps({"framework": "flask", "port": port}), flush=True)
    server.serve_forever()

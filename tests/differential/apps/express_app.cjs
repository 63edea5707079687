// The notes API on Express 5, recording what each handler acted on (differential harness upstream).
// Idioms of a typical Express app: express.json() and express.urlencoded() body parsers, req.query from
// Express 5's simple query parser (a repeated key becomes an array), and method override by the
// X-HTTP-Method-Override header or a `_method` query parameter on a POST (what method-override does).
// Run: node express_app.cjs PORT   (NODE_PATH must reach the npm targets' node_modules)
"use strict";
const express = require("express");

const NONCE = "x-diff-nonce";
const SEEN = new Map();
const app = express();

app.use((req, _res, next) => {
  if (req.method === "POST") {
    const header = req.headers["x-http-method-override"];
    const query = new URL(req.url, "http://x").searchParams.get("_method");
    const value = (typeof header === "string" && header.trim()) || (query && query.trim());
    if (value) req.method = value.toUpperCase();
  }
  next();
});
app.use(express.json());
app.use(express.urlencoded({ extended: false }));

function record(op) {
  return (req, res) => {
    // Express 5 leaves req.body undefined when no parser took the body.
    const body = req.body === undefined ? null : req.body;
    const rec = {
      op,
      method: req.method,
      params: { ...req.params },
      query: { ...req.query },
      body,
      host: req.headers.host ?? null,
    };
    const key = req.headers[NONCE] ?? "-";
    if (!SEEN.has(key)) SEEN.set(key, []);
    SEEN.get(key).push(rec);
    res.status(op ? 200 : 404).json(rec);
  };
}

app.get("/__diff/seen/:nonce", (req, res) => {
  const out = SEEN.get(req.params.nonce) ?? [];
  SEEN.delete(req.params.nonce);
  res.json(out);
});
app.get("/v1/notes/:id", record("getNote"));
app.post("/v1/notes/:id", record("updateNote"));
app.delete("/v1/notes/:id", record("deleteNote"));
app.post("/v1/notes/:id/purge", record("purgeNote"));
app.use(record(null));
// A body the parsers refuse (bad JSON, unsupported charset) never reaches a handler: nothing ran.
app.use((err, req, res, _next) => {
  res.status(err.status || 400).json({ op: null, error: String(err.message || err) });
});

const port = Number(process.argv[2]);
app.listen(port, "127.0.0.1", () => {
  console.log(JSON.stringify({ framework: "express", port }));
});

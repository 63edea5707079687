// Node 20 ignores HTTPS_PROXY: route fetch() through the proxy variables with undici's EnvHttpProxyAgent.
// Loaded with NODE_OPTIONS=--require=<this file> (tests/support/ca.py proxy_env). Node 22 needs only
// NODE_USE_ENV_PROXY=1, and installing the agent there too is harmless.
"use strict";
const path = require("node:path");
const undici = require(path.resolve(__dirname, "../../.targets/npm/node_modules/undici"));

// undici warns that the agent is experimental; keep that line out of the stderr of every server under test.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const code = typeof rest[0] === "object" && rest[0] !== null ? rest[0].code : rest[1];
  if (code === "UNDICI-EHPA") return;
  return emitWarning.call(this, warning, ...rest);
};
try {
  undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent());
} finally {
  process.emitWarning = emitWarning;
}

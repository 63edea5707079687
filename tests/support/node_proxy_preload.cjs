// Node 20 ignores HTTPS_PROXY: route fetch() through the proxy variables with undici's EnvHttpProxyAgent.
// Loaded with NODE_OPTIONS=--require=<this file> (tests/support/ca.py proxy_env). Node 22 needs only
// NODE_USE_ENV_PROXY=1, and installing the agent there too is harmless.
"use strict";
const path = require("node:path");
const undici = require(path.resolve(__dirname, "../../.targets/npm/node_modules/undici"));
undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent());

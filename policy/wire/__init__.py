"""MCP JSON-RPC as both adapters speak it, pure (no I/O, no adapter): messages and their validation (jsonrpc,
messages), which era a request is of (era), the routing-header rule (headers), which requests are calls
(kinds), how list results are filtered (listing) and the shape of a refusal (refusals)."""

"""A small stdlib-only server speaking the Toxiproxy 2.x HTTP API.

Why: the real Toxiproxy cannot be installed on our machines, yet the suites drive faults through the
official `toxiproxy-python` client; this server answers the same API so the official image can be
swapped in later with no test change. Modules, one job each:

- `httpd`   -- a minimal HTTP/1.1 server over asyncio streams
- `server`  -- the Toxiproxy API (routes, JSON bodies, errors) on top of `proxy`
- `proxy`   -- one listener per proxy, its connections and its toxic chain
- `stream`  -- the data plane: per-connection, per-direction chains of toxic stubs
- `toxics`  -- the toxic types (latency, bandwidth, slow_close, timeout, slicer, limit_data, reset_peer)
- `echo`    -- a TCP echo server used as an upstream in tests

Only relative imports: inside the image the package is importable as `faultproxy`.
"""

#: Reported by GET /version: the Toxiproxy API level implemented, tagged as ours.
__version__ = "2.12.0-dpg"

"""pyrivet as an envoy of the Rivet Engine: hosts a registry's actors for ``rivet-engine``.

`pyrivet.engine._protocol` is the engine's envoy protocol (v8, Rivet 2.3.19);
`pyrivet.engine._envoy` the connection to the engine; `pyrivet.engine._tunnel` carries
the gateway's HTTP and WebSocket traffic into an ASGI app. Needs ``websockets`` (the
``server`` extra).
"""

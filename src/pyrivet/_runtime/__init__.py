"""The runtime (L3): the only layer that runs user code."""

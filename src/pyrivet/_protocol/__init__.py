"""RivetKit client-protocol wire messages (L1)."""

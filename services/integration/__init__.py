"""The integration service: external systems registered, probed and called through the mesh's resilience."""

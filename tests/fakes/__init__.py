"""Fake upstream providers: real local HTTP servers that answer like the provider APIs."""

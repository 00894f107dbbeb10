"""Benchmarks: `python -m attention_proto.bench [suite ...]` (default: foundation)."""

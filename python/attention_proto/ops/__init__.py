"""Attention operations: validate in Python, fill AttentionParams, pick a kernel, launch."""

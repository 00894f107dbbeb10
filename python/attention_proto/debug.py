"""Switches for testing: poisoned outputs catch elements a kernel never wrote."""

poison_outputs = False

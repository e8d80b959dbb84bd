"""The core's own model families, one folder each."""

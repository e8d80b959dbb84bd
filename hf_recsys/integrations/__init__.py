"""Integrations with distributed engines (optional extras): :mod:`hf_recsys.integrations.ray`."""

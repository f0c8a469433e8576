"""Helpers for end-to-end tests that drive real processes over real sockets."""

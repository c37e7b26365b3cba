"""Adapters: one real implementation of each port, named after its technology."""

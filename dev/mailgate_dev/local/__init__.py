"""The local stack: the same world as the deployed one, on this machine (see DESIGN.md)."""

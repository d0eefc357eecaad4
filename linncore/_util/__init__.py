"""Shared plumbing under every product: input validation, atomic writes, the codes shared with C.

Nothing here imports another part of linncore.
"""

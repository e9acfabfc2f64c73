"""The commands: one small module each, as pre-commit's ``commands/`` does.

Each command parses its options, calls one library function and renders the result.
``base`` holds the group, the shared ``Context``, the common options and the single
error edge; ``oauth2_sync.cli`` assembles the tree. The library is imported inside
the commands, so that ``--help`` stays fast.
"""

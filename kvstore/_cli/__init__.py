"""The pieces of the ``kvstore`` command (``kvstore.cli`` holds the group and ``serve``): ``common`` (the
error contract, JSON output, opening the store at --db), ``progress`` (a progress line on a terminal),
``entries`` (commands on the entries of a namespace) and ``store`` (commands on a whole store).

Like the rest of the command line, these depend on the public API only.
"""

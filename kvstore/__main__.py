"""``python -m kvstore``: the ``kvstore`` command (the cli extra), for when the console script is not on PATH."""

from kvstore.cli import main

if __name__ == "__main__":
    main(prog_name="kvstore")

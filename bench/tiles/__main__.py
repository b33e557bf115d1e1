"""``python -m bench.tiles``: see run.py."""

from bench.tiles.run import main

main()

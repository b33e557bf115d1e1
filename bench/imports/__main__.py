"""``python -m bench.imports``."""

from bench.imports.run import main

main()

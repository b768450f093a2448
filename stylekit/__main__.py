"""``python -m stylekit …`` is the ``stylekit`` command."""
import sys

from .cli import main

sys.exit(main())

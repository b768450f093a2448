"""``python -m export {export,verify,bench}``."""
import sys

from .cli import main

sys.exit(main())

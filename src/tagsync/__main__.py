"""`python -m tagsync`, for a venv whose scripts folder is not on PATH."""

import sys

from tagsync.cli import main

sys.exit(main())

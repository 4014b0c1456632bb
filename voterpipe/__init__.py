"""voterpipe: a Luigi pipeline that turns raw US state voter files into an enriched voter file."""

from pathlib import Path

__version__ = "0.1.0"

# The shipped config/ (formats, cohorts): voterpipe/_config is a link to the checkout's config/,
# and a wheel carries a copy of it there, so an installed package finds it from any directory.
SHIPPED_CONFIG_DIR = Path(__file__).resolve().parent / "_config"

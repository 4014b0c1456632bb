"""voterpipe: a Luigi pipeline that turns raw US state voter files into an enriched voter file."""

__version__ = "0.1.0"

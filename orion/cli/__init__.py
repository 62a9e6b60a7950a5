"""The ``orion`` command line: a thin HTTP client of the API, plus ``orion agent``."""

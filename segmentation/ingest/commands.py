"""CLI commands for loading data (filled in by the ingest work)."""


def register(subparsers) -> None:
    """Add the ingest commands."""

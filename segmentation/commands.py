"""CLI commands for building and inspecting segments."""


def register(subparsers) -> None:
    """Add the build/compare/show commands."""

"""Segment Insights: behaviour data -> Low / Moderate / Highly Engaged segments, and queries."""

__version__ = "0.1.0"

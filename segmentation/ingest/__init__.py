"""Loading behaviour data from CSV files: raw events, users and per-user feature tables."""

from segmentation.ingest.events import IngestResult, ingest_csv
from segmentation.ingest.features import FeatureTableResult, load_feature_table

__all__ = ["FeatureTableResult", "IngestResult", "ingest_csv", "load_feature_table"]

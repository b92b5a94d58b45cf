"""Loading behaviour data from CSV files."""

"""Task runners that send task function calls to batch systems."""

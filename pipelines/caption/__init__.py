"""caption."""

"""Getting papers in: download, text extraction, cleanup."""

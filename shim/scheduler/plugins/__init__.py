"""The plugins of upstream's default scheduling profile (filters and scores)."""

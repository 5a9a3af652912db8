"""Thin Prefect tasks: each one call into ``nas`` (no algorithm logic here)."""

"""Prefect flows: one per stage, and ``pipeline`` chaining them.

With no ``PREFECT_API_URL`` the flows run on Prefect's ephemeral local API; with it set,
runs and artifacts appear in that server's UI.

Importing them changes no environment variable: the ``evonas`` entry point
(:func:`flows.cli.main`) sets the offline-safe defaults of ``nas.env`` before anything imports
Prefect; a Prefect worker that runs a deployment uses its own environment.
"""

"""Prefect flows: one per stage, and ``pipeline`` chaining them.

With no ``PREFECT_API_URL`` the flows run on Prefect's ephemeral local API; with it set,
runs and artifacts appear in that server's UI.
"""

from nas.env import configure_environment

configure_environment()

"""pyrust-bt's web app: Streamlit pages over bt-server's HTTP API (``bt app``).

Importing this package is cheap (no Streamlit): ``bt``'s command line imports :mod:`bt_app.cli`
to offer ``bt app``.
"""

__version__ = "0.1.0"

#: Environment variables the app reads its server's URL and token from.
ENV_URL = "BT_APP_API_URL"
ENV_TOKEN = "BT_APP_TOKEN"

__all__ = ["ENV_TOKEN", "ENV_URL", "__version__"]

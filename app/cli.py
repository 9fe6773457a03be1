"""``ma-app``: serve the web app with Streamlit, on port 8501 unless told otherwise.

ma-app [--server.port 8502] [any other ``streamlit run`` option]
MA_APP_API_URL (default http://localhost:8000) names the API; MA_APP_API_KEY may pre-fill the key.
"""

import sys
from pathlib import Path

from streamlit.web import cli as streamlit

MAIN = Path(__file__).with_name("main.py")
DEFAULTS = ["--server.port", "8501", "--server.headless", "true"]


def command(options: list[str]) -> list[str]:
    """``streamlit run`` of the app with the defaults, each overridden by an option given."""
    given = {option.split("=")[0] for option in options if option.startswith("--")}
    defaults = [
        part
        for name, value in zip(DEFAULTS[::2], DEFAULTS[1::2], strict=True)
        if name not in given
        for part in (name, value)
    ]
    return ["streamlit", "run", str(MAIN), *defaults, *options]


def main() -> None:
    sys.argv = command(sys.argv[1:])
    sys.exit(streamlit.main())

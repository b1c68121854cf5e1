"""sylkbox.webui: the aiohttp web application (status page, screen-sharing viewer)."""

from sylkbox.webui.app import create_app

__all__ = ["create_app"]

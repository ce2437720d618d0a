"""The albums view in the Airflow UI: the FastAPI app of ``include/album/admin/ui.py`` mounted in
the api-server at ``/telegram-albums``, and a navigation entry that shows it inside the UI.

Every page and endpoint asks Airflow who the user is (``orchestration/ui_airflow.py``): without
a session or token nothing answers. Tenants per user: README "Albums in the Airflow UI".
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.album.admin.ui import create_app

URL_PREFIX = "/telegram-albums"


class TelegramAlbumsUI(AirflowPlugin):
    name = "telegram_albums_ui"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Telegram albums"}]
    external_views = [{"name": "Albums", "href": "telegram-albums/", "url_route": "albums", "destination": "nav",
                       "category": "browse"}]

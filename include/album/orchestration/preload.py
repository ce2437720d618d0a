"""What the LocalExecutor's forkserver loads once for every task process forked from it
(``AIRFLOW__CORE__MP_FORKSERVER_PRELOAD``: ``docker-compose.airflow.yml``,
``devtools/airflow_stack.LOCAL_EXECUTOR_TUNING``): the embedding model's weights, which each
task that embeds a text (``album.index``, ``index_posts``) otherwise loads on its first text,
~0.7 s of a one-album run's critical path. Forked processes share the pages (copy-on-write).
Importing this module is the loading; nothing else imports it.
"""

from include.album.providers.embeddings import default_embedder

default_embedder().embed_documents(["preload"])

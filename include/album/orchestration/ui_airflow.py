"""What the albums view (``admin/ui.py``) asks of Airflow: who is asking, and which tenants they
may see. (Which runs worked on an album, the view reads from ``album_runs``: the tasks record it.)

A plugin's FastAPI endpoints are not protected by Airflow unless they ask; every endpoint of
the view depends on ``viewer``, which uses Airflow's own ``get_user`` (the UI's session cookie or
an ``Authorization: Bearer`` token: 401 without one, 403 with an invalid one) and the auth
manager's permissions on DAG ``telegram_albums``: reading it lets a user see albums, editing it
lets them requeue. Tenants per user: the Variable ``telegram_albums_ui_tenants``, a JSON object
from Airflow user name (or ``"*"``, everyone not listed) to tenant ids (``["*"]``: every
tenant); without the Variable everyone who may read the DAG sees every tenant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException

from include.album.domain.settings import ConfigurationError

DAG_ID = "telegram_albums"
TENANTS_VARIABLE = "telegram_albums_ui_tenants"
ALL = "*"


@dataclass(frozen=True)
class Viewer:
    name: str
    tenants: frozenset[str] | None  # None: every tenant
    may_edit: bool

    def sees(self, tenant_id: str) -> bool:
        return self.tenants is None or tenant_id in self.tenants


def tenants_of(name: str, mapping: dict[str, Any] | None) -> frozenset[str] | None:
    """The tenants ``name`` may see under ``mapping`` (see the module); None: all."""
    if mapping is None:
        return None
    tenants = mapping.get(name, mapping.get(ALL, []))
    if not isinstance(tenants, list) or not all(isinstance(t, str) for t in tenants):
        raise ConfigurationError(f"Variable {TENANTS_VARIABLE}: the tenants of {name!r} must be a list of tenant "
                                 f"ids, not {json.dumps(tenants)}")
    return None if ALL in tenants else frozenset(tenants)


def _tenant_mapping() -> dict[str, Any] | None:
    from airflow.models.variable import Variable

    text = Variable.get(TENANTS_VARIABLE, default_var=None)
    if text is None:
        return None
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"Variable {TENANTS_VARIABLE} is not valid JSON ({exc.msg})") from None
    if not isinstance(mapping, dict):
        raise ConfigurationError(f"Variable {TENANTS_VARIABLE} must be a JSON object of user name -> tenant ids")
    return mapping


async def viewer(user: Annotated[Any, Depends(get_user)]) -> Viewer:
    """The signed-in Airflow user as a viewer of albums; 403 without read access to the DAG."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    manager, details = get_auth_manager(), DagDetails(id=DAG_ID)
    if not manager.is_authorized_dag(method="GET", details=details, user=user):
        raise HTTPException(403, f"user {user.get_name()} may not read DAG {DAG_ID}")
    try:
        tenants = tenants_of(user.get_name(), _tenant_mapping())
    except ConfigurationError as exc:
        raise HTTPException(500, str(exc)) from None
    return Viewer(name=user.get_name(), tenants=tenants,
                  may_edit=manager.is_authorized_dag(method="PUT", details=details, user=user))

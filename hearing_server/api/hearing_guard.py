"""The per-hearing staff guard of the REST endpoints that change a hearing: once a hearing has an assigned
presiding judge or secretary, only they and admins change it; every other account keeps read access.

The route table runs the guard before the handler (``endpoint(..., guard=hearing_staff_only)``); a test
(tests/api/test_api_hearing_staff_edits.py) checks that every endpoint changing a hearing declares one of
:data:`GUARDS`.  Acts are stricter: only the presiding judge (or an admin) signs them.
"""

from __future__ import annotations

import logging

from aiohttp import web

from hearing_server.config import CONFIG
from hearing_server.domain.errors import Forbidden, NotFound
from hearing_server.domain.ids import is_valid_id
from hearing_server.domain.staff import NOT_STAFF_NOTE
from hearing_server.services import hearings, staff
from hearing_server.store.db import SESSIONS
from hearing_server.store.models import Hearing, StaffSession

log = logging.getLogger(__name__)


async def _hearing(request: web.Request) -> Hearing:
    hearing_id = request.match_info.get("hearing_id", "")
    if not is_valid_id(hearing_id):
        raise NotFound("no such hearing", code="hearing_not_found")
    async with request.app[SESSIONS]() as db:
        return await hearings.get_visible(db, hearing_id, request.app[CONFIG].court_name)


def _refused(request: web.Request, session: StaffSession, hearing: Hearing, why: str) -> None:
    user = session.user
    log.warning(
        "%s %s refused for %s (%s): %s of hearing %s",
        request.method,
        request.path,
        user.username,
        user.role,
        why,
        hearing.id,
    )


async def hearing_staff_only(request: web.Request, session: StaffSession) -> None:
    """Refuse (403 ``not_hearing_staff``) a change of the hearing in the path by anyone but its staff."""
    hearing = await _hearing(request)
    if not staff.staff_of(hearing).may_change(session.user.id, session.user.role):
        _refused(request, session, hearing, "not the staff")
        raise Forbidden(NOT_STAFF_NOTE, code="not_hearing_staff")


async def presiding_judge_only(request: web.Request, session: StaffSession) -> None:
    """Refuse (403 ``not_presiding_judge``) signing an act of the hearing in the path by anyone but its
    presiding judge or an admin."""
    hearing = await _hearing(request)
    if not staff.staff_of(hearing).may_sign(session.user.id, session.user.role):
        _refused(request, session, hearing, "not the presiding judge")
        raise Forbidden(
            "only the hearing's presiding judge (or an admin) signs its acts", code="not_presiding_judge"
        )


GUARDS = (hearing_staff_only, presiding_judge_only)
"""The guards that restrict changing a hearing to its own staff."""

"""Parties of a hearing: add, list, read, change, delete."""

from __future__ import annotations

from datetime import UTC, datetime

from hearing_server.api.call import Call
from hearing_server.api.hearing_guard import hearing_staff_only
from hearing_server.api.present import party_out
from hearing_server.api.registry import endpoint
from hearing_server.api.schemas import PartyCreateIn, PartyList, PartyOut, PartyUpdateIn
from hearing_server.auth.access import HEARING_MANAGERS, HEARING_READERS
from hearing_server.domain.events import EventType
from hearing_server.services import hearings, notifications, parties

TAG = "parties"
LIST = "/api/v1/hearings/{hearing_id}/parties"
ITEM = LIST + "/{party_id}"


@endpoint(
    "POST",
    LIST,
    access=HEARING_MANAGERS,
    guard=hearing_staff_only,
    tag=TAG,
    body=PartyCreateIn,
    response=PartyOut,
    status=201,
    summary="Add a party to a hearing that is not over.",
)
async def add_party(call: Call) -> PartyOut:
    body: PartyCreateIn = call.body
    now = datetime.now(UTC)
    async with call.transaction() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        party = await parties.add_party(
            db,
            hearing,
            role=body.role,
            display_name=body.display_name,
            language=body.language,
            contact=body.contact,
            now=now,
        )
        call.record(
            hearing.id,
            EventType.PARTY_ADDED,
            party_id=party.id,
            role=party.role,
            display_name=party.display_name,
        )
    return party_out(party, now, with_invitation=False)


@endpoint(
    "GET", LIST, access=HEARING_READERS, tag=TAG, response=PartyList, summary="The parties of a hearing."
)
async def list_parties(call: Call) -> PartyList:
    now = datetime.now(UTC)
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        found = await parties.list_parties(db, hearing)
        deliveries = await notifications.latest_deliveries(db, hearing.id, now)
    return PartyList(items=[party_out(p, now, delivery=deliveries.get(p.id)) for p in found])


@endpoint("GET", ITEM, access=HEARING_READERS, tag=TAG, response=PartyOut, summary="One party of a hearing.")
async def get_party(call: Call) -> PartyOut:
    now = datetime.now(UTC)
    async with call.reading() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        party = await parties.get_party(db, hearing, call.path_id("party_id"))
        deliveries = await notifications.latest_deliveries(db, hearing.id, now)
    return party_out(party, now, delivery=deliveries.get(party.id))


@endpoint(
    "PATCH",
    ITEM,
    access=HEARING_MANAGERS,
    guard=hearing_staff_only,
    tag=TAG,
    body=PartyUpdateIn,
    response=PartyOut,
    summary="Change a party's role, name, language or contact.",
)
async def update_party(call: Call) -> PartyOut:
    body: PartyUpdateIn = call.body
    async with call.transaction() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        party = await parties.get_party(db, hearing, call.path_id("party_id"))
        changed = await parties.update_party(db, hearing, party, body.changes())
        if changed:
            call.record(
                hearing.id,
                EventType.PARTY_UPDATED,
                party_id=party.id,
                changes={name: getattr(party, name) for name in changed},
            )
    return party_out(party, datetime.now(UTC))


@endpoint(
    "DELETE",
    ITEM,
    access=HEARING_MANAGERS,
    guard=hearing_staff_only,
    tag=TAG,
    status=204,
    summary="Delete a party (and its links) while the hearing is only scheduled.",
)
async def delete_party(call: Call) -> None:
    async with call.transaction() as db:
        hearing = await hearings.get_visible(db, call.path_id("hearing_id"), call.config.court_name)
        party = await parties.get_party(db, hearing, call.path_id("party_id"))
        await parties.delete_party(db, hearing, party)
        call.record(
            hearing.id,
            EventType.PARTY_REMOVED,
            party_id=party.id,
            role=party.role,
            display_name=party.display_name,
            before_hearing=True,
        )


ENDPOINTS = (add_party, list_parties, get_party, update_party, delete_party)

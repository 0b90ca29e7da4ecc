"""The REST API's request and response bodies: the single source for validation and the OpenAPI document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from hearing_server.auth.invitations import InvitationStatus
from hearing_server.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from hearing_server.domain.hearing import HearingStatus
from hearing_server.domain.notification import Channel, DeliveryStatus, NotificationKind
from hearing_server.domain.party import PartyRole, PartyState, StaffRole
from hearing_server.domain.text import displayable_text
from hearing_server.services.hearings import MAX_DURATION_MINUTES
from hearing_server.services.users import USERNAME_PATTERN

Text100 = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(displayable_text)]
Text200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(displayable_text)]
Text500 = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(displayable_text)]
OptionalText200 = Annotated[str, Field(max_length=200), AfterValidator(displayable_text)]
OptionalText500 = Annotated[str, Field(max_length=500), AfterValidator(displayable_text)]


Language = Literal["kk", "ru", "en"]
CaseNumber = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[\w][\w ./:-]*$", examples=["2-1234/2026"]),
    AfterValidator(displayable_text),  # \w also matches the zero-width joiners
]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]
StaffId = Annotated[str, Field(min_length=1, max_length=64)]
Username = Annotated[str, Field(pattern=USERNAME_PATTERN, examples=["operator1"])]


class Body(BaseModel):
    """A request body: strict types, no unknown fields, surrounding spaces trimmed."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class Patch(Body):
    """A partial update: at least one field, and no field set to null unless it allows it."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _some_fields(self) -> Patch:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller set, with their values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class Query(BaseModel):
    """Query parameters (strings converted to their types); no unknown parameters."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """A response body read from stored objects."""

    model_config = ConfigDict(from_attributes=True)


# --- errors and operations -------------------------------------------------


class FieldProblem(BaseModel):
    """What is wrong with one field of the request."""

    loc: list[str | int]
    type: str
    msg: str


class ErrorDetail(BaseModel):
    """A stable ``code`` for programs and a ``message`` for people."""

    code: str
    message: str
    fields: list[FieldProblem] | None = None


class ErrorOut(BaseModel):
    """Every 4xx and 5xx response of the API."""

    error: ErrorDetail


class StatusOut(BaseModel):
    """A liveness or readiness answer."""

    status: str


# --- staff accounts and sessions ------------------------------------------


class LoginIn(Body):
    """Staff credentials (the password exactly as typed)."""

    model_config = ConfigDict(str_strip_whitespace=False)

    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class UserOut(Out):
    """A staff account (never its password hash)."""

    id: str
    username: str
    display_name: str
    role: StaffRole
    disabled: bool
    created_at: datetime


class SessionOut(BaseModel):
    """The logged-in user and the CSRF token to send as ``X-CSRF-Token`` with every write."""

    user: UserOut
    csrf_token: str
    expires_at: datetime
    must_change_password: bool = Field(
        False, description="Only changing the password, logout and auth/me work until it is changed."
    )


class PasswordChangeIn(Body):
    """A user changing their own password."""

    model_config = ConfigDict(str_strip_whitespace=False)

    current_password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
    new_password: Password


class UserCreateIn(Body):
    """A new staff account."""

    model_config = ConfigDict(str_strip_whitespace=False)

    username: Username
    role: StaffRole
    password: Password
    display_name: OptionalText200 = ""


class UserUpdateIn(Patch):
    """Changes to a staff account; a new password ends the account's sessions."""

    model_config = ConfigDict(str_strip_whitespace=False)

    role: StaffRole | None = None
    disabled: bool | None = None
    password: Password | None = None
    display_name: OptionalText200 | None = None


class SigningKeyIn(Body):
    """A judge's PKCS#12 (base64), its passphrase, and the judge's login password that will lock the key."""

    model_config = ConfigDict(str_strip_whitespace=False)

    pkcs12: Annotated[str, Field(min_length=1, max_length=90_000, description="The .p12/.pfx file, base64.")]
    passphrase: Annotated[str, Field(max_length=1024, description="The passphrase of the PKCS#12 file.")]
    password: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_PASSWORD_LENGTH,
            description="The judge's login password: only it unlocks the key when signing.",
        ),
    ]


class SigningKeyOut(Out):
    """A judge's signing certificate (never the key)."""

    subject: str
    common_name: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str
    uploaded_by: str
    uploaded_at: datetime


class UserList(BaseModel):
    """All staff accounts."""

    items: list[UserOut]


# --- cluster ----------------------------------------------------------------


class NodeOut(BaseModel):
    """One node of the cluster as the database sees it."""

    id: str
    state: Literal["active", "draining", "dead"]
    alive: bool = Field(description="Heartbeat within the lease length (database clock).")
    public_url: str
    internal_url: str
    ice_addresses: list[str]
    heartbeat_at: datetime
    load: float = Field(description="Last reported load, 0 to 1 (CPU share; media workers' rates later).")
    capacity: int
    hearings: list[str] = Field(description="Live hearings whose lease the node holds.")


class NodeList(BaseModel):
    """The cluster's nodes; ``clustered`` is false for a single server (no nodes listed)."""

    clustered: bool
    node_id: str
    items: list[NodeOut]


# --- hearings ---------------------------------------------------------------


class HearingCreateIn(Body):
    """A hearing to schedule: give ``duration_minutes`` or ``scheduled_end``."""

    case_number: CaseNumber
    title: Text500
    court: Text200 | None = Field(None, description="Defaults to the server's court; no other court.")
    courtroom: Text100
    scheduled_start: AwareDatetime = Field(description="ISO 8601 with a UTC offset; not in the past.")
    duration_minutes: Annotated[int, Field(ge=1, le=MAX_DURATION_MINUTES)] | None = None
    scheduled_end: AwareDatetime | None = None
    presiding_judge: Text200 | None = Field(
        None, description="The judge's name as shown; from the account when presiding_judge_id is given."
    )
    presiding_judge_id: StaffId | None = Field(None, description="The presiding judge's account (a judge).")
    secretary_id: StaffId | None = Field(None, description="The secretary's account (an operator).")
    notice_language: Language = Field(description="Language of the recording notice shown to parties.")

    @model_validator(mode="after")
    def _one_length(self) -> HearingCreateIn:
        if (self.duration_minutes is None) == (self.scheduled_end is None):
            raise ValueError("give exactly one of duration_minutes and scheduled_end")
        if self.presiding_judge is None and self.presiding_judge_id is None:
            raise ValueError("give presiding_judge_id (or at least the presiding_judge's name)")
        return self


class HearingUpdateIn(Patch):
    """Changes to a scheduled or open hearing."""

    case_number: CaseNumber | None = None
    title: Text500 | None = None
    courtroom: Text100 | None = None
    scheduled_start: AwareDatetime | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=MAX_DURATION_MINUTES)] | None = None
    scheduled_end: AwareDatetime | None = None
    presiding_judge: Text200 | None = None
    presiding_judge_id: StaffId | None = Field(None, description="null: no account assigned.")
    secretary_id: StaffId | None = Field(None, description="null: no account assigned.")
    notice_language: Language | None = None

    nullable: ClassVar[frozenset[str]] = frozenset({"presiding_judge_id", "secretary_id"})

    @model_validator(mode="after")
    def _one_length(self) -> HearingUpdateIn:
        if self.duration_minutes is not None and self.scheduled_end is not None:
            raise ValueError("give at most one of duration_minutes and scheduled_end")
        return self


class HearingCancelIn(Body):
    """Why a hearing is cancelled (optional); the body may be empty."""

    reason: OptionalText500 = ""


class HearingQuery(Query):
    """Filters and paging of the hearing list; dates are days in the court's time zone."""

    date_from: date | None = Field(None, description="First day (inclusive), YYYY-MM-DD.")
    date_to: date | None = Field(None, description="Last day (inclusive), YYYY-MM-DD.")
    status: HearingStatus | None = None
    case_number: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Case number prefix."
    )
    court: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class InvitationOut(Out):
    """A party's current link, without the token (shown only once, when issued)."""

    id: str
    status: InvitationStatus
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class DeliveryOut(Out):
    """Where the party's latest message stands (sent by e-mail or SMS): shown on the party's row."""

    id: str
    kind: NotificationKind
    channel: Channel
    recipient: str
    status: DeliveryStatus
    attempts: int
    last_error: str
    next_attempt_at: datetime
    sent_at: datetime | None
    updated_at: datetime


class PartyOut(Out):
    """A party of a hearing."""

    id: str
    hearing_id: str
    role: PartyRole
    display_name: str
    language: Language | None
    contact: str
    state: PartyState
    created_at: datetime
    invitation: InvitationOut | None = None
    delivery: DeliveryOut | None = None


class PartyList(BaseModel):
    """The parties of one hearing."""

    items: list[PartyOut]


class HearingOut(Out):
    """A hearing as listed."""

    id: str
    case_number: str
    title: str
    court: str
    courtroom: str
    scheduled_start: datetime
    scheduled_end: datetime
    duration_minutes: int
    presiding_judge: str
    presiding_judge_id: str | None = None
    secretary_id: str | None = None
    notice_language: Language
    status: HearingStatus
    created_at: datetime
    updated_at: datetime


class HearingDetailOut(HearingOut):
    """A hearing with its parties, and what the caller may do with it."""

    parties: list[PartyOut]
    may_operate: bool = Field(
        False, description="The caller may run its courtroom console (its secretary or judge, or an admin)."
    )
    may_sign_acts: bool = Field(
        False, description="The caller may sign its acts (its presiding judge, or an admin)."
    )


class StaffMemberOut(Out):
    """A staff account that can be assigned to a hearing."""

    id: str
    username: str
    display_name: str
    role: StaffRole


class StaffList(BaseModel):
    """The judges and operators to choose a hearing's presiding judge and secretary from."""

    items: list[StaffMemberOut]


class HearingPage(BaseModel):
    """One page of hearings; ``total`` counts every match."""

    items: list[HearingOut]
    total: int
    limit: int
    offset: int


class PartyCreateIn(Body):
    """A party to add; ``language`` defaults to the hearing's notice language."""

    role: PartyRole
    display_name: Text200
    language: Language | None = None
    contact: OptionalText200 = Field("", description="Phone or e-mail, for the operator only.")


class PartyUpdateIn(Patch):
    """Changes to a party."""

    nullable: ClassVar[frozenset[str]] = frozenset({"language"})

    role: PartyRole | None = None
    display_name: Text200 | None = None
    language: Language | None = None
    contact: OptionalText200 | None = None


class QrCodes(BaseModel):
    """The link as a QR code, as data URIs usable in ``<img src>`` or as downloads."""

    svg: str = Field(description="data:image/svg+xml URI")
    png: str = Field(description="data:image/png;base64 URI")


class InvitationIssueIn(Body):
    """How the new link reaches the party; an empty body means the operator hands it over (copy/QR)."""

    channel: Channel = Field(Channel.HANDOVER, description="email, sms or handover.")
    to: Annotated[str, Field(min_length=1, max_length=254), AfterValidator(displayable_text)] | None = Field(
        None, description="E-mail address or phone number; default the party's contact. Not for handover."
    )


class IssuedInvitationOut(BaseModel):
    """A freshly issued link: the only response that ever contains the token."""

    id: str
    hearing_id: str
    party_id: str
    url: str
    expires_at: datetime
    qr: QrCodes
    channel: Channel = Channel.HANDOVER
    recipient: str = ""
    delivery: DeliveryOut | None = None


# --- court acts ----------------------------------------------------------------


class PartyActOut(Out):
    """A signed act as a party sees it on their link's page."""

    id: str
    title: str
    file_name: str
    pages: int
    signed_size: int
    signed_sha256: str
    signer_subject: str
    signed_at: datetime
    signature_valid: bool = Field(
        False,
        description="The stored file's signature checked now: intact, valid, by the certificate that signed "
        "it (the judge's or the court's), whole file.",
    )


class ActOut(PartyActOut):
    """A signed act as staff see it."""

    hearing_id: str
    original_size: int
    original_sha256: str
    uploaded_by: str
    created_at: datetime


class ActList(BaseModel):
    """The acts of a hearing, oldest first."""

    items: list[ActOut]


class PartyActList(BaseModel):
    """The acts a party may download, oldest first."""

    items: list[PartyActOut]

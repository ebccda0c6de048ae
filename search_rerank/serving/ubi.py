"""User Behavior Insights: the searches this service answered and what shoppers did with them.

The records follow the OpenSearch UBI schema (https://github.com/o19s/ubi,
the ``ubi_queries`` and ``ubi_events`` indexes), so that the files can be
bulk-loaded into OpenSearch, read by UBI tooling, and turned into training
labels by :func:`search_rerank.data.clicks.read_ubi`. The service writes one
*query* record per search, carrying the ``query_id`` it also returns to the
caller; the front end sends *events* (impressions, clicks, add-to-cart ...)
tagged with that id to ``POST /ubi/events``, and may send query records of
its own to ``POST /ubi_queries`` (:class:`TrackedQuery`: the UBI JavaScript
client's ``trackQuery``), which are logged beside the service's.

Events are validated before they are written: a log that training reads
months later is the wrong place to find out that a front end never sent the
rank of what was clicked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import threading
import time
import uuid
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..core.errors import SearchRerankError
from ..core.field_names import spelling_key
from ..core.profile import FORGET_ACTION, RECEIVED_AT, SAFE_ID_PATTERN
from ..core.settings import ServiceSettings
from ..data.clicks import epoch_ms, named_action
from ..data.loaders import id_text
from .identity import IDENTITY_KEYS, verified

# Events about one result must say which product (see UbiEvent._result_events_name_their_result).
RESULT_ACTIONS = frozenset({"impression", "click"})
FUTURE_TOLERANCE_S = 86_400.0
"""How far ahead of this server's clock an event's time may be (clocks and time zones differ)."""
EARLIEST_EPOCH_MS = 100_000_000_000
"""The least epoch milliseconds taken (1973-03-03), as a number or in ISO 8601. Epoch seconds, which a client writes
from Python's ``time.time()`` or Unix's ``date +%s``, are below it until the year 5138, and read as milliseconds they
are a few weeks into 1970: an event a profile would age to nothing as it arrives, so such a number is refused, not
kept; so is an ISO time as early (a front end's zero date, ``1970-01-01T00:00:00Z``), which would be lost the same
way."""
SafeId = Annotated[str, Field(pattern=SAFE_ID_PATTERN)]


def nobody_if_empty(value: object) -> object:
    """An empty id is a shopper (or session) not known: the UBI schema allows ``user_id`` empty for one not
    signed in, the UBI JavaScript client sends ``""`` on every event, and a front end that sends a shopper's id
    on every search sends it empty for one not signed in; refused, all of them would be."""
    return None if value == "" else value


ShopperRef = Annotated[SafeId | None, BeforeValidator(nobody_if_empty)]
"""A ``session_id``: an id, or nobody (absent, null or empty)."""


def signed_user(value: object, info: ValidationInfo) -> object:
    """The id a ``user_id`` carries once its signature is checked, when the validation context holds the identity
    keys (the service's requests; see identity); nobody for an empty one, which needs no signature."""
    value = nobody_if_empty(value)
    keys = (info.context or {}).get(IDENTITY_KEYS, ())
    return verified(value, keys) if isinstance(value, str) else value


UserRef = Annotated[SafeId | None, BeforeValidator(signed_user)]
"""A ``user_id``: a shopper's id (signed, when the service requires it), or nobody (absent, null or empty)."""
Identifier = Annotated[str, Field(max_length=128)]
EpochMillis = Annotated[int, Field(strict=True, ge=0)]


def a_time_value(value: object) -> object:
    """A record's ``timestamp`` of the wrong kind refused here, naming the field: the union below would name its
    branches (``timestamp.str``, ``timestamp.constrained-int``), no path in the body."""
    if value is None or isinstance(value, str) or (type(value) is int and value >= 0):
        return value
    raise ValueError("expected ISO 8601 text or epoch milliseconds (a whole number from 0)")


Timestamp = Annotated[str | EpochMillis | None, BeforeValidator(a_time_value)]
ProductRef = Annotated[str, Field(min_length=1), BeforeValidator(id_text)]
"""A product id in a record's hits: a number is taken as its text, as the catalog reads it (see loaders.id_text)."""


def new_query_id() -> str:
    return str(uuid.uuid4())


def utc_timestamp() -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as UBI's own writers send it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UbiQuery(BaseModel):
    """A ``ubi_queries`` record: one search and the result ids it showed, in display order."""

    application: str
    query_id: str
    client_id: str | None = None
    user_query: str
    query_attributes: dict[str, Any] = Field(default_factory=dict)
    object_id_field: str = "id"
    query_response_id: str = Field(default_factory=new_query_id)
    query_response_hit_ids: list[str]
    query_response_internal_ids: list[str] | None = None
    """The hits' catalog ids, when ``query_response_hit_ids`` holds another field's values (see
    context.logged_hit_ids): this service's readers of the log go by these."""
    timestamp: str = Field(default_factory=utc_timestamp)


class UbiSearchParams(BaseModel):
    """What a UBI front end puts in a search body's ``ext.ubi`` (the OpenSearch UBI plugin's request).

    A front end that makes its own query ids (the UBI JavaScript client does)
    sends them here, and its events then already carry the id the query
    record gets.
    """

    model_config = ConfigDict(extra="forbid")

    query_id: SafeId | None = None
    client_id: Identifier | None = None  # never in a header: as an event takes it
    user_query: str | None = Field(default=None, max_length=1000)
    object_id_field: str | None = Field(default=None, max_length=100)
    query_attributes: dict[str, Any] = Field(default_factory=dict)
    application: str | None = Field(default=None, max_length=100)


def meant_field(key: str, fields: Collection[str], given: Collection[str]) -> str | None:
    """The field ``key`` is a misspelling of, among ``fields`` that were not ``given``; None when it is none's.

    A misspelling is the same letters in another case or with other separators (``queryId``, ``Query-ID``), the
    slip a JavaScript front end makes; names merely close (``objects``, ``positions``) may well be a front end's
    own, and refused they would lose its events. A field that was given makes even a look-alike key one of the
    front end's own (a product's Algolia ``objectID`` kept beside its ``object_id``)."""
    if key in fields:
        return None
    missing = {spelling_key(f): f for f in fields if f not in given}
    return missing.get(spelling_key(key))


class _Open(BaseModel):
    """A UBI record keeps a front end's own fields: the UBI schema allows them at every level (the reference
    clients send ``extra_info``, ``page_id``, ``object_detail``, a position's ``trail``), and refused, the event
    would be lost to training and the profiles. A key that misspells one of the record's own fields is refused
    instead (a 400 naming it, with the field meant): kept, ``queryId`` would be an event never joined to its
    search, and ``Ordinal`` a rank never read."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _no_misspelt_fields(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields.keys()
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("misspelt_field", "not a UBI field; did you mean {meant}?", {"meant": meant}),
                loc=(key,),
                input=value,
            )
            for key, value in data.items()
            if isinstance(key, str) and (meant := meant_field(key, fields, data)) is not None
        ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data


NOT_IN_A_RECORD = {
    "_source": "logged, the readers would take this object for the record (an exported hit keeps its record there)",
}
"""Keys neither an event nor a query record may have, each with why: every reader of the log (training, profile
rebuilds, co-interest, interleaving credit) reads a line's ``_source`` object in its place, so one logged would lose
the record, and could make the line a record the routes refuse (a forget)."""


def refuse_keys(data: object, refused: dict[str, str], model: str) -> object:
    """``data``, or a :class:`ValidationError` naming each of its keys in ``refused`` with why (a before-validator's
    body: a key of a record's own that would make its log line something else to every reader)."""
    if not isinstance(data, dict):
        return data
    errors = [
        InitErrorDetails(
            type=PydanticCustomError("not_in_a_record", "not a UBI record's field: {why}", {"why": why}),
            loc=(key,),
            input=data[key],
        )
        for key, why in refused.items()
        if key in data
    ]
    if errors:
        raise ValidationError.from_exception_data(model, errors)
    return data


def readable_time(value: str | int | None) -> str | int | None:
    """A record's ``timestamp`` as the readers take it: readable the way the profiles read an event's (one accepted
    but unreadable there would be lost from them), and not in the future, where it would keep a profile from ever
    decaying; None (left out) is the time received."""
    if value is None:
        return value
    try:
        at_s = epoch_ms(value) / 1000
    except ValueError:
        raise ValueError("must be ISO 8601 (e.g. 2024-12-10T00:01:29.378Z) or epoch milliseconds") from None
    if at_s > time.time() + FUTURE_TOLERANCE_S:
        raise ValueError("is in the future (more than a day ahead of this server's clock)")
    if at_s * 1000 < EARLIEST_EPOCH_MS and _digits(value):
        moment = datetime.fromtimestamp(at_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        raise ValueError(
            f"is epoch milliseconds, and {value} is {moment}: epoch seconds? Send milliseconds or ISO 8601"
        )
    if at_s * 1000 < EARLIEST_EPOCH_MS:
        earliest = datetime.fromtimestamp(EARLIEST_EPOCH_MS / 1000, UTC).date().isoformat()
        raise ValueError(f"is before {earliest}, the earliest time taken: a profile would age it to nothing")
    return value


def _digits(value: str | int) -> bool:
    """Whether a time is written as a number (or a string of digits, as OpenSearch's exports hold one)."""
    return isinstance(value, int) or (value.isascii() and value.isdigit())


class UbiObject(_Open):
    object_id: str | None = Field(default=None, min_length=1)
    object_id_field: str | None = None
    internal_id: str | None = Field(
        default=None,
        min_length=1,
        description="the search engine's own id of the product (its catalog id), where object_id is the value of "
        "another field (object_id_field: a SKU, an EAN); the product the event is about when given",
    )
    description: str | None = None

    @field_validator("object_id", "internal_id", mode="before")
    @classmethod
    def _number_as_text(cls, value: object) -> object:
        """The UBI schema lets ``object_id`` be an integer; the catalog holds such an id as its text, which is
        what the training reader and the profiles look a product up by (see loaders.id_text)."""
        return id_text(value)


class UbiPosition(_Open):
    ordinal: int | None = Field(default=None, ge=0, description="rank on the result page, from 0")


class UbiEventAttributes(_Open):
    object: UbiObject | None = None
    position: UbiPosition | None = None
    session_id: ShopperRef = Field(
        default=None,
        description="where some front ends put the session's id (the event's own comes first), an id as the event's "
        "own must be: the profiles read it",
    )


class UbiEvent(_Open):
    """A ``ubi_events`` record as a front end sends it, with whatever else the front end adds (kept, see _Open)."""

    action_name: str = Field(min_length=1, max_length=100, examples=["click"])
    query_id: Identifier | None = None
    client_id: Identifier | None = None
    session_id: ShopperRef = None
    user_id: UserRef = None
    application: str | None = Field(default=None, max_length=100)
    timestamp: Timestamp = Field(
        default=None, description="ISO 8601 or epoch milliseconds; the time received when left out"
    )
    message_type: str | None = None
    message: str | None = None
    user_query: str | None = None
    event_attributes: UbiEventAttributes | None = None
    received_at: str | None = Field(
        default=None, description="written by the service: when it received the event (a value sent is replaced)"
    )

    @model_validator(mode="before")
    @classmethod
    def _not_an_exported_record(cls, data: object) -> object:
        return refuse_keys(data, NOT_IN_A_RECORD, cls.__name__)

    @field_validator("action_name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        """A front end may not write a forget's record: it would keep a shopper's events out of every rebuild; nor
        an action of blanks, which names none and which every reader of the log refuses."""
        if value == FORGET_ACTION:
            raise ValueError(f"{FORGET_ACTION} is reserved for DELETE /profiles/{{user_id}}")
        if not value.strip():
            raise ValueError("must name an action, not be blank")
        return value

    @field_validator("query_id")
    @classmethod
    def _a_search_or_none(cls, value: str | None) -> str | None:
        """A query id of blanks names no search: refused, as the training reader refuses it (an empty one, as the
        UBI client sends for an event of no search, is none)."""
        if value and not value.strip():
            raise ValueError("must name a search, not be blank (leave it out, or empty, for an event of no search)")
        return value

    @field_validator("timestamp")
    @classmethod
    def _readable_time(cls, value: str | int | None) -> str | int | None:
        return readable_time(value)

    @field_validator("event_attributes")
    @classmethod
    def _result_events_name_their_result(
        cls, value: UbiEventAttributes | None, info: ValidationInfo
    ) -> UbiEventAttributes | None:
        """A click or an impression is about a product, so it must name it. Its rank is asked for but not required:
        the UBI schema allows a position by screen coordinates alone, and the reference clients send none unless
        told; such an event still counts for the shopper's profile, and training places it by its search's logged
        hits (see clicks.read_ubi)."""
        action = info.data.get("action_name")
        if named_action(action, RESULT_ACTIONS) is not None and (
            value is None or value.object is None or value.object.object_id is None
        ):
            raise ValueError(f"a {action} event needs event_attributes.object.object_id (the product id)")
        return value

    def completed(self, application: str) -> UbiEvent:
        """With the receipt time and the application filled in where the front end left them out, and
        ``received_at`` the service's own, whatever was sent: the log and the profiles order the event by it
        (against a forget), so both must read this time, never a front end's."""
        received = utc_timestamp()
        return self.model_copy(
            update={
                "timestamp": self.timestamp if self.timestamp is not None else received,
                "application": self.application or application,
                "received_at": received,
            }
        )


NOT_IN_A_QUERY = {
    "action_name": "a query record has none (events go to POST /ubi_events): logged, the line would be read as an "
    "event",
    **NOT_IN_A_RECORD,
}
"""Keys a query record may not have, each with why: what makes a log line something else to every reader."""


class TrackedQuery(_Open):
    """A ``ubi_queries`` record a front end sends itself (``POST /ubi_queries``): the UBI JavaScript client's
    ``UbiClient.trackQuery`` of a ``UbiQueryRequest`` (``application``, ``query_id``, ``client_id``, ``user_query``,
    ``query_attributes``, ``object_id_field``, ``timestamp``; ``message``, ``message_type``, ``extra_info`` when it
    is given a message), for a search made through this service or elsewhere.

    Checked as an event is (a misspelt UBI field is refused, a front end's own fields are kept, see _Open): the
    fields of the UBI query request schema (o19s/ubi 1.3.0, where only ``user_query`` is required), an id as
    ``ext.ubi.query_id`` takes it, and shopper ids as events take them. Logged with :data:`RECEIVED_AT`, which tells
    the readers that a front end sent it: a search's own record of the same ``query_id`` keeps its hits (see
    clicks.read_ubi).
    """

    application: str | None = Field(default=None, max_length=100)
    query_id: SafeId | None = Field(default=None, description="one is given when left out (see the answer)")
    client_id: Identifier | None = None
    user_id: UserRef = None
    session_id: ShopperRef = None
    user_query: str = Field(max_length=1000, examples=["red sofa"])
    query_attributes: dict[str, Any] | None = None
    object_id_field: str | None = Field(default=None, max_length=100)
    query_response_id: Identifier | None = None
    query_response_hit_ids: list[ProductRef] | None = Field(
        default=None, description="the products shown, in order; a search this service logged keeps its own"
    )
    timestamp: Timestamp = Field(
        default=None, description="ISO 8601 or epoch milliseconds; the time received when left out"
    )
    message_type: str | None = None
    message: str | None = None
    received_at: str | None = Field(
        default=None, description="written by the service: when it received the record (a value sent is replaced)"
    )

    @model_validator(mode="before")
    @classmethod
    def _not_another_kind_of_record(cls, data: object) -> object:
        return refuse_keys(data, NOT_IN_A_QUERY, cls.__name__)

    @field_validator("timestamp")
    @classmethod
    def _readable_time(cls, value: str | int | None) -> str | int | None:
        return readable_time(value)

    def completed(self, application: str) -> TrackedQuery:
        """With a query id, the receipt time and the application filled in where the front end left them out."""
        return self.model_copy(
            update={
                "query_id": self.query_id if self.query_id is not None else new_query_id(),
                "timestamp": self.timestamp if self.timestamp is not None else utc_timestamp(),
                "application": self.application or application,
            }
        )


def forget_record(user_id: str, application: str) -> UbiEvent:
    """The record of a forget, written to the UBI log (:meth:`UbiLog.record_forget`) before the profiles go (see
    :data:`~search_rerank.core.profile.FORGET_ACTION`); built without validation, which refuses it from front ends."""
    return UbiEvent.model_construct(
        action_name=FORGET_ACTION, user_id=user_id, application=application, timestamp=utc_timestamp()
    )


UbiRecord = UbiQuery | TrackedQuery | UbiEvent
"""What the UBI log holds: the service's query records, those front ends send, and events."""


def logged_record(record: UbiRecord, received: str) -> dict[str, Any]:
    """``record`` as a log line's object; an event or a front end's query record with the time ``received``,
    whatever it was sent with (a log line stays a record that ``POST /ubi/events`` or ``/ubi_queries`` takes, so
    logs can be forwarded to another service). The service's own query records have none."""
    out = record.model_dump(mode="json", exclude_none=True)
    if isinstance(record, UbiEvent | TrackedQuery):
        # An event's own (UbiEvent.completed), that the profiles were updated with; else the time written.
        out[RECEIVED_AT] = out.get(RECEIVED_AT) if isinstance(record, UbiEvent) and record.received_at else received
    return out


class UbiWriteError(SearchRerankError):
    """The UBI log could not be written (disk full, permissions, a record that is not UTF-8): nothing was kept."""


class _RaisingHandler(RotatingFileHandler):
    """A rotating file whose write errors reach the writer.

    ``logging`` handlers report their own failures on stderr and carry on,
    which for this log would be a record accepted and silently lost.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # called by emit() inside its except clause: this re-raises what emit() caught


class UbiLog:
    """UBI records as NDJSON in size-rotated files, one file per worker process.

    Why one file per process rather than one shared file with ``O_APPEND``:
    appending whole lines would keep lines intact, but rotation renames the
    file, and several gunicorn workers each rotating the same file on their
    own would overwrite each other's backups and keep writing into renamed
    files. So ``ubi.ndjson`` is written as ``ubi.<pid>.ndjson`` (rotated to
    ``ubi.<pid>.ndjson.1`` ...), each owned by one process; readers take every
    file matching ``ubi.*.ndjson*``. The file is opened on first write, in
    the process that writes, so a fork after creation still gets its own.
    Threads of one worker write one batch at a time, so lines stay whole.

    A write keeps every record it is given or raises :class:`UbiWriteError`
    having kept none: the records are encoded first, so that one which
    cannot be written fails the batch before any of it is; a write that
    fails on the way (disk full) cuts the file back to where the batch
    began and drops what was buffered, so no torn line is left and no
    refused record turns up later; and the failure raises rather than
    being reported on stderr (``logging``'s habit) and forgotten.

    A forget's record (:meth:`record_forget`) goes to ``ubi.forgets.ndjson``
    instead, one file for every process that is never rotated: it must
    outlive every event it keeps out of a rebuild, and those may be in any
    worker's file, one of a worker since restarted among them, which nobody
    writes and so nobody rotates, while the live worker's file that took the
    forget rotates its oldest lines away.
    """

    @classmethod
    def configured(cls, service: ServiceSettings) -> UbiLog | None:
        """The log ``service.ubi_log_path`` names, rotated as the settings say; None when UBI logging is off."""
        if service.ubi_log_path is None:
            return None
        return cls(service.ubi_log_path, service.ubi_log_max_bytes, service.ubi_log_backups)

    def __init__(self, path: Path, max_bytes: int, backups: int):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._handler: RotatingFileHandler | None = None
        self._pid: int | None = None

    def file_for(self, pid: int) -> Path:
        return self.path.with_name(f"{self.path.stem}.{pid}{self.path.suffix}")

    @property
    def forgets_file(self) -> Path:
        """Where forgets are recorded (``ubi.forgets.ndjson``: a name the readers' ``ubi.*.ndjson*`` takes)."""
        return self.path.with_name(f"{self.path.stem}.forgets{self.path.suffix}")

    def record_forget(self, user_id: str, application: str) -> None:
        """Append the record of forgetting ``user_id`` (:func:`forget_record`, with :data:`RECEIVED_AT`) to
        :attr:`forgets_file`, on disk before this returns; raises :class:`UbiWriteError` having kept nothing.

        Processes append to it at once (the workers, ``profiles forget``): each holds a lock on the file while
        it writes its line, so that a failed write can be cut back without cutting another's."""
        record = logged_record(forget_record(user_id, application), utc_timestamp())
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.forgets_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    start = os.fstat(fd).st_size
                    try:
                        written = 0
                        while written < len(line):
                            written += os.write(fd, line[written:])
                        os.fsync(fd)
                    except BaseException:
                        with contextlib.suppress(OSError):
                            os.ftruncate(fd, start)
                        raise
                finally:
                    os.close(fd)  # releases the lock
            except OSError as exc:
                raise UbiWriteError(f"{self.forgets_file}: {type(exc).__name__}: {exc}") from exc

    def write(self, records: Iterable[UbiRecord]) -> None:
        """Append ``records``, one line each; raises :class:`UbiWriteError` when they could not all be kept.

        Each event and front end's query record is written with :data:`RECEIVED_AT`, this server's time now."""
        received = utc_timestamp()
        lines = [json.dumps(logged_record(r, received), ensure_ascii=False) for r in records]
        with self._lock:
            try:
                for line in lines:
                    line.encode("utf-8")  # a record that cannot be written fails here, before any is
                handler = self._open()
                # The batch is one write, after at most one rotation: rotating between its lines, a batch larger
                # than the files kept (ubi_log_max_bytes x (ubi_log_backups + 1)) deleted its own first lines, and
                # was answered accepted. A file may so pass ubi_log_max_bytes by one batch.
                batch = logging.makeLogRecord({"msg": "\n".join(lines)})
                written = _regular_size(handler.baseFilename)
                if written is not None and written[1] > 0 and handler.shouldRollover(batch):
                    handler.doRollover()
                start = _regular_size(handler.baseFilename)
                try:
                    logging.FileHandler.emit(handler, batch)
                except BaseException:
                    self._discard()
                    _cut_back(handler.baseFilename, start)
                    raise
            except (OSError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
                raise UbiWriteError(f"{self.file_for(os.getpid())}: {type(exc).__name__}: {exc}") from exc

    def _open(self) -> RotatingFileHandler:
        """This process's handler, opened on its first write (the caller holds the lock), and opened again when
        its file is no longer the one at its path: deleted or moved away (a log shipper's clean-up, logrotate),
        the worker went on writing into a file no one would read, and answered those events accepted."""
        if self._handler is not None and self._pid == os.getpid() and _moved(self._handler):
            self._discard()
        if self._handler is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handler = _RaisingHandler(
                self.file_for(os.getpid()), maxBytes=self.max_bytes, backupCount=self.backups, encoding="utf-8"
            )
            self._handler.setFormatter(logging.Formatter("%(message)s"))
            self._pid = os.getpid()
        return self._handler

    def _discard(self) -> None:
        """Drop the handler and whatever it still buffers (the caller holds the lock); the next write reopens."""
        if self._handler is not None:
            with contextlib.suppress(OSError):  # flushing the refused batch fails again; the file is closed anyway
                self._handler.close()
        self._handler, self._pid = None, None

    def close(self) -> None:
        with self._lock:
            self._discard()


def _moved(handler: logging.FileHandler) -> bool:
    """Whether the file ``handler`` writes is no longer the one at its path (as logging's WatchedFileHandler
    checks before each record)."""
    if handler.stream is None:
        return False
    try:
        at_path = os.stat(handler.baseFilename)
    except FileNotFoundError:
        return True
    held = os.fstat(handler.stream.fileno())
    return (held.st_dev, held.st_ino) != (at_path.st_dev, at_path.st_ino)


def _regular_size(path: str) -> tuple[int, int] | None:
    """The file's identity (inode) and size, when it is a regular file; None for anything else."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size) if stat.S_ISREG(info.st_mode) else None


def _cut_back(path: str, start: tuple[int, int] | None) -> None:
    """Truncate the file to its size before a failed batch, unless it was rotated (or replaced) meanwhile."""
    now = _regular_size(path)
    if start is not None and now is not None and now[0] == start[0] and now[1] > start[1]:
        with contextlib.suppress(OSError):
            os.truncate(path, start[1])

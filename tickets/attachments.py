"""Files on tickets and messages, checked and stored in one place whoever sends them (a
page, the API, an email reply).

- ``validate_attachments(files)`` reads and checks every file before anything is written:
  the size (``ATTACHMENT_MAX_BYTES``), how many (``ATTACHMENT_MAX_FILES``), and the type,
  found in the content (never the name): photos, PDFs and Office documents only. JPEG,
  PNG, GIF and WebP images are decoded and encoded again, upright, without their EXIF or
  XMP metadata (a phone photo carries where it was taken). A problem is a
  ``ValidationError`` on ``files`` naming the file (400 on the API, a form error on a page).
- ``partition_attachments(files)`` is the lenient form for email: the files that pass, and
  a message for each one left out.
- ``store_attachments(...)`` writes the checked files to ``attachment_storage`` under
  random names and their rows, inside ``atomic_with_files()``.
- ``atomic_with_files()`` is ``transaction.atomic()`` that also deletes from storage the
  files stored inside it if it rolls back, so a failed write leaves no orphan file. Run
  a larger transaction that stores attachments in it, not in a bare
  ``transaction.atomic()`` (whose rollback cannot be seen from here).
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.functional import lazy
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

FIELD = "files"  # the input's name on the API and the pages, and the errors' field

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# The types that may be attached, as found by ``filetype`` in the first bytes: the
# extension the stored name gets, and the Pillow format an image is encoded again in
# (None: kept byte for byte and only ever served as a download). HEIC (an iPhone photo
# the phone did not convert) cannot be decoded here, so it is kept as sent. Plain text is
# not accepted: it has no signature to recognise it by.
ALLOWED: dict[str, tuple[str, str | None]] = {
    "image/jpeg": ("jpg", "JPEG"),
    "image/png": ("png", "PNG"),
    "image/gif": ("gif", "GIF"),
    "image/webp": ("webp", "WEBP"),
    "image/heic": ("heic", None),
    "application/pdf": ("pdf", None),
    DOCX: ("docx", None),
    XLSX: ("xlsx", None),
    PPTX: ("pptx", None),
}
REENCODED = frozenset(mime for mime, (_, fmt) in ALLOWED.items() if fmt)
# For <input type="file" accept="...">: a phone offers its camera for image/*.
ACCEPT = "image/*,application/pdf,.docx,.xlsx,.pptx"
KINDS = "a photo or image (JPEG, PNG, GIF, WebP, HEIC), a PDF, or a Word, Excel or PowerPoint file"

# Pillow's formats an allowed image may open as (an iPhone JPEG can open as MPO).
_OPENS_AS = {"JPEG": {"JPEG", "MPO"}, "PNG": {"PNG"}, "GIF": {"GIF"}, "WEBP": {"WEBP"}}
# What an image's encoder may take from the original: how it looks, never who or where.
_KEEP_INFO = {"transparency", "background", "duration", "loop"}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 90},
    "PNG": {"optimize": True},
    "GIF": {"comment": b""},
    "WEBP": {"quality": 90},
}

Upload = UploadedFile | tuple[str, bytes]


@dataclass(frozen=True)
class Prepared:
    """A file that passed the checks, ready to store: the name to show and download it by,
    the type found in it, and the bytes to keep (re-encoded for images)."""

    name: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


def validate_attachments(
    files: Sequence[Upload | Prepared] | None, *, room: int | None = None
) -> list[Prepared]:
    """Check and prepare every file, writing nothing. ``room``: how many more files the
    message takes (default ``ATTACHMENT_MAX_FILES``). Already prepared files pass as they
    are. Raises ``ValidationError({"files": [one message per problem]})``."""
    files = list(files or [])
    most = settings.ATTACHMENT_MAX_FILES
    room = most if room is None else room
    if len(files) > room:
        if room <= 0:
            message = f"This has the most files it can take ({most})."
        elif room < most:
            message = f"This already has files: attach at most {room} more."
        else:
            message = f"Attach at most {most} files at a time (you chose {len(files)})."
        raise ValidationError({FIELD: [message]})
    prepared: list[Prepared] = []
    problems: list[str] = []
    for upload in files:
        try:
            prepared.append(upload if isinstance(upload, Prepared) else _prepare(upload))
        except ValidationError as exc:
            problems += exc.messages
    if problems:
        raise ValidationError({FIELD: problems})
    return prepared


def partition_attachments(
    files: Sequence[Upload | Prepared] | None,
) -> tuple[list[Prepared], list[str]]:
    """For a sender nobody can ask to fix a file (an email reply): the files that pass, up
    to ``ATTACHMENT_MAX_FILES``, and one message for each file left out."""
    kept: list[Prepared] = []
    left_out: list[str] = []
    for upload in files or []:
        try:
            [prepared] = validate_attachments([upload])
        except ValidationError as exc:
            left_out += exc.messages
            continue
        if len(kept) < settings.ATTACHMENT_MAX_FILES:
            kept.append(prepared)
        else:
            left_out.append(
                f"{prepared.name}: only {settings.ATTACHMENT_MAX_FILES} files are kept."
            )
    return kept, left_out


def store_attachments(
    *,
    ticket: Any,
    message: Any | None,
    files: Sequence[Upload | Prepared],
    user: Any,
) -> list[Any]:
    """Check (unless prepared already) and store ``files`` on ``ticket``, on ``message``
    when given (else on the ticket itself, as raised), uploaded by ``user``. Who may attach
    is the caller's rule (tickets.services). Returns the new TicketAttachment rows."""
    from .models import TicketAttachment

    prepared = validate_attachments(files)
    if not prepared:
        return []
    storage = TicketAttachment._meta.get_field("file").storage
    rows = []
    with atomic_with_files():
        for p in prepared:
            extension = ALLOWED[p.content_type][0]
            path = f"tickets/{ticket.pk}/{uuid.uuid4().hex}.{extension}"
            stored = storage.save(path, ContentFile(p.data))
            _frames.get()[-1].append(stored)
            rows.append(
                TicketAttachment(
                    ticket=ticket,
                    message=message,
                    file=stored,
                    name=p.name,
                    content_type=p.content_type,
                    size=p.size,
                    uploaded_by=user,
                )
            )
        TicketAttachment.objects.bulk_create(rows)
    return rows


# The files stored inside each open atomic_with_files() block, innermost last.
_frames: ContextVar[tuple[list[str], ...]] = ContextVar("attachment_files", default=())


@contextmanager
def atomic_with_files() -> Iterator[None]:
    """``transaction.atomic()`` that deletes the files stored inside it when it rolls back
    (an exception leaves it, or ``set_rollback(True)`` was called in it). Nested, the
    files of an inner block that succeeded are the outer block's to delete. Usable as a
    decorator: ``@atomic_with_files()``."""
    stored: list[str] = []
    token = _frames.set((*_frames.get(), stored))
    kept = False
    try:
        with transaction.atomic():
            yield
            rolled_back = transaction.get_rollback()
        kept = not rolled_back
    finally:
        _frames.reset(token)
        outer = _frames.get()
        if not kept:
            _delete(stored)
        elif outer:
            outer[-1].extend(stored)


def _delete(names: list[str]) -> None:
    from .models import TicketAttachment

    storage = TicketAttachment._meta.get_field("file").storage
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            logger.warning("could not delete attachment file %s after a rollback", name)


def _prepare(upload: Upload) -> Prepared:
    raw_name, data = _read(upload)
    stem = _safe_stem(raw_name)
    label = _safe_name(raw_name)
    kind = filetype.guess(data)
    if kind is None or kind.mime not in ALLOWED:
        raise ValidationError(f"{label}: this kind of file can't be attached. Attach {KINDS}.")
    extension, image_format = ALLOWED[kind.mime]
    if image_format:
        data = _reencode(data, image_format, label)
    return Prepared(name=f"{stem}.{extension}", content_type=kind.mime, data=data)


def _read(upload: Upload) -> tuple[str, bytes]:
    limit = settings.ATTACHMENT_MAX_BYTES
    if isinstance(upload, tuple):
        name, data = upload[0] or "", bytes(upload[1])
    else:
        name = upload.name or ""
        if upload.size is not None and upload.size > limit:
            raise _too_big(name, upload.size, limit)
        upload.seek(0)
        data = upload.read(limit + 1)
    if len(data) > limit:
        raise _too_big(name, len(data), limit)
    if not data:
        raise ValidationError(f"{_safe_name(name)}: the file is empty.")
    return name, data


def _too_big(name: str, size: int, limit: int) -> ValidationError:
    return ValidationError(
        f"{_safe_name(name)} is too big ({_size(size)}): each file may be at most {_size(limit)}."
    )


def _limits_hint() -> str:
    return (
        f"Photos, screenshots, PDFs or Office files: up to {settings.ATTACHMENT_MAX_FILES}, "
        f"{_size(settings.ATTACHMENT_MAX_BYTES)} each at most."
    )


limits_hint = lazy(_limits_hint, str)  # for a form's help text, read when it is shown


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def _safe_name(name: str) -> str:
    """The sender's file name without any folder, control or markup characters."""
    return _clean(_base(name))[:100] or "attachment"


def _safe_stem(name: str) -> str:
    """The safe name without its extension (the stored name gets the detected type's)."""
    base = _base(name)
    return _clean(base.rsplit(".", 1)[0] if "." in base else base)[:80] or "attachment"


def _base(name: str) -> str:
    return unicodedata.normalize("NFKC", re.split(r"[\\/]", name)[-1])


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s().,\-]+", "_", text)).strip(" ._")


def _reencode(data: bytes, image_format: str, label: str) -> bytes:
    unreadable = ValidationError(f"{label}: this image could not be read (is it damaged?).")
    too_large = ValidationError(
        f"{label}: the image is too large ({settings.ATTACHMENT_MAX_PIXELS:,} pixels at most)."
    )
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in _OPENS_AS[image_format]:
                raise unreadable
            frames = getattr(image, "n_frames", 1)
            if image.width * image.height * frames > settings.ATTACHMENT_MAX_PIXELS:
                raise too_large
            out = io.BytesIO()
            options = dict(_SAVE_OPTIONS[image_format])
            if frames > 1 and image_format in ("GIF", "WEBP"):
                # Animated: every frame, encoded again; Pillow writes EXIF and XMP only
                # when given them, so none is kept.
                image.save(out, format=image_format, save_all=True, **options)
            else:
                upright = ImageOps.exif_transpose(image)  # a copy, turned as the EXIF said
                icc = upright.info.get("icc_profile")
                upright.info = {k: v for k, v in upright.info.items() if k in _KEEP_INFO}
                if icc:
                    options["icc_profile"] = icc  # colours, not metadata about anyone
                upright.save(out, format=image_format, **options)
    except Image.DecompressionBombError:
        raise too_large from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise unreadable from None
    return out.getvalue()

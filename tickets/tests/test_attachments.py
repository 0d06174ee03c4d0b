"""Files on tickets and messages, through the API and the services: what is kept (photos
upright and without their location), who may download them (404 outside the ticket's
scope, internal notes' files for the supplier only), and what is refused (a program
named photo.jpg, too big, too many) without leaving a row or a file behind."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from PIL import Image

from tickets import services
from tickets.attachments import (
    DOCX,
    atomic_with_files,
    partition_attachments,
    store_attachments,
    validate_attachments,
)
from tickets.models import Ticket, TicketAttachment, TicketMessage

from .files import GPS_IFD, docx_bytes, exe_bytes, jpeg_bytes, pdf_bytes, png_bytes


def _stored_files() -> set[str]:
    """Every file in this test process's attachment storage."""
    root = Path(TicketAttachment._meta.get_field("file").storage.location)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _upload(name: str, data: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    # The browser's content type is whatever the sender says: never believed.
    return SimpleUploadedFile(name, data, content_type=content_type)


def _post_message(world: Any, user: str, ticket: Ticket, *files: Any, **extra: Any) -> Any:
    data = {"body": "See the photo", **extra, "files": list(files)}
    return world.client(user).post(
        f"/api/v1/tickets/{ticket.pk}/messages/", data, format="multipart"
    )


def _download(world: Any, user: str, attachment: TicketAttachment) -> Any:
    return world.client(user).get(
        f"/api/v1/tickets/{attachment.ticket_id}/attachments/{attachment.pk}/"
    )


def _content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_a_phone_photo_is_kept_upright_without_its_location(world: Any) -> None:
    # Taken sideways (EXIF orientation 6: turn 90° to show), with a GPS position.
    photo = jpeg_bytes((40, 20), gps=True, orientation=6)
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(GPS_IFD)  # it really has one
    response = _post_message(world, "a_teacher", world.t_a1, _upload("IMG_0042.JPG", photo))
    assert response.status_code == 201, response.json()
    [shown] = response.json()["attachments"]
    assert shown["name"] == "IMG_0042.jpg" and shown["content_type"] == "image/jpeg"
    attachment = TicketAttachment.objects.get(pk=shown["id"])
    assert shown["url"] == f"/api/v1/tickets/{world.t_a1.pk}/attachments/{attachment.pk}/"
    assert attachment.message_id == response.json()["id"]
    assert attachment.uploaded_by == world.a_teacher

    with attachment.file.open("rb") as fh:
        kept = fh.read()
    assert kept != photo and shown["size"] == len(kept)
    image = Image.open(io.BytesIO(kept))
    assert image.format == "JPEG"
    assert image.size == (20, 40)  # turned upright once, so nothing turns it again
    assert not image.getexif()  # no camera, no orientation, no GPS
    assert "exif" not in image.info and "xmp" not in image.info
    # Stored under a random name, never the sender's.
    assert "IMG_0042" not in attachment.file.name
    assert attachment.file.name.startswith(f"tickets/{world.t_a1.pk}/")

    download = _download(world, "a_teacher", attachment)
    assert download.status_code == 200
    assert _content(download) == kept
    assert download["Content-Type"] == "image/jpeg"
    assert download["Content-Disposition"] == 'inline; filename="IMG_0042.jpg"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "private" in download["Cache-Control"]
    assert "sandbox" in download["Content-Security-Policy"]


def test_a_file_is_404_outside_the_tickets_scope(world: Any) -> None:
    response = _post_message(world, "a_teacher", world.t_a1, _upload("p.jpg", jpeg_bytes()))
    attachment = TicketAttachment.objects.get(pk=response.json()["attachments"][0]["id"])
    for user in ("a_teacher", "a_lead", "trust_lead", "s1_am", "s1_agent"):
        assert _download(world, user, attachment).status_code == 200, user
    for user in ("b_teacher", "b_lead", "s2_am", "s2_admin", "outsider"):
        assert _download(world, user, attachment).status_code == 404, user
    # Asked for under another ticket, even one the user sees, it does not exist either.
    other = f"/api/v1/tickets/{world.t_a2.pk}/attachments/{attachment.pk}/"
    assert world.client("a_lead").get(other).status_code == 404
    assert world.client(None).get(_url(attachment)).status_code in (401, 403)


def _url(attachment: TicketAttachment) -> str:
    return f"/api/v1/tickets/{attachment.ticket_id}/attachments/{attachment.pk}/"


def test_a_file_on_an_internal_note_is_the_suppliers_only(world: Any) -> None:
    internal = world.at_a1_internal
    for user in ("a_teacher", "a_lead", "trust_lead", "s2_am"):
        assert _download(world, user, internal).status_code == 404, user
        listed = world.client(user).get(f"/api/v1/tickets/{world.t_a1.pk}/attachments/")
        if listed.status_code == 200:
            assert internal.pk not in {a["id"] for a in listed.json()["results"]}
    download = _download(world, "s1_agent", internal)
    assert download.status_code == 200
    # Not an image: always a download, typed by its content, never shown by the browser.
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"] == 'attachment; filename="at_a1_internal.pdf"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert _content(download) == pdf_bytes()


def test_ticket_and_message_details_list_the_files_each_user_may_see(world: Any) -> None:
    teacher = world.client("a_teacher").get(f"/api/v1/tickets/{world.t_a1.pk}/").json()
    assert [a["name"] for a in teacher["attachments"]] == ["at_t_a1.png"]
    by_message = {m["id"]: [a["name"] for a in m["attachments"]] for m in teacher["messages"]}
    assert by_message == {world.m_a1_public.pk: ["at_a1_public.pdf"]}
    supplier = world.client("s1_agent").get(f"/api/v1/tickets/{world.t_a1.pk}/").json()
    by_message = {m["id"]: [a["name"] for a in m["attachments"]] for m in supplier["messages"]}
    assert by_message[world.m_a1_internal.pk] == ["at_a1_internal.pdf"]
    messages = world.client("a_teacher").get(f"/api/v1/tickets/{world.t_a1.pk}/messages/")
    [public] = messages.json()["results"]
    assert public["attachments"][0]["size"] == len(pdf_bytes())


def test_a_program_named_photo_jpg_is_refused_and_nothing_is_kept(world: Any) -> None:
    files, rows = _stored_files(), TicketAttachment.objects.count()
    messages = TicketMessage.objects.count()
    response = _post_message(
        world,
        "a_teacher",
        world.t_a1,
        _upload("holiday.jpg", jpeg_bytes()),
        _upload("photo.jpg", exe_bytes()),
    )
    assert response.status_code == 400
    [problem] = response.json()["files"]
    assert problem.startswith("photo.jpg: this kind of file can't be attached")
    # Not the good photo either, nor the message: all or nothing.
    assert TicketMessage.objects.count() == messages
    assert TicketAttachment.objects.count() == rows
    assert _stored_files() == files


def test_a_file_over_the_size_limit_is_refused(world: Any, settings: Any) -> None:
    photo = jpeg_bytes()
    settings.ATTACHMENT_MAX_BYTES = len(photo) - 1
    files = _stored_files()
    response = _post_message(world, "a_teacher", world.t_a1, _upload("big.jpg", photo))
    assert response.status_code == 400
    [problem] = response.json()["files"]
    assert problem.startswith("big.jpg is too big") and "at most" in problem
    assert _stored_files() == files
    assert not TicketMessage.objects.filter(body="See the photo").exists()
    # The same limit holds for bytes from an email.
    with pytest.raises(ValidationError):
        validate_attachments([("big.jpg", photo)])


def test_too_many_files_are_refused(world: Any, settings: Any) -> None:
    settings.ATTACHMENT_MAX_FILES = 2
    uploads = [_upload(f"p{i}.png", png_bytes()) for i in range(3)]
    response = _post_message(world, "a_teacher", world.t_a1, *uploads)
    assert response.status_code == 400
    assert "at most 2 files" in response.json()["files"][0]
    assert not TicketMessage.objects.filter(body="See the photo").exists()


def test_a_damaged_image_and_an_image_of_too_many_pixels_are_refused(
    world: Any, settings: Any
) -> None:
    damaged = jpeg_bytes()[:40]  # a JPEG's signature, then nothing
    with pytest.raises(ValidationError) as caught:
        validate_attachments([("broken.jpg", damaged)])
    assert "could not be read" in caught.value.messages[0]
    settings.ATTACHMENT_MAX_PIXELS = 40 * 20 - 1  # a decompression bomb, in small
    with pytest.raises(ValidationError) as caught:
        validate_attachments([("huge.jpg", jpeg_bytes((40, 20)))])
    assert "too large" in caught.value.messages[0]


def test_the_type_comes_from_the_content_and_the_name_is_made_safe(world: Any) -> None:
    [doc, pdf, png] = validate_attachments(
        [
            ("../../Year 6 <plan>.pdf", docx_bytes()),
            ("C:\\Users\\ann\\scan.docx", pdf_bytes()),
            ("\x00.png", png_bytes()),
        ]
    )
    assert (doc.name, doc.content_type) == ("Year 6 _plan.docx", DOCX)
    assert (pdf.name, pdf.content_type) == ("scan.pdf", "application/pdf")
    assert png.name == "attachment.png" and png.content_type == "image/png"
    assert doc.data == docx_bytes() and pdf.data == pdf_bytes()  # kept byte for byte


def test_an_email_keeps_the_files_that_pass_and_says_which_were_left_out(settings: Any) -> None:
    settings.ATTACHMENT_MAX_FILES = 2
    kept, left_out = partition_attachments(
        [
            ("a.jpg", jpeg_bytes()),
            ("invite.exe", exe_bytes()),
            ("b.pdf", pdf_bytes()),
            ("c.png", png_bytes()),
        ]
    )
    assert [p.name for p in kept] == ["a.jpg", "b.pdf"]
    assert left_out[0].startswith("invite.exe: this kind of file can't be attached")
    assert left_out[1] == "c.png: only 2 files are kept."
    assert not Image.open(io.BytesIO(kept[0].data)).getexif()  # cleaned like any other


def test_the_raiser_attaches_files_to_the_ticket_and_staff_to_their_messages(
    world: Any,
) -> None:
    url = f"/api/v1/tickets/{world.t_a1.pk}/attachments/"

    def attach(user: str, **data: Any) -> Any:
        files = [_upload("s.png", png_bytes())]
        return world.client(user).post(url, {**data, "files": files}, format="multipart")

    added = attach("a_teacher")
    assert added.status_code == 201, added.json()
    assert added.json()[0]["message"] is None
    # Supplier staff say which message (so whether the school sees it).
    refused = attach("s1_am")
    assert refused.status_code == 400 and "message" in refused.json()
    assert attach("s1_am", message=world.m_a1_public.pk).status_code == 201
    assert attach("s1_am", message=world.m_a1_internal.pk).status_code == 403  # not theirs
    # A message the user cannot see does not exist; one on another ticket is refused.
    outside = attach("a_teacher", message=world.m_a1_internal.pk)
    assert outside.status_code == 400 and "does not exist" in str(outside.json()["message"])
    elsewhere = attach("s2_am", message=world.m_a2_public.pk)
    assert elsewhere.status_code == 404  # t_a1 is not s2's at all
    assert attach("trust_lead").status_code == 403  # trust leads only read
    # The teacher's own file and s1_am's on its public reply; not the internal note's.
    listed = world.client("a_teacher").get(url).json()
    names = sorted(a["name"] for a in listed["results"])
    assert names == ["at_a1_public.pdf", "at_t_a1.png", "s.png", "s.png"]


def test_the_file_limit_counts_what_a_message_already_has(world: Any, settings: Any) -> None:
    settings.ATTACHMENT_MAX_FILES = 2
    message = world.m_a1_public  # has one file
    services.ticket_attach(
        ticket=world.t_a1, by=world.s1_am, message=message, files=[("a.png", png_bytes())]
    )
    with pytest.raises(ValidationError) as caught:
        services.ticket_attach(
            ticket=world.t_a1, by=world.s1_am, message=message, files=[("b.png", png_bytes())]
        )
    assert "most files it can take (2)" in caught.value.messages[0]


def test_a_ticket_filed_through_the_api_carries_its_files(world: Any) -> None:
    data = {
        "partnership": world.p_a1.pk,
        "subject": "Broken screen",
        "description": "See the photo",
        "files": [_upload("screen.jpg", jpeg_bytes())],
    }
    response = world.client("a_teacher").post("/api/v1/tickets/", data, format="multipart")
    assert response.status_code == 201, response.json()
    [shown] = response.json()["attachments"]
    assert shown["name"] == "screen.jpg" and shown["message"] is None
    refused = world.client("a_teacher").post(
        "/api/v1/tickets/",
        {**data, "subject": "Again", "files": [_upload("x.jpg", exe_bytes())]},
        format="multipart",
    )
    assert refused.status_code == 400 and "files" in refused.json()
    assert not Ticket.objects.filter(subject="Again").exists()


def test_files_reach_a_reopened_ticket_and_a_follow_up(world: Any) -> None:
    services.ticket_transition(
        ticket=world.t_a1, by=world.s1_am, status="resolved", outcome="fixed"
    )
    message = services.ticket_post_message(
        ticket=world.t_a1,
        by=world.a_teacher,
        body="Still broken",
        reopen=True,
        attachments=[("again.png", png_bytes())],
    )
    assert message.reopened
    assert [a.name for a in message.attachments.all()] == ["again.png"]
    with pytest.raises(ValidationError) as caught:
        services.ticket_transition(
            ticket=world.t_a1,
            by=world.s1_am,
            status="waiting_on_school",
            attachments=[("x.png", png_bytes())],
        )
    assert "files" in caught.value.message_dict


# --- Nothing half-stored ----------------------------------------------------------------


def test_a_failure_after_the_files_were_stored_leaves_no_file(world: Any, monkeypatch) -> None:
    files, rows = _stored_files(), TicketAttachment.objects.count()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise IntegrityError("the database refused the write")

    # Runs after the message and its files are written, inside the same transaction.
    monkeypatch.setattr(services, "_notify_supplier", refuse)
    with pytest.raises(IntegrityError):
        services.ticket_post_message(
            ticket=world.t_a1,
            by=world.a_teacher,
            body="Two photos",
            attachments=[("a.jpg", jpeg_bytes()), ("b.png", png_bytes())],
        )
    assert _stored_files() == files
    assert TicketAttachment.objects.count() == rows
    assert not TicketMessage.objects.filter(body="Two photos").exists()


def test_a_failed_row_write_or_storage_write_leaves_no_file(world: Any, monkeypatch) -> None:
    files = _stored_files()
    storage = TicketAttachment._meta.get_field("file").storage
    real_save, calls = storage.save, []

    def second_save_fails(name: str, content: Any, **kwargs: Any) -> str:
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_save(name, content, **kwargs)

    monkeypatch.setattr(storage, "save", second_save_fails)
    with pytest.raises(OSError):
        store_attachments(
            ticket=world.t_a1,
            message=None,
            files=[("a.png", png_bytes()), ("b.png", png_bytes())],
            user=world.a_teacher,
        )
    assert _stored_files() == files
    monkeypatch.setattr(storage, "save", real_save)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise IntegrityError("no")

    monkeypatch.setattr(TicketAttachment.objects, "bulk_create", refuse)
    with pytest.raises(IntegrityError):
        store_attachments(
            ticket=world.t_a1, message=None, files=[("a.png", png_bytes())], user=world.a_teacher
        )
    assert _stored_files() == files


def test_an_enclosing_transaction_that_rolls_back_takes_the_files_with_it(world: Any) -> None:
    files = _stored_files()
    # How an email handler stores a reply with more writes after it.
    with pytest.raises(RuntimeError), atomic_with_files():
        services.ticket_post_message(
            ticket=world.t_a1,
            by=world.a_teacher,
            body="By email",
            channel="email",
            attachments=[("scan.pdf", pdf_bytes())],
        )
        raise RuntimeError("a later step failed")
    assert _stored_files() == files
    assert not TicketMessage.objects.filter(body="By email").exists()
    # Rolled back without an exception (set_rollback), the same.
    with atomic_with_files():
        store_attachments(
            ticket=world.t_a1, message=None, files=[("a.png", png_bytes())], user=world.a_teacher
        )
        transaction.set_rollback(True)
    assert _stored_files() == files
    # Committed, the file stays.
    with atomic_with_files():
        [kept] = store_attachments(
            ticket=world.t_a1, message=None, files=[("a.png", png_bytes())], user=world.a_teacher
        )
    assert _stored_files() == files | {kept.file.name}


# --- Where files are kept -----------------------------------------------------------------


def test_the_storage_is_the_filesystem_by_default_and_s3_by_one_setting(monkeypatch) -> None:
    from partnership_crm import settings as project_settings

    for name in ("ATTACHMENTS_STORAGE", "ATTACHMENTS_S3_BUCKET", "ATTACHMENTS_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    default = project_settings._attachments_storage()
    assert default["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert default["OPTIONS"]["location"] == str(project_settings.VAR_DIR / "attachments")

    monkeypatch.setenv("ATTACHMENTS_STORAGE", "s3")
    with pytest.raises(ImproperlyConfigured, match="ATTACHMENTS_S3_BUCKET"):
        project_settings._attachments_storage()
    monkeypatch.setenv("ATTACHMENTS_S3_BUCKET", "crm-files")
    monkeypatch.setenv("ATTACHMENTS_S3_ENDPOINT_URL", "https://objects.example.net")
    s3 = project_settings._attachments_storage()
    assert s3["BACKEND"] == "storages.backends.s3.S3Storage"
    assert s3["OPTIONS"]["bucket_name"] == "crm-files"
    assert s3["OPTIONS"]["endpoint_url"] == "https://objects.example.net"
    assert s3["OPTIONS"]["file_overwrite"] is False

    monkeypatch.setenv("ATTACHMENTS_STORAGE", "ftp")
    with pytest.raises(ImproperlyConfigured):
        project_settings._attachments_storage()

"""Photos and files from the ticket pages: a teacher's phone photo shows as a thumbnail on
both sides, a disguised program is a form error that keeps nothing, and the pages cost
the same queries however many files there are."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tickets.models import Ticket, TicketAttachment, TicketMessage
from tickets.services import ticket_post_message
from tickets.tests.files import exe_bytes, jpeg_bytes, pdf_bytes


def _photo(name: str = "IMG_0001.JPG", data: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data or jpeg_bytes(), content_type="image/jpeg")


def _src(attachment: TicketAttachment) -> str:
    return f"/api/v1/tickets/{attachment.ticket_id}/attachments/{attachment.pk}/"


def test_the_reply_form_takes_photos_from_the_camera(world, login):
    html = login("a_teacher").get(f"/my-tickets/{world.t_a1.pk}/").content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'type="file" name="files"' in html
    assert 'accept="image/*,application/pdf,.docx,.xlsx,.pptx"' in html and " multiple" in html


def test_a_teachers_photo_shows_as_a_thumbnail_on_both_sides(world, login):
    client = login("a_teacher")
    url = f"/my-tickets/{world.t_a1.pk}/"
    response = client.post(
        f"{url}reply/", {"body": "This is the error", "files": [_photo(), _photo("b.jpg")]}
    )
    assert response.status_code == 302
    message = TicketMessage.objects.get(body="This is the error")
    first, second = message.attachments.order_by("id")
    assert (first.name, second.name) == ("IMG_0001.jpg", "b.jpg")
    html = client.get(url).content.decode()
    assert f'<img src="{_src(first)}" alt="IMG_0001.jpg"' in html
    assert "by page" in html  # the channel, as before
    download = client.get(_src(first))  # the page's own session opens it
    assert download.status_code == 200 and download["Content-Type"] == "image/jpeg"
    # The supplier's queue shows it too, with the channel.
    panel = login("s1_am").get(f"/tickets/{world.t_a1.pk}/").content.decode()
    assert f'<img src="{_src(first)}"' in panel and "by page" in panel


def test_a_program_named_photo_jpg_is_a_form_error_and_nothing_is_kept(world, login):
    client = login("a_teacher")
    rows = TicketAttachment.objects.count()
    response = client.post(
        f"/my-tickets/{world.t_a1.pk}/reply/",
        {"body": "My photo", "files": [_photo("photo.jpg", exe_bytes())]},
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "photo.jpg: this kind of file can&#x27;t be attached" in html
    assert not TicketMessage.objects.filter(body="My photo").exists()
    assert TicketAttachment.objects.count() == rows


def test_feedback_is_filed_with_a_photo(world, login):
    client = login("a_teacher")
    response = client.post(
        "/feedback/",
        {
            "token": str(uuid.uuid4()),
            "partnership": world.p_a1.pk,
            "subject": "Cracked screen",
            "description": "The class iPad",
            "category": "",
            "files": [_photo("ipad.jpg")],
        },
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get(subject="Cracked screen")
    [attachment] = ticket.attachments.all()
    assert attachment.message_id is None and attachment.name == "ipad.jpg"
    html = client.get(response["Location"]).content.decode()
    assert f'<img src="{_src(attachment)}"' in html
    form = client.get("/feedback/").content.decode()
    assert 'enctype="multipart/form-data"' in form and 'name="files"' in form


def test_a_file_on_an_internal_note_stays_with_the_supplier(world, login):
    client = login("s1_am")
    response = client.post(
        f"/tickets/{world.t_a1.pk}/reply/",
        {
            "body": "Their network log",
            "visibility": "internal",
            "files": [SimpleUploadedFile("log.pdf", pdf_bytes())],
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    attachment = TicketAttachment.objects.get(name="log.pdf")
    assert attachment.message.is_internal
    assert f'<a href="{_src(attachment)}" download>log.pdf</a>' in response.content.decode()
    teacher = login("a_teacher")
    assert "log.pdf" not in teacher.get(f"/my-tickets/{world.t_a1.pk}/").content.decode()
    assert teacher.get(_src(attachment)).status_code == 404


def _count(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_ticket_pages_cost_the_same_queries_with_more_files(world, login):
    pages = [
        (login("a_teacher"), f"/my-tickets/{world.t_a1.pk}/"),
        (login("s1_am"), f"/tickets/{world.t_a1.pk}/"),
    ]
    few = [_count(client, url) for client, url in pages]
    for i in range(4):
        ticket_post_message(
            ticket=world.t_a1,
            by=world.s1_am,
            body=f"Photo {i}",
            attachments=[(f"p{i}.jpg", jpeg_bytes()), (f"d{i}.pdf", pdf_bytes())],
        )
    many = [_count(client, url) for client, url in pages]
    assert many == few

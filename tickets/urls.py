from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("tickets", views.TicketViewSet, basename="ticket")

messages = views.TicketMessageViewSet.as_view({"get": "list", "post": "create"})
attachments = views.TicketAttachmentViewSet.as_view({"get": "list", "post": "create"})
attachment = views.TicketAttachmentViewSet.as_view({"get": "retrieve"})

urlpatterns = [
    *router.urls,
    path("tickets/<int:ticket_pk>/messages/", messages, name="ticket-messages"),
    path("tickets/<int:ticket_pk>/attachments/", attachments, name="ticket-attachments"),
    path("tickets/<int:ticket_pk>/attachments/<int:pk>/", attachment, name="ticket-attachment"),
]

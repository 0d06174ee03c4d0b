from django.contrib import admin

from .models import InboundEmail


@admin.register(InboundEmail)
class InboundEmailAdmin(admin.ModelAdmin):
    list_display = ("received_at", "status", "sender", "subject", "reason")
    list_filter = ("status",)
    search_fields = ("sender", "subject", "message_id")
    readonly_fields = [f.name for f in InboundEmail._meta.fields]

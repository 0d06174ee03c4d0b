"""/unsubscribe/{token}/: the link in every nudge. GET shows a confirmation page; POST
(the page's button, or a mail client's RFC 8058 one-click "List-Unsubscribe=One-Click")
records the opt-out at once. The signed token is the credential, so no login or CSRF."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import Contact, Organisation

from .context import read_unsubscribe_token
from .models import OptOut
from .services import opt_out


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    ids = read_unsubscribe_token(token)
    contact = Contact.objects.select_related("school").filter(pk=ids[0]).first() if ids else None
    supplier = Organisation.objects.filter(pk=ids[1], kind="supplier").first() if ids else None
    if contact is None or supplier is None:
        return render(request, "nudges/unsubscribe.html", {"invalid": True}, status=404)
    context = {"contact": contact, "supplier": supplier, "token": token}
    if request.method == "GET":
        return render(request, "nudges/unsubscribe.html", context)
    everyone = request.POST.get("scope") == "all"
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    opt_out(
        contact=contact,
        supplier=None if everyone else supplier,
        source=OptOut.Source.ONE_CLICK if one_click else OptOut.Source.LINK,
    )
    return render(
        request, "nudges/unsubscribe.html", {**context, "done": True, "everyone": everyone}
    )

from django.urls import path

from .views import home, phases, renewals, school, school_phases, supplier, teacher, term_dates

urlpatterns = [
    path("", home.home, name="home"),
    # Sign-in and password reset (Django's views, our templates; django-axes guards sign-in).
    path("accounts/sign-in/", home.login, name="login"),
    path("accounts/sign-out/", home.logout, name="logout"),
    path("accounts/password-reset/", home.password_reset, name="password_reset"),
    path("accounts/password-reset/sent/", home.password_reset_done, name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        home.password_reset_confirm,
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", home.password_reset_complete, name="password_reset_complete"),
    # Supplier staff
    path("portfolio/", supplier.portfolio, name="portfolio"),
    path("partnerships/<int:pk>/", supplier.partnership_detail, name="partnership"),
    path(
        "partnerships/<int:pk>/contacts/propose/", supplier.contact_propose, name="contact-propose"
    ),
    path(
        "partnerships/<int:pk>/contacts/<int:contact_pk>/note/",
        supplier.contact_note_save,
        name="contact-note-save",
    ),
    path("partnerships/<int:pk>/stage/", supplier.partnership_stage, name="partnership-stage"),
    path(
        "partnerships/<int:pk>/replies/<int:reply_pk>/resume/",
        supplier.nudge_reply_resume,
        name="nudge-reply-resume",
    ),
    path("partnerships/<int:pk>/phases/new/", phases.phase_new, name="phase-new"),
    path("partnerships/<int:pk>/phases/<int:phase_pk>/", phases.phase_detail, name="phase"),
    path(
        "partnerships/<int:pk>/phases/<int:phase_pk>/evaluate/",
        phases.phase_evaluate,
        name="phase-evaluate",
    ),
    path(
        "partnerships/<int:pk>/phases/<int:phase_pk>/decide/",
        phases.phase_decide,
        name="phase-decide",
    ),
    path("tickets/", supplier.queue, name="queue"),
    path("tickets/<int:pk>/", supplier.ticket_detail, name="ticket"),
    path("tickets/<int:pk>/reply/", supplier.ticket_reply, name="ticket-reply"),
    path("tickets/<int:pk>/move/", supplier.ticket_move, name="ticket-move"),
    path("tickets/<int:pk>/triage/", supplier.ticket_triage, name="ticket-triage"),
    path("visits/", supplier.visits, name="visits"),
    path("visits/plan/", supplier.visit_plan, name="visit-plan"),
    path("visits/<int:pk>/complete/", supplier.visit_done, name="visit-complete"),
    path("visits/<int:pk>/cancel/", supplier.visit_call_off, name="visit-cancel"),
    path("nudges/", supplier.nudges, name="nudges"),
    path("nudges/preview/", supplier.template_preview, name="template-preview"),
    path("nudges/<int:pk>/preview/", supplier.nudge_preview, name="nudge-preview"),
    path("nudges/<int:pk>/cancel/", supplier.nudge_stop, name="nudge-cancel"),
    path("nudges/<int:pk>/decide/", supplier.nudge_decide, name="nudge-decide"),
    # School staff
    path("feedback/", teacher.feedback, name="feedback"),
    path("my-tickets/", teacher.my_tickets, name="my-tickets"),
    path("my-tickets/<int:pk>/", teacher.school_ticket, name="my-ticket"),
    path("my-tickets/<int:pk>/rate/", teacher.rate, name="ticket-rate"),
    path("my-tickets/<int:pk>/reply/", teacher.school_reply, name="school-reply"),
    # School and trust leads
    path("school/scorecard/", school.scorecard, name="scorecard"),
    path("school/tickets/", school.school_tickets, name="school-tickets"),
    path("school/tickets/<int:pk>/", teacher.school_ticket, name="school-ticket"),
    path("school/contacts/", school.contacts, name="school-contacts"),
    path("school/phases/", school_phases.school_phases, name="school-phases"),
    path("school/term-dates/", term_dates.term_dates, name="school-term-dates"),
    path("school/contacts/stop/", school.contact_stop, name="contact-stop"),
    path("school/contacts/lift/<int:pk>/", school.contact_lift, name="contact-lift"),
    path(
        "school/contacts/proposals/<int:pk>/accept/",
        school.proposal_accept,
        name="contact-proposal-accept",
    ),
    path(
        "school/contacts/proposals/<int:pk>/decline/",
        school.proposal_decline,
        name="contact-proposal-decline",
    ),
    path("trust/", school.trust, name="trust"),
    # Renewals: both sides (frontend/views/renewals.py)
    path("school/renewals/", renewals.school_renewals, name="school-renewals"),
    path("supplier/renewals/", renewals.supplier_renewals, name="supplier-renewals"),
    path("renewals/partnerships/<int:pk>/", renewals.agreement, name="renewals-agreement"),
    path(
        "renewals/partnerships/<int:pk>/review/",
        renewals.review_open,
        name="renewals-review-open",
    ),
    path("renewals/reviews/<int:pk>/", renewals.review_detail, name="renewals-review"),
    path(
        "renewals/reviews/<int:pk>/decide/", renewals.review_decide, name="renewals-review-decide"
    ),
    path(
        "renewals/reviews/<int:pk>/survey/", renewals.review_survey, name="renewals-review-survey"
    ),
    path("renewals/reviews/<int:pk>/pack.pdf", renewals.review_pack, name="renewals-review-pack"),
]

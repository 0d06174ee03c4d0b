"""The baseline sender: one SendGrid request per email (what a naive integration does),
with the same SDK, timeout and retry policy as the product's batch sender."""

from __future__ import annotations

from nudges.sendgrid import (
    NO_LOG,
    OutgoingEmail,
    RequestLog,
    Sender,
    SendGridBatchSender,
    SendReport,
)


class PerEmailSender(SendGridBatchSender):
    def send(
        self, sender: Sender, emails: list[OutgoingEmail], request_log: RequestLog = NO_LOG
    ) -> SendReport:
        outcomes = {}
        calls = 0
        for email in emails:
            report = super().send(sender, [email], request_log)
            outcomes.update(report.outcomes)
            calls += report.calls
        return SendReport(outcomes=outcomes, calls=calls)

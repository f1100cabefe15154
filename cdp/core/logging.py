"""Keeps personal data out of the logs: email addresses and phone numbers in log records are redacted."""

import logging
import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# International numbers (+49 151 ...) and national ones with a trunk 0 (0151/1234567); not dates or ids.
PHONE = re.compile(r"(?<![\w+])(?:\+\d[\d ()/-]{7,}\d|0\d{2,4}[ /-]?\d{5,9})(?![\w])")


def redact(text: str) -> str:
    return PHONE.sub("[phone]", EMAIL.sub("[email]", text))


class RedactPII(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

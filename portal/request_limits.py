"""The largest request body the portal reads, refused before it is read.

Django counts only the form fields of a multipart body against
DATA_UPLOAD_MAX_MEMORY_SIZE; files are streamed to disk whatever their size, and the
photo check (5 MB) came after the whole body was written. A 1 GB upload held a worker
for 17 s. Here the declared length is checked before anything is read, and the bytes of
a body that declares none (or lies) are counted as they arrive.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


class RequestBodyTooLarge(RequestDataTooBig):
    """The body is larger than MAX_REQUEST_BODY_BYTES."""


def _too_large(request):
    message = _("The upload is too large: at most %(mb)s MB in one request.") % {
        "mb": settings.MAX_REQUEST_BODY_BYTES // (1024 * 1024)
    }
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=413)
    return render(request, "413.html", {"message": message}, status=413)


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class RequestBodyLimitMiddleware:
    """Answers 413 to a body declared larger than MAX_REQUEST_BODY_BYTES, unread, and to
    one found larger while its files are read (BodyLimitUploadHandler)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _declared_length(request) > settings.MAX_REQUEST_BODY_BYTES:
            return _too_large(request)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, RequestBodyTooLarge):
            return _too_large(request)
        return None


class BodyLimitUploadHandler(FileUploadHandler):
    """First of the upload handlers: stops reading once the files of one request pass
    MAX_REQUEST_BODY_BYTES, whatever the body declared."""

    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > settings.MAX_REQUEST_BODY_BYTES:
            raise RequestBodyTooLarge

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.MAX_REQUEST_BODY_BYTES:
            raise RequestBodyTooLarge
        return raw_data

    def file_complete(self, file_size):
        return None

"""Pages of a logged-in user are theirs alone: no shared or browser cache keeps them."""


class PrivateCacheControlMiddleware:
    """Adds ``Cache-Control: private, no-store`` to every answer to a logged-in user that
    does not say otherwise, so a proxy or a shared computer (a town hall's, a shelter's)
    never keeps a customer's invoices, sites or photos."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "private, no-store"
        return response

"""Static files as the portal serves them once collected."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class CollectedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed names (a year in the browser's cache), brotli and gzip copies — also in
    `make run`, whose DEBUG would otherwise make Django's manifest storage hand out the
    plain names, which browsers must ask for again on every page over the slow line."""

    def url(self, name, force=False):
        return super().url(name, force=True)

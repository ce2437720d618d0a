"""A PDF's first page for the albums view: side by side from the api-server's thread pool."""

import io
import threading

import pytest
from PIL import Image

from devtools.sample import fake_pdf
from include.album.admin.ui import PDF_PREVIEW_WIDTH, first_page_png


def test_first_pages_render_side_by_side_as_an_album_of_two_pdfs_asks_for_them():
    """Two renders at once without the lock corrupted PDFium's heap and glibc aborted the
    process (the browser test's "PDF's first page" timed out when it happened in the api-server)."""
    pdfs, pages, errors = [fake_pdf("agenda.pdf"), fake_pdf("minutes.pdf")], [], []

    def render(data: bytes) -> None:
        for _ in range(40):
            try:
                pages.append(first_page_png(data))
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=render, args=(data,)) for data in pdfs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(pages) == 80
    assert Image.open(io.BytesIO(pages[0])).width == PDF_PREVIEW_WIDTH


def test_a_file_that_is_not_a_pdf_says_so():
    with pytest.raises(ValueError, match="cannot be read"):
        first_page_png(b"not a pdf")

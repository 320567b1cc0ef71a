"""Pictures (.png, .jpg) -> units: the text read by OCR, as one page."""

from __future__ import annotations

import io

from policyqa.ingest import ocr
from policyqa.models import Unit


def load_image(data: bytes, name: str, budget: ocr.Budget) -> list[Unit]:
    """The lines of a photographed or scanned page, in reading order, as page 1."""
    import PIL.Image
    import PIL.ImageOps

    with PIL.Image.open(io.BytesIO(data)) as image:
        budget.check_pixels(image.width, image.height, name)
        budget.start(1, name)
        upright = PIL.ImageOps.exif_transpose(image)  # a phone's photo says which way is up in its EXIF
        found = ocr.read_page(upright, 1)
    budget.tell(1, 1)
    return found

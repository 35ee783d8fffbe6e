"""The whole store checked (and mended): the image database against its
blobs (image/check.py) and the container records (state.py). Read-only
unless repair; repair deletes nothing, it moves what it cannot trust to a
quarantine directory and rebuilds what the content proves."""
from __future__ import annotations

from .image.check import CheckReport, check as check_images
from .state import check_records


def check(root=None, repair: bool = False) -> CheckReport:
    report = check_images(root, repair=repair)
    problems, repairs = check_records(root, repair=repair)
    report.problems += problems
    report.repairs += repairs
    return report

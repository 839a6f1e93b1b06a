"""The managers' forecast review page: what it shows (:mod:`.content`), in which words
(:mod:`.i18n`, :mod:`.formatting`), with which charts (:mod:`.charts`), as one
self-contained HTML document (:mod:`.render`). ``GET /ui`` and ``leadcast report`` both
use it, so the page and the static report hold the same content.
"""

from models.review.content import ReviewSources, health_from_registry, review_content
from models.review.periods import CHOICES, resolve_period
from models.review.render import render_review

__all__ = [
    "CHOICES",
    "ReviewSources",
    "health_from_registry",
    "render_review",
    "resolve_period",
    "review_content",
]

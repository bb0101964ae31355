"""The operator console (CONTRACT §9): server-rendered pages at `/ui`, live through htmx polling.

`router` holds every console route; `create_app` includes it. Pages: `pages.py`; forms and actions:
`forms.py`, `actions.py`; sessions and CSRF: `sessions.py`; what is shown: `data.py`, `history.py`;
secrets are masked by `redact.py` before anything is rendered; `sampler.py` keeps the sparklines' history
(a lifespan of this router, merged into the app's).
"""

from __future__ import annotations

from fastapi import APIRouter

from routeguard.service.ui import forms, pages
from routeguard.service.ui.sampler import sampling

__all__ = ["router"]

router = APIRouter(include_in_schema=False, lifespan=sampling)
router.include_router(pages.router)
router.include_router(forms.router)

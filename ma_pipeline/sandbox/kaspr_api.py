"""The Kaspr sandbox: ``POST /profile/linkedin`` answered in the shapes public clients describe.

Each slug gets a fixed fate from the seed: not found (404), an empty profile (200, a miss), or a
profile with some of a work e-mail, a direct e-mail and phones, plus the masked ``starry*``
previews the real API adds. Key names vary between answers (``professionalEmails`` or
``workEmails``, phones as strings or objects) as they do between the documented clients. A slug
that is not bare, or an unknown data type, gets the 500 the real API gives.
"""

import hashlib
import json
import random
from typing import Any

import httpx

from ma_pipeline.sandbox.transport import SandboxTransport

DATA_TYPES = {"workEmail", "directEmail", "phone"}
_DOMAINS = ("example-conseil.fr", "example-industrie.fr", "example-services.com")


def _mask(value: str) -> str:
    return value[0] + "***" + value[value.index("@") :] if "@" in value else value[:4] + "****"


def profile(slug: str, name: str, data: set[str], seed: int) -> tuple[int, dict[str, Any]]:
    """Status and body for ``slug``, the same on every call."""
    digest = hashlib.blake2b(f"{seed}:{slug}".encode(), digest_size=8).digest()
    rng = random.Random(int.from_bytes(digest))
    fate = rng.random()
    if fate < 0.05:
        return 404, {"message": "Profile not found"}
    if fate < 0.2:
        return 200, {"profile": {}}
    first, _, last = name.partition(" ")
    domain = rng.choice(_DOMAINS)
    work = [f"{first.lower()}.{last.lower().replace(' ', '')}@{domain}"]
    personal = [f"{first.lower()}{rng.randint(10, 99)}@example-mail.fr"]
    phone = "+33 6 " + " ".join(str(rng.randint(10, 99)) for _ in range(4))
    found: dict[str, Any] = {}
    if "workEmail" in data and rng.random() < 0.8:
        found["workEmails" if rng.random() < 0.3 else "professionalEmails"] = work
        found["starryProfessionalEmail"] = _mask(work[0])
    if "directEmail" in data and rng.random() < 0.3:
        found["personalEmails"] = personal
        found["starryPersonalEmail"] = _mask(personal[0])
    if "phone" in data and rng.random() < 0.5:
        as_object = rng.random() < 0.5
        found["phones"] = [{"number": phone, "type": "mobile"}] if as_object else [phone]
        found["starryPhone"] = _mask(phone)
    return 200, {
        "profile": {
            "id": slug,
            "name": name,
            "firstName": first,
            "lastName": last,
            "title": rng.choice(("Gérant", "Président", "Directeur général", "CEO")),
            "fetchedAt": "2026-01-01T00:00:00.000Z",
            "company": {"name": f"{last.upper()} ET ASSOCIES"},
            **found,
        }
    }


class KasprSandbox(SandboxTransport):
    """Kaspr ``/profile/linkedin`` with a fixed fate per slug."""

    def __init__(self, seed: int = 0, **transport: Any) -> None:
        super().__init__(**transport)
        self.seed = seed

    def authorized(self, request: httpx.Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def no_credits(self) -> tuple[int, dict[str, Any]]:
        return 402, {"message": "Not enough credits for the requested data"}

    def answer(self, request: httpx.Request) -> tuple[int, Any, str | None]:
        if request.method != "POST" or request.url.path != "/profile/linkedin":
            return 404, {"message": "Not Found"}, None
        if request.headers.get("accept-version") != "v2.0":
            return 400, {"message": "the accept-version header is required"}, None
        body = json.loads(request.content or b"{}")
        slug, name, data = body.get("id"), body.get("name"), set(body.get("dataToGet") or [])
        if not slug or not name or "/" in slug or ":" in slug or data - DATA_TYPES:
            return 500, {"message": "Internal server error"}, None
        status, answer = profile(slug, name, data, self.seed)
        return status, answer, slug if status == 200 and answer["profile"] else None

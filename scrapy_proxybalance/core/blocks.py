"""Block and challenge pages of the common anti-bot services, recognised with no user regex.

Each preset names the markers of one service's pages: a response header (alone it decides,
or only on a refusal: status 403, how these services refuse) or a phrase in the first
:data:`~.bodies.BODY_SCAN_BYTES` of the body, decompressed (see :mod:`.bodies`). A response
with a marker of an enabled preset is a ban, whatever its status (a challenge served with
``200`` or ``503`` included). The markers are chosen so that an ordinary page of a protected
site, which carries the service's scripts and cookies too, does not match. A body that begins
with the signature of an image, a PDF or an archive (:data:`BINARY`) is not searched. Where each
signature comes from:

- ``cloudflare``: Cloudflare documents that every Challenge Page response carries
  ``cf-mitigated: challenge`` ("Detect a Challenge Page response", Cloudflare's challenge
  docs); the interstitial's ``<title>Just a moment...</title>`` and its ``_cf_chl_opt``
  script object are what the page itself shows (ordinary pages of a protected site load
  ``/cdn-cgi/challenge-platform/`` scripts too, so that path is not a marker).
- ``datadome``: DataDome's captcha and block pages are served from
  ``geo.captcha-delivery.com`` (the ``captchaUrl`` that captcha-solving services' DataDome
  tasks take); every response of a protected site has an ``X-DataDome`` header, so the
  header counts only on a refusal.
- ``perimeterx``: HUMAN (PerimeterX) block pages hold the ``px-captcha`` element of its
  "Press & Hold" challenge (HUMAN's block page documentation and its captcha script's
  container id); ordinary pages load ``_pxAppId`` sensors, which are not markers.
- ``akamai``: the Akamai edge's refusal page, "Access Denied ... You don't have permission to
  access ... Reference #" (sent with ``Server: AkamaiGHost``), and Bot Manager's challenge
  container ``sec-if-cpt-container``.
- ``imperva``: Imperva (Incapsula) block pages say "Incapsula incident ID"; an
  ``X-Iinfo`` header or an ``_Incapsula_Resource`` frame counts only on a refusal (ordinary
  pages load that resource too).

Responses are duck-typed (``status``, ``headers`` with ``get``, ``body``), so no Scrapy here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .bodies import decoded_head, header_keys, header_value

REFUSAL = 403  # how the services refuse: the status their refusal-only markers need
# the first bytes of files no block page is: PNG, JPEG, GIF, WebP (RIFF), PDF, ZIP, gzip, WOFF
BINARY = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"wOF")


@dataclass(frozen=True, slots=True)
class Marker:
    """A header (``header``: its name; ``pattern``: its value, ``None``: any) or, without a
    header, a phrase of the body (``needle``: lower-case words every match holds, looked for
    before the pattern runs); ``refusal``: it counts only with status 403 (the service's
    refusal; its header is on every response of the site it protects)."""

    pattern: bytes | None
    header: str | None = None
    refusal: bool = False
    needle: bytes = b""


PRESETS: dict[str, tuple[Marker, ...]] = {
    "cloudflare": (
        Marker(rb"^challenge$", header="cf-mitigated"),
        Marker(rb"<title>Just a moment\.\.\.</title>", needle=b"just a moment..."),
        Marker(rb"window\._cf_chl_opt", needle=b"_cf_chl_opt"),
    ),
    "datadome": (
        Marker(rb"captcha-delivery\.com", needle=b"captcha-delivery.com"),
        Marker(None, header="x-datadome", refusal=True),
    ),
    "perimeterx": (
        Marker(rb"""id=["']px-captcha["']""", needle=b"px-captcha"),
    ),
    "akamai": (
        Marker(rb"You don't have permission to access[\s\S]{0,600}Reference(?:\s|&#32;)*(?:#|&#35;)",
               needle=b"permission to access"),
        Marker(rb"sec-if-cpt-container", needle=b"sec-if-cpt-container"),
        Marker(rb"^AkamaiGHost$", header="server", refusal=True),
    ),
    "imperva": (
        Marker(rb"Incapsula incident ID", needle=b"incapsula incident id"),
        Marker(rb"_Incapsula_Resource", refusal=True, needle=b"_incapsula_resource"),
        Marker(None, header="x-iinfo", refusal=True),
    ),
}


class BlockPages:
    """The enabled presets' markers, compiled. A body's head is lower-cased once and searched
    for the markers' needles (plain substring searches); the patterns run only where one is
    there, so an ordinary page costs tens of microseconds, not a regular expression's
    milliseconds."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        unknown = [n for n in self.names if n not in PRESETS]
        if unknown:
            raise ValueError(f"no block preset {unknown[0]!r}; the presets: {', '.join(PRESETS)}")
        # the header markers (preset, header, its keys, pattern) a response is looked at for: any response
        # (False), a refusal (True: those that decide alone too)
        self.headers: dict[bool, list[tuple[str, str, tuple[bytes, str, str], re.Pattern[bytes] | None]]] = {
            False: [], True: []}
        bodies: dict[bool, list[str]] = {False: [], True: []}
        self.needles: dict[bool, list[bytes]] = {False: [], True: []}
        for name in self.names:
            for marker in PRESETS[name]:
                if marker.header is not None:
                    pattern = re.compile(marker.pattern, re.I) if marker.pattern else None
                    for refusal in (True,) if marker.refusal else (False, True):
                        self.headers[refusal].append((name, marker.header, header_keys(marker.header), pattern))
                else:
                    assert marker.pattern is not None and marker.needle == marker.needle.lower() != b""
                    self.needles[marker.refusal].append(marker.needle)
                    bodies[marker.refusal].append(f"(?P<{name}_{len(bodies[marker.refusal])}>"
                                                  f"{marker.pattern.decode()})")
        self.body = {refusal: re.compile("|".join(parts).encode(), re.I) if parts else None
                     for refusal, parts in bodies.items()}

    def __bool__(self) -> bool:
        return bool(self.names)

    def match(self, response: object) -> str | None:
        """The name of the preset whose page ``response`` is, or ``None``."""
        status = getattr(response, "status", 200)
        refusal = status == REFUSAL
        headers = getattr(response, "headers", {})
        for name, header, keys, pattern in self.headers[refusal]:
            value = header_value(headers, header, keys)
            if value is not None and (pattern is None or pattern.search(_bytes(value).strip())):
                return name
        head = decoded_head(response)
        if head.startswith(BINARY):  # an image, a PDF, an archive: never a block page (and no 16 kB to scan)
            return None
        lowered = head.lower()
        for needs_refusal in (False, True):
            pattern = self.body[needs_refusal]
            if pattern is None or (needs_refusal and not refusal):
                continue
            for needle in self.needles[needs_refusal]:  # (a loop: no generator made per response)
                if needle in lowered:
                    break
            else:
                continue
            found = pattern.search(head)
            if found is not None:
                return (found.lastgroup or "").rsplit("_", 1)[0]
        return None


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("latin-1", "replace")

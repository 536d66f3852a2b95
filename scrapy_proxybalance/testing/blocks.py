"""The farm's copies of the anti-bot services' block and challenge pages (what
:mod:`..core.blocks` recognises), each servable with status 403 or 200, and an ordinary page
of a site each service protects (which must not read as a block)."""

from __future__ import annotations

import gzip

from .wire import response

PAGES: dict[str, tuple[str, bytes]] = {  # name -> (extra header lines, body)
    "cloudflare": (
        "Server: cloudflare\r\ncf-mitigated: challenge\r\nCF-RAY: 8f0c1d2e3a4b5c6d-FRA\r\n",
        b"<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title></head><body>"
        b"<noscript>Enable JavaScript and cookies to continue</noscript>"
        b"<script>(function(){window._cf_chl_opt={cvId: '3',cZone: 'shop.test',cType: 'managed'};"
        b"}());</script></body></html>",
    ),
    "datadome": (
        "X-DataDome: protected\r\nX-DD-B: 1\r\n",
        b"<html><head><title>shop.test</title></head><body><script>var dd={'rt':'c','cid':'AHrlqAAAAAMA',"
        b"'hsh':'2211F522B61E269B869FA6EAFFB5E1','host':'geo.captcha-delivery.com'}</script>"
        b"<script src=\"https://ct.captcha-delivery.com/c.js\"></script></body></html>",
    ),
    "perimeterx": (
        "",
        b"<html><head><title>Access to this page has been denied</title></head><body>"
        b"<h1>Press &amp; Hold to confirm you are a human (and not a bot).</h1>"
        b"<div id=\"px-captcha\"></div><script>window._pxAppId='PXaBcD1234';</script></body></html>",
    ),
    "akamai": (
        "Server: AkamaiGHost\r\n",
        b"<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n"
        b"You don't have permission to access \"http&#58;&#47;&#47;shop&#46;test&#47;\" on this server.<P>\n"
        b"Reference&#32;&#35;18&#46;5f3c1402&#46;1733300000&#46;1a2b3c4d\n</BODY>\n</HTML>\n",
    ),
    "imperva": (
        "X-Iinfo: 12-34567890-0 0NNN RT(1733300000000 0) q(0 -1 -1 -1) r(0 -1)\r\nX-CDN: Imperva\r\n",
        b"<html style=\"height:100%\"><head><META NAME=\"ROBOTS\" CONTENT=\"NOINDEX, NOFOLLOW\"></head>"
        b"<body style=\"margin:0px;height:100%\"><iframe id=\"main-iframe\" src=\"/_Incapsula_Resource?CWUDNSAI=9"
        b"&xinfo=12-34567890-0&incident_id=123000450012345678-9876543210&edet=15\" frameborder=0>"
        b"Request unsuccessful. Incapsula incident ID: 123000450012345678-9876543210</iframe></body></html>",
    ),
}

ORDINARY: dict[str, tuple[str, bytes]] = {  # an ordinary page of a site each service protects
    "cloudflare": ("Server: cloudflare\r\nCF-RAY: 8f0c1d2e3a4b5c6d-FRA\r\n",
                   b"<html><head><title>Shop</title><script src=\"/cdn-cgi/challenge-platform/scripts/jsd/main.js\">"
                   b"</script></head><body><p>Just a moment of your time: our sale ends soon.</p></body></html>"),
    "datadome": ("X-DataDome: protected\r\n",
                 b"<html><head><script src=\"https://js.datadome.co/tags.js\"></script></head><body>shop</body></html>"),
    "perimeterx": ("", b"<html><head><script>window._pxAppId='PXaBcD1234';</script>"
                       b"<script src=\"/aBcD1234/init.js\"></script></head><body>shop</body></html>"),
    "akamai": ("Server: AkamaiGHost\r\n", b"<html><body><h1>Shop</h1><p>Access denied? Call us.</p></body></html>"),
    "imperva": ("X-Iinfo: 12-34567890-0 0NNN\r\nX-CDN: Imperva\r\n",
                b"<html><head><script src=\"/_Incapsula_Resource?SWJIYLWA=719d34d31c8e3a6e6fffd425f7e032f3\">"
                b"</script></head><body>shop</body></html>"),
}


def block_response(name: str, status: int = 403, gzipped: bool = False) -> bytes:
    """The service's block page as the farm sends it (``gzipped``: with ``Content-Encoding: gzip``)."""
    headers, body = PAGES[name]
    if gzipped:
        return response(status, gzip.compress(body), headers + "Content-Encoding: gzip\r\n")
    return response(status, body, headers)

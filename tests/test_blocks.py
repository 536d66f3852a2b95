"""Block-page presets: each service's block and challenge page is a ban with status 403 or 200
(or 503), its ordinary pages are not, and each preset is switched by name."""

import re

import pytest

from scrapy_proxybalance.core.blocks import PRESETS, BlockPages
from scrapy_proxybalance.core.outcomes import BanPolicy, Outcome
from scrapy_proxybalance.testing.blocks import ORDINARY, PAGES


class Answer:
    """A response as the core reads one (Scrapy's headers are case-insensitive too)."""

    def __init__(self, status, header_lines, body):
        self.status, self.body = status, body
        pairs = [line.split(": ", 1) for line in header_lines.split("\r\n") if line]
        self.headers = {k.lower(): v.encode() for k, v in pairs}

    def __repr__(self):
        return f"<{self.status}>"


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("status", [403, 200, 503])
def test_each_services_block_page_is_a_ban_whatever_its_status(name, status):
    policy = BanPolicy(blocks=BlockPages(PRESETS))
    headers, body = PAGES[name]
    page = Answer(status, headers, body)
    assert policy.response_outcome(None, page) is Outcome.BAN
    assert policy.block_of(page) == name
    without_headers = Answer(status, "", body)  # the body alone tells it too
    assert BlockPages([name]).match(without_headers) == name


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_ordinary_pages_of_protected_sites_are_not_bans(name):
    policy = BanPolicy(blocks=BlockPages(PRESETS))
    headers, body = ORDINARY[name]
    for status in (200, 404, 302):
        assert policy.response_outcome(None, Answer(status, headers, body)) is Outcome.SUCCESS
    assert policy.block_of(Answer(200, headers, body)) is None


def test_presets_are_switched_by_name_and_an_unknown_one_is_refused():
    headers, body = PAGES["cloudflare"]
    page = Answer(503, headers, body)
    assert BanPolicy(blocks=BlockPages(["datadome"])).response_outcome(None, page) is Outcome.OVERLOADED
    assert BanPolicy(blocks=BlockPages([])).response_outcome(None, page) is Outcome.OVERLOADED
    assert BanPolicy().block_of(page) is None
    with pytest.raises(ValueError, match="no block preset 'kasada'; the presets: cloudflare"):
        BlockPages(["kasada"])


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_block_page_is_known_in_any_case_and_each_phrase_holds_its_needle(name):
    """The body is searched for the markers' needles before their patterns run: a match must
    hold its needle, whatever the page's letter case."""
    _, body = PAGES[name]
    for page in (body, body.upper(), body.lower()):
        assert BlockPages([name]).match(Answer(403, "", page)) == name
    for marker in PRESETS[name]:
        if marker.header is None:
            for match in re.finditer(marker.pattern, body, re.I):
                assert marker.needle in match.group().lower()


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw deflate", "br", "zstd", "gzip, br"])
def test_a_compressed_block_page_is_known_as_it_comes_before_scrapy_decompresses_it(coding):
    import gzip
    import zlib

    brotli = pytest.importorskip("brotli")  # (Scrapy's own decoders need them too)
    try:
        from compression import zstd
    except ImportError:
        zstd = pytest.importorskip("backports.zstd")

    def raw_deflate(data):
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return packer.compress(data) + packer.flush()

    encode = {"gzip": gzip.compress, "deflate": zlib.compress, "raw deflate": raw_deflate, "br": brotli.compress,
              "zstd": zstd.compress, "gzip, br": lambda data: brotli.compress(gzip.compress(data))}[coding]
    _, body = PAGES["perimeterx"]  # found by its body alone
    header = "deflate" if coding == "raw deflate" else coding
    page = Answer(403, f"Content-Encoding: {header}", encode(body))
    assert BlockPages(PRESETS).match(page) == "perimeterx"
    assert BanPolicy(body_patterns=["px-captcha"]).response_outcome(None, Answer(200, f"Content-Encoding: {header}",
                                                                                 encode(body))) is Outcome.BAN


def test_a_body_that_cannot_be_decoded_is_read_as_it_came_and_a_bomb_only_to_the_scanned_head():
    import gzip

    from scrapy_proxybalance.core.bodies import BODY_SCAN_BYTES, decoded_head

    _, body = PAGES["perimeterx"]
    assert BlockPages(PRESETS).match(Answer(403, "Content-Encoding: gzip", body)) == "perimeterx"  # not gzip at all
    assert BlockPages(PRESETS).match(Answer(403, "Content-Encoding: snappy", body)) == "perimeterx"  # unknown coding
    bomb = gzip.compress(b"x" * 50_000_000)
    assert len(decoded_head(Answer(200, "Content-Encoding: gzip", bomb))) == BODY_SCAN_BYTES


def test_images_pdfs_and_archives_are_not_searched():
    _, body = PAGES["perimeterx"]
    assert BlockPages(PRESETS).match(Answer(200, "", b"\x89PNG\r\n\x1a\n" + body)) is None
    assert BlockPages(PRESETS).match(Answer(200, "", b"%PDF-1.7\n" + body)) is None

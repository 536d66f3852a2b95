"""End-to-end: sticky sessions against a site that binds each login to the exit that made it,
and a provider's session gateway."""

from collections import Counter

from scrapy_proxybalance.testing.farm import token

from .e2e import Farm, ProxySpec, crawl

HOST = "bank.test"
SESSIONS, PAGES = 24, 15


def session_of(page: dict) -> str:
    return page["url"].split("/")[4]


def test_sessions_keep_their_exit_and_only_those_whose_proxy_died_log_in_again(tmp_path):
    specs = [ProxySpec(f"p{i}") for i in range(12)]
    with Farm(specs) as farm:
        farm.blackout(after_requests=60, seconds=120.0, names={"p0", "p1", "p2"}, refuse=True)  # three die mid-crawl
        result = crawl(tmp_path, farm, [], spider="sessions", sessions={"host": HOST, "sessions": SESSIONS,
                       "pages": PAGES}, PROXY_DOMAIN_COOLDOWN=0.1, CONCURRENT_REQUESTS=32, timeout=150)
    assert result["errors"] == [] and result["refused"] == []  # no mystery 403, nothing given up
    fetched = Counter(p["url"] for p in result["pages"])
    assert len(fetched) == SESSIONS * PAGES and set(fetched.values()) == {1}  # every page, once
    assert all(token(HOST, "/" + p["url"].split("/", 3)[3]) in p["text"] for p in result["pages"])
    dead = {s.exit_ip for s in specs[:3]}
    exits: dict[str, list[str]] = {}  # session -> the exits the site saw it from, in order
    for seen in farm.site_seen:
        session = seen.path.split("?")[1].rsplit("-", 1)[0] if "?" in seen.path else seen.path.split("/")[2]
        if seen.exit_ip not in exits.setdefault(session, []):
            exits[session].append(seen.exit_ip)
    told = Counter(session for session, _, _ in result["moved"])
    assert told and set(told.values()) == {1}  # some moved, each told exactly once
    assert all("ejected" in why for _, why, _ in result["moved"])
    for session, seen_from in exits.items():
        live = [e for e in seen_from if e not in dead]
        assert len(live) == 1, (session, seen_from)  # one live exit each, ever
        if session not in told:
            assert seen_from == live, session  # a session that did not move never left its exit
    relogins = Counter(result["logins"]) - Counter(set(result["logins"]))
    assert set(relogins) <= set(told) and set(relogins.values()) <= {1}  # new logins only for moved ones
    assert relogins  # (one that moved at its first login needs none)
    stats = result["stats"]
    assert stats["proxybalance/sessions/bound"] == SESSIONS
    moves = stats["proxybalance/sessions/moved"]
    assert moves == stats["proxybalance/sessions/moved/ejected"]  # every move was for an ejection
    # each moved session was told once; one bound anew to a proxy that was dying too (all three
    # die at once, each ejected after its own failures) moved again before it was told
    assert len(told) <= moves <= 3 * len(told)
    assert stats["proxybalance/sessions/renewed"] == len(told)
    assert "proxybalance/bans" not in stats  # the site's 403 to a moved session is not counted as a ban
    first = Counter(seen_from[0] for seen_from in exits.values())
    assert max(first.values()) <= 4, (first, exits)  # spread over the pool (3 each, and one moved before login)


def test_a_session_gateway_gives_each_session_its_own_identity_with_its_own_health(tmp_path):
    exits = tuple(f"127.0.9.{i}" for i in range(1, 201))
    dead = frozenset(exits[:10])  # the provider's exits behind some identities are broken
    gateway = ProxySpec("gate", kind="gateway", user="acme", password="pw", exits=exits, dead_exits=dead)
    with Farm([gateway]) as farm:
        entry = {"url": f"http://acme-session-{{session}}:pw@127.0.0.1:{gateway.port}", "sessions": 500,
                 "name": "gate"}
        result = crawl(tmp_path, farm, [], spider="sessions", sessions={"host": HOST, "sessions": 400,
                       "pages": 2}, PROXY_POOL=[entry], PROXY_DOMAIN_COOLDOWN=0.0, CONCURRENT_REQUESTS=64,
                       timeout=150)
    assert result["errors"] == [] and result["refused"] == []
    assert len({p["url"] for p in result["pages"]}) == 800
    users = {s.headers["proxy-authorization"] for s in gateway.seen}
    broken = {s.headers["proxy-authorization"] for s in gateway.seen if s.exit_ip in dead}
    assert len(users) == 400 + len(broken)  # one identity per session, and a fresh one for each that broke
    stats = result["stats"]
    assert broken and stats["proxybalance/ejections"] == len(broken)  # each broken identity alone is out
    assert stats["proxybalance/sessions/moved"] == len(broken)  # each broken identity moved its session
    told = Counter(session for session, _, _ in result["moved"])
    assert set(told.values()) == {1}  # told once (a session that broke twice before an answer, once too)
    assert stats["proxybalance/sessions/bound"] == 400
    assert "gate[s17]" in result["log"]

"""The admins' page: hub login (OAuth), admins only, usage tables, CSV, the budget form."""

import csv
import io
import re
import uuid
from datetime import date, timedelta
from html.parser import HTMLParser

import httpx
import pytest

from aihub.gateway import chart

from .conftest import SCOPE

PREFIX = "/services/ai-gateway/"
# A hub admin (hub_config.py) whose name is markup: a script if a page did not escape it.
MARKUP_ADMIN = '<script>alert("admin")'


class Browser:
    """A browser on the hub and the gateway. The hub's proxy would put both behind one
    address; here /hub/... goes to the hub's port and /services/... to the gateway's."""

    def __init__(self, hub, gateway):
        self.hub, self.gateway = hub, gateway
        self.client = httpx.Client(timeout=30, follow_redirects=False)

    def absolute(self, location: str) -> str:
        if location.startswith("http"):
            return location
        return (self.hub.url if location.startswith("/hub/") else self.gateway.url) + location

    def get(self, path: str, follow: bool = True) -> httpx.Response:
        response = self.client.get(self.absolute(path))
        while follow and response.status_code in (301, 302, 303):
            response = self.client.get(self.absolute(response.headers["location"]))
        return response

    def post(self, path: str, data: dict) -> httpx.Response:
        return self.client.post(self.absolute(path), data=data)

    def log_in(self, name: str) -> None:
        page = self.client.get(f"{self.hub.url}/hub/login")
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)[1]
        response = self.client.post(f"{self.hub.url}/hub/login",
                                    data={"username": name, "password": "any", "_xsrf": xsrf})
        assert response.status_code == 302, response.text


@pytest.fixture
def browser(hub, gateway):
    opened = Browser(hub, gateway)
    yield opened
    opened.client.close()


def use_some(gateway, who, model="echo-1"):
    return httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=who.headers,
                      json={"model": model, "messages": [{"role": "user", "content": "a b c"}]})


def test_a_visitor_is_sent_to_the_hubs_login(browser):
    slashless = browser.get(PREFIX.rstrip("/"), follow=False)
    assert (slashless.status_code, slashless.headers["location"]) == (301, PREFIX)
    response = browser.get(PREFIX, follow=False)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/hub/api/oauth2/authorize?")


def test_an_admin_sees_usage_per_user_day_and_model(browser, gateway, student):
    alice = student("alice")
    use_some(gateway, alice)
    use_some(gateway, alice, model="<script>alert(1)</script>")  # a student-made model id
    browser.log_in("teacher")
    page = browser.get(PREFIX)
    assert page.status_code == 200, page.text
    assert "AI usage, last 30 days" in page.text and "Signed in as teacher" in page.text
    assert alice.name in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert page.headers["cache-control"] == "no-store"
    # The same page through the proxy's prefix is the only one; the root has no admin page.
    assert httpx.get(f"{gateway.url}/").status_code == 404


def test_the_csv_exports(browser, gateway, student):
    alice = student("alice")
    use_some(gateway, alice)
    use_some(gateway, alice, model="=HYPERLINK(\"http://evil\")")
    browser.log_in("teacher")
    raw = browser.get(PREFIX + "usage.csv")
    assert raw.headers["content-type"].startswith("text/csv")
    assert "attachment" in raw.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(raw.text)))
    mine = [r for r in rows if r["username"] == alice.name]
    assert [(r["model"], r["status"], r["total_tokens"]) for r in mine] == [
        ("echo-1", "ok", "7"), ("'=HYPERLINK(\"http://evil\")", "error", "0")]  # no formula for spreadsheets
    assert list(rows[0]) == ["id", "username", "provider", "model", "endpoint", "stream", "status", "http_status",
                             "prompt_tokens", "completion_tokens", "total_tokens", "estimated", "latency_ms",
                             "ttft_ms", "started_at", "finished_at"]
    per_day = list(csv.DictReader(io.StringIO(browser.get(PREFIX + "usage.csv?by=day&days=7").text)))
    [echo] = [r for r in per_day if r["username"] == alice.name and r["model"] == "echo-1"]
    assert (echo["requests"], echo["total_tokens"]) == ("1", "7")


def test_the_budget_form_sets_a_users_budget(browser, gateway, student, database):
    alice = student("alice")
    browser.log_in("teacher")
    page = browser.get(PREFIX)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)[1]

    forged = browser.post(PREFIX + "budgets", {"username": alice.name, "daily_tokens": "1"})
    assert forged.status_code == 403  # no XSRF token: refused
    assert database.query("SELECT * FROM ai_budget_overrides WHERE username = %s", alice.name) == []

    done = browser.post(PREFIX + "budgets", {"username": alice.name, "daily_tokens": "3", "_xsrf": xsrf})
    assert (done.status_code, done.headers["location"]) == (303, PREFIX)
    assert database.query("SELECT daily_tokens FROM ai_budget_overrides WHERE username = %s", alice.name) == [(3,)]
    assert use_some(gateway, alice).status_code == 200
    refused = use_some(gateway, alice)  # at once: no restart, no cache
    assert refused.status_code == 429 and "daily AI budget of 3 tokens used" in refused.text
    assert f"{alice.name}</td><td>3 tokens" in browser.get(PREFIX).text

    bad = browser.post(PREFIX + "budgets", {"username": alice.name, "daily_tokens": "lots", "_xsrf": xsrf})
    assert bad.status_code == 400
    cleared = browser.post(PREFIX + "budgets", {"username": alice.name, "daily_tokens": "", "_xsrf": xsrf})
    assert cleared.status_code == 303
    assert database.query("SELECT * FROM ai_budget_overrides WHERE username = %s", alice.name) == []
    assert use_some(gateway, alice).status_code == 200


def test_a_student_is_refused_the_report(browser, hub, student):
    bob = student("bob")
    browser.log_in(bob.name)
    for path in (PREFIX, PREFIX + "usage.csv"):
        response = browser.get(path)
        assert response.status_code == 403
        assert "only hub admins" in response.text
    assert browser.post(PREFIX + "budgets", {"username": bob.name, "daily_tokens": "0"}).status_code == 403


def test_tokens_work_for_scripts(gateway, hub, student):
    """An admin's API token (with the gateway's scope) fetches the CSV without a browser."""
    hub.create_user("teacher")
    admin_token = hub.token("teacher", [SCOPE])
    response = httpx.get(f"{gateway.url}{PREFIX}usage.csv", headers={"Authorization": f"token {admin_token}"})
    assert response.status_code == 200 and response.text.startswith("id,username,")
    student_token = student().token
    response = httpx.get(f"{gateway.url}{PREFIX}usage.csv", headers={"Authorization": f"token {student_token}"})
    assert response.status_code == 403


class PageParts(HTMLParser):
    """The page's links to other files, and its chart's days: data, tooltip, bar height."""

    def __init__(self, text: str):
        super().__init__()
        self.links: list[str] = []
        self.days: list[dict] = []
        self.in_title = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[name] for name in ("src", "href") if name in attrs]
        if tag == "g" and attrs.get("class") == "day":
            self.days.append({"day": attrs["data-day"], "tokens": int(attrs["data-tokens"]), "title": ""})
        elif tag == "title" and self.days:
            self.in_title = True
        elif tag == "rect" and attrs.get("class") == "bar":
            self.days[-1]["height"] = float(attrs["height"])

    def handle_endtag(self, tag):
        self.in_title = self.in_title and tag != "title"

    def handle_data(self, data):
        if self.in_title:
            self.days[-1]["title"] += data


def test_the_page_wears_the_hubs_template_and_styles(browser, hub):
    browser.log_in("teacher")
    page = browser.get(PREFIX)
    assert page.status_code == 200, page.text
    # The hub's page.html: its navbar, logo, login widget; NativeAuthenticator's links.
    for marker in ('id="jupyterhub-logo"', 'class="navbar navbar-expand-sm', 'id="login_widget"',
                   'href="/hub/home"', 'href="/hub/logout"', 'href="/hub/authorize"'):
        assert marker in page.text, marker
    # The hub's stylesheet, by the very URL (version hash included) the hub's pages use.
    ours = re.search(r'href="(/hub/static/css/style\.min\.css\?v=\w+)"', page.text)[1]
    assert f'href="{ours}"' in browser.get("/hub/home").text
    links = PageParts(page.text).links
    # Every file comes from the hub or the gateway, on the page's own origin: nothing
    # from a CDN, so the page works offline.
    assert not [link for link in links if re.match(r"[a-z][a-z0-9+.-]*:|//", link, re.IGNORECASE)]
    files = [link for link in links if link.startswith("/hub/static/") or link == "/hub/logo"]
    assert len(files) >= 5
    for link in files:
        assert browser.get(link).status_code == 200, link


def test_the_chart_has_one_bar_per_day_as_high_as_its_tokens(browser, database):
    """Known ledger rows on past days (no other test writes any): one bar per day, its
    height in proportion to the day's tokens, a student's markup name escaped."""
    student = f"chart-{uuid.uuid4().hex[:8]}"
    markup = f'<script>alert("{student}")</script>'
    for name, days_ago, tokens in ((student, 1, 200), (student, 1, 100), (student, 3, 100), (markup, 3, 50)):
        database.query("INSERT INTO ai_usage (username, provider, model, endpoint, total_tokens, status,"
                       " started_at, instance_id) VALUES (%s, 'deepseek', 'echo-1', 'chat/completions', %s,"
                       " 'ok', now() - %s * interval '1 day', 0)", name, tokens, days_ago)
    browser.log_in("teacher")
    page = browser.get(PREFIX + "?days=7").text
    days = PageParts(page).days
    today = date.fromisoformat(database.query("SELECT (now() AT TIME ZONE 'UTC')::date::text")[0][0])
    assert [d["day"] for d in days] == [(today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    tokens = {d["day"]: d["tokens"] for d in days}
    past = {(today - timedelta(days=n)).isoformat(): expected for n, expected in
            ((6, 0), (5, 0), (4, 0), (3, 150), (2, 0), (1, 300))}
    assert {day: tokens[day] for day in past} == past
    peak = max(tokens.values())
    full = chart.PLOT_BOTTOM - chart.PLOT_TOP
    for d in days:
        assert d["height"] == pytest.approx(d["tokens"] / peak * full, abs=0.01), d
    assert days[3]["height"] == pytest.approx(days[5]["height"] / 2, abs=0.01)
    # The tooltip names the day's heaviest users; the markup one as text, never as a tag.
    assert days[3]["title"] == f"{days[3]['day']}: 150 tokens ({student} 100, {markup} 50)"
    assert markup not in page
    assert f"{student} 100, &lt;script&gt;alert(&#34;{student}&#34;)&lt;/script&gt; 50)</title>" in page
    assert f"<td>&lt;script&gt;alert(&#34;{student}&#34;)&lt;/script&gt;</td>" in page  # and in the tables


def test_an_admins_markup_name_stays_text_in_the_navbar_and_the_pages_script(browser):
    browser.log_in(MARKUP_ADMIN)
    page = browser.get(PREFIX)
    assert page.status_code == 200, page.text
    assert MARKUP_ADMIN not in page.text
    assert '<span class="me-1">&lt;script&gt;alert(&#34;admin&#34;)</span>' in page.text  # the login widget
    assert 'user: "\\u003cscript\\u003ealert(\\"admin\\")"' in page.text  # window.jhdata, still valid JSON


def test_the_chart_of_an_idle_window_is_flat():
    idle = chart.tokens_per_day([], date(2026, 2, 27), date(2026, 3, 2))
    assert [(bar.day.isoformat(), bar.tokens, bar.height) for bar in idle.bars] == [
        ("2026-02-27", 0, 0.0), ("2026-02-28", 0, 0.0), ("2026-03-01", 0, 0.0), ("2026-03-02", 0, 0.0)]
    assert idle.peak == 0 and idle.bars[-1].left + idle.bars[-1].slot == pytest.approx(chart.WIDTH)

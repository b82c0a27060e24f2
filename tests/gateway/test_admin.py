"""The admins' page: hub login (OAuth), admins only, usage tables, CSV, the budget form."""

import csv
import io
import re

import httpx
import pytest

from .conftest import SCOPE

PREFIX = "/services/ai-gateway/"


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

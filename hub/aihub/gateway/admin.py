"""The admins' page at /services/ai-gateway/: usage, budgets, CSV export.

Browsers arrive through the hub's proxy and log in with the hub (HubOAuth: the usual
JupyterHub service login, no password here). Only hub admins get past prepare():
the user model's `admin` flag decides; anyone else gets 403. The page is plain HTML,
every value escaped (tornado templates). The budget form is a POST with the hub's
XSRF token.

    GET  /services/ai-gateway/                  usage of the last `days` (default 30)
    GET  /services/ai-gateway/usage.csv         raw ledger rows of the last `days`
    GET  /services/ai-gateway/usage.csv?by=day  totals per day, user, provider and model
    POST /services/ai-gateway/budgets           set (or clear) a user's daily budget
"""

from __future__ import annotations

import csv
import io
import logging
from typing import TYPE_CHECKING, Optional

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated, check_scopes
from tornado.template import Template
from tornado.web import HTTPError, RequestHandler

from . import reports
from .config import ACCESS_SCOPE, SERVICE_PREFIX

if TYPE_CHECKING:
    from .app import Gateway

log = logging.getLogger("aihub.gateway")

PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>AI usage</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child, .text { text-align: left; }
</style></head>
<body>
<h1>AI usage, last {{ days }} days (UTC)</h1>
<p>Signed in as {{ admin }}. Default daily budget: {{ budget_text(default_budget) }} per user.
Download: <a href="usage.csv?days={{ days }}">every request (CSV)</a>,
<a href="usage.csv?by=day&amp;days={{ days }}">totals per day (CSV)</a>.
Show <a href="?days=1">today</a>, <a href="?days=7">7 days</a>, <a href="?days=30">30 days</a>.</p>

<h2>Per user</h2>
<table><tr><th>user</th><th>requests</th><th>refused</th><th>failed</th><th>tokens</th>
<th>today</th><th>daily budget</th></tr>
{% for row in users %}<tr><td>{{ row["username"] }}</td><td>{{ row["requests"] }}</td>
<td>{{ row["rejected"] }}</td><td>{{ row["failed"] }}</td><td>{{ row["total_tokens"] }}</td>
<td>{{ row["today"] }}</td><td>{{ budget_text(budget_of(row["username"])) }}</td></tr>
{% end %}</table>

<h2>Budgets</h2>
<form method="post" action="budgets">
<input type="hidden" name="_xsrf" value="{{ xsrf }}">
<label>user <input name="username" required maxlength="255"></label>
<label>daily tokens <input name="daily_tokens" inputmode="numeric" pattern="[0-9]*" size="10"></label>
<button type="submit">Set</button>
(empty: back to the default; 0: no limit; applies to the user's next request)
</form>
<table><tr><th>user</th><th>daily budget</th><th>changed (UTC)</th></tr>
{% for row in overrides %}<tr><td>{{ row["username"] }}</td><td>{{ budget_text(row["daily_tokens"]) }}</td>
<td>{{ row["updated_at"].strftime("%Y-%m-%d %H:%M") }}</td></tr>
{% end %}</table>

<h2>Per user and day</h2>
<table><tr><th>day</th><th class="text">user</th><th>requests</th><th>refused</th><th>failed</th>
<th>prompt</th><th>completion</th><th>tokens</th></tr>
{% for row in user_days %}<tr><td>{{ row["day"] }}</td><td class="text">{{ row["username"] }}</td>
<td>{{ row["requests"] }}</td><td>{{ row["rejected"] }}</td><td>{{ row["failed"] }}</td>
<td>{{ row["prompt_tokens"] }}</td><td>{{ row["completion_tokens"] }}</td><td>{{ row["total_tokens"] }}</td></tr>
{% end %}</table>

<h2>Per model and day</h2>
<table><tr><th>day</th><th class="text">provider</th><th class="text">model</th><th>users</th>
<th>requests</th><th>prompt</th><th>completion</th><th>tokens</th></tr>
{% for row in model_days %}<tr><td>{{ row["day"] }}</td><td class="text">{{ row["provider"] }}</td>
<td class="text">{{ row["model"] }}</td><td>{{ row["users"] }}</td><td>{{ row["requests"] }}</td>
<td>{{ row["prompt_tokens"] }}</td><td>{{ row["completion_tokens"] }}</td><td>{{ row["total_tokens"] }}</td></tr>
{% end %}</table>
</body></html>
""", autoescape="xhtml_escape")

MAX_BUDGET = 10**12


def budget_text(tokens: Optional[int]) -> str:
    return "no limit" if not tokens else f"{tokens} tokens"


def spreadsheet_safe(value: object) -> object:
    """A cell a spreadsheet will not run as a formula (model ids come from students)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class AdminHandler(HubOAuthenticated, RequestHandler):
    """Logged in with the hub, an admin, and holding the gateway's access scope."""

    def initialize(self, gateway: "Gateway") -> None:
        self.gateway = gateway
        self.hub_auth = gateway.hub_auth

    async def prepare(self) -> None:
        # The async form of HubAuthenticated.get_current_user (which blocks a thread).
        model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            if self.request.method in ("GET", "HEAD"):
                return self.redirect(self.get_login_url())
            raise HTTPError(403, "log in with the hub first")
        allowed = model.get("admin") and check_scopes({ACCESS_SCOPE}, set(model.get("scopes") or ()))
        if not allowed:
            log.info("admin page refused to %s (not a hub admin)", model.get("name"))
            raise HTTPError(403, "only hub admins can see AI usage")
        self.current_user = model

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        reason = error.log_message if isinstance(error, HTTPError) and error.log_message else self._reason
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {reason}\n")

    def days(self) -> int:
        text = self.get_argument("days", "30")
        return reports.clamp_days(int(text) if text.isdigit() else None)


class UsagePage(AdminHandler):
    async def get(self) -> None:
        days = self.days()
        data = await reports.page(self.gateway.pool, days)
        overrides = {row["username"]: row["daily_tokens"] for row in data["overrides"]}
        default = self.gateway.config.daily_token_budget
        self.set_header("Cache-Control", "no-store")
        self.finish(PAGE.generate(
            days=days, admin=self.current_user["name"], default_budget=default,
            budget_text=budget_text, budget_of=lambda user: overrides.get(user, default),
            xsrf=self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token,
            **data,
        ))


class UsageCSV(AdminHandler):
    async def get(self) -> None:
        days = self.days()
        by_day = self.get_argument("by", "") == "day"
        name = f"ai-usage-{'per-day' if by_day else 'requests'}-{days}d.csv"
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.set_header("Cache-Control", "no-store")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        rows = reports.csv_rows(self.gateway.pool, days, by_day)
        try:
            count = 0
            async for row in rows:
                writer.writerow([spreadsheet_safe(value) for value in row])
                count += 1
                if count % 1000 == 0:  # stream a big export instead of holding it
                    self.write(buffer.getvalue())
                    buffer.seek(0)
                    buffer.truncate()
                    await self.flush()
        finally:
            await rows.aclose()
        self.finish(buffer.getvalue())


class Budgets(AdminHandler):
    async def post(self) -> None:
        self.check_xsrf_cookie()
        username = self.get_body_argument("username", "").strip()
        text = self.get_body_argument("daily_tokens", "").strip()
        if not username or len(username) > 255 or any(ord(c) < 32 for c in username):
            raise HTTPError(400, "name a user")
        if text and (not text.isdigit() or int(text) > MAX_BUDGET):
            raise HTTPError(400, "daily tokens must be a whole number (0 = no limit), or empty for the default")
        tokens = int(text) if text else None
        await reports.set_override(self.gateway.pool, username, tokens)
        log.info("%s set the daily AI budget of %s to %s", self.current_user["name"], username,
                 "the default" if tokens is None else tokens)
        self.redirect(SERVICE_PREFIX, status=303)


class OAuthCallback(HubOAuthCallbackHandler):
    def initialize(self, gateway: "Gateway") -> None:
        self.hub_auth = gateway.hub_auth

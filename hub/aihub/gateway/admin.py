"""The admins' page at /services/ai-gateway/: usage, budgets, CSV export.

Browsers arrive through the hub's proxy and log in with the hub (HubOAuth: the usual
JupyterHub service login, no password here). Only hub admins get past prepare():
the user model's `admin` flag decides; anyone else gets 403. The page wears the hub's
own template and styles (hubpage.py), every value escaped, and draws tokens per day as
an inline SVG chart (chart.py): no script of its own, nothing from outside the hub. The
budget form is a POST with the gateway's XSRF token.

    GET  /services/ai-gateway/                  usage of the last `days` (default 30)
    GET  /services/ai-gateway/usage.csv         raw ledger rows of the last `days`
    GET  /services/ai-gateway/usage.csv?by=day  totals per day, user, provider and model
    POST /services/ai-gateway/budgets           set (or clear) a user's daily budget
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Optional

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated, check_scopes
from tornado.web import HTTPError, RequestHandler

from . import chart, hubpage, reports
from .config import ACCESS_SCOPE, SERVICE_PREFIX

if TYPE_CHECKING:
    from .app import Gateway

log = logging.getLogger("aihub.gateway")

USAGE_PAGE = """{% extends "page.html" %}
{% block title %}AI usage{% endblock %}
{% block stylesheet %}{{ super() }}
<style>
.usage-chart { width: 100%; height: auto; }
.usage-chart .bar { fill: var(--bs-primary); }
.usage-chart .day:hover .bar { fill: var(--bs-link-hover-color); }
.usage-chart .slot { fill: transparent; }
.usage-chart .baseline { stroke: var(--bs-border-color); }
.usage-chart .peak { stroke: var(--bs-border-color); stroke-dasharray: 4 4; }
.usage-chart text { fill: var(--bs-secondary-color); font-size: 12px; }
</style>
{% endblock %}
{% block main %}
<div class="container" id="ai-usage">
<h1 class="h2">AI usage, last {{ days }} days (UTC)</h1>
<p>Signed in as {{ admin }}. Default daily budget: {{ budget_text(default_budget) }} per user.
Download: <a href="usage.csv?days={{ days }}">every request (CSV)</a>,
<a href="usage.csv?by=day&amp;days={{ days }}">totals per day (CSV)</a>.
Show <a href="?days=1">today</a>, <a href="?days=7">7 days</a>, <a href="?days=30">30 days</a>.</p>

<div class="row">
<section class="col-lg-7">
<h2 class="h4">Per user</h2>
<table class="table table-sm table-striped table-hover">
<thead><tr><th>user</th><th class="text-end">requests</th><th class="text-end">refused</th>
<th class="text-end">failed</th><th class="text-end">tokens</th><th class="text-end">today</th>
<th class="text-end">daily budget</th></tr></thead>
<tbody>
{% for row in users %}<tr><td>{{ row["username"] }}</td><td class="text-end">{{ row["requests"] }}</td>
<td class="text-end">{{ row["rejected"] }}</td><td class="text-end">{{ row["failed"] }}</td>
<td class="text-end">{{ row["total_tokens"] }}</td><td class="text-end">{{ row["today"] }}</td>
<td class="text-end">{{ budget_text(budget_of(row["username"])) }}</td></tr>
{% endfor %}</tbody></table>
</section>

<section class="col-lg-5">
<h2 class="h4">Tokens per day</h2>
<svg class="usage-chart" viewBox="0 0 {{ chart.width }} {{ chart.height }}" role="img"
 aria-labelledby="usage-chart-title">
<title id="usage-chart-title">Tokens per day, {{ chart.first }} to {{ chart.last }} (UTC),
at most {{ chart.peak_text }}</title>
<text x="0" y="12">{{ chart.peak_text }} tokens</text>
<line class="peak" x1="0" y1="{{ chart.top }}" x2="{{ chart.width }}" y2="{{ chart.top }}"/>
{% for bar in chart.bars %}<g class="day" data-day="{{ bar.day }}" data-tokens="{{ bar.tokens }}">
<title>{{ bar.title }}</title>
<rect class="slot" x="{{ bar.left }}" y="{{ chart.top }}" width="{{ bar.slot }}"
 height="{{ chart.baseline - chart.top }}"/>
<rect class="bar" x="{{ bar.x }}" y="{{ bar.y }}" width="{{ bar.width }}" height="{{ bar.height }}"/></g>
{% endfor %}
<line class="baseline" x1="0" y1="{{ chart.baseline }}" x2="{{ chart.width }}" y2="{{ chart.baseline }}"/>
<text x="0" y="{{ chart.height - 2 }}">{{ chart.first }}</text>
<text x="{{ chart.width }}" y="{{ chart.height - 2 }}" text-anchor="end">{{ chart.last }}</text>
</svg>
</section>
</div>

<h2 class="h4">Budgets</h2>
<form method="post" action="budgets" class="row row-cols-md-auto g-2 align-items-center mb-1">
<input type="hidden" name="_xsrf" value="{{ xsrf }}">
<div class="col-12"><label class="form-label mb-0">user
<input class="form-control form-control-sm" name="username" required maxlength="255"></label></div>
<div class="col-12"><label class="form-label mb-0">daily tokens
<input class="form-control form-control-sm" name="daily_tokens" inputmode="numeric" pattern="[0-9]*"
 size="10"></label></div>
<div class="col-12"><button type="submit" class="btn btn-sm btn-jupyter">Set</button></div>
</form>
<p class="form-text">Empty: back to the default; 0: no limit; applies to the user's next request.</p>
<table class="table table-sm table-striped w-auto">
<thead><tr><th>user</th><th>daily budget</th><th>changed (UTC)</th></tr></thead>
<tbody>
{% for row in overrides %}<tr><td>{{ row["username"] }}</td><td>{{ budget_text(row["daily_tokens"]) }}</td>
<td>{{ row["updated_at"].strftime("%Y-%m-%d %H:%M") }}</td></tr>
{% endfor %}</tbody></table>

<h2 class="h4">Per user and day</h2>
<table class="table table-sm table-striped table-hover">
<thead><tr><th>day</th><th>user</th><th class="text-end">requests</th><th class="text-end">refused</th>
<th class="text-end">failed</th><th class="text-end">prompt</th><th class="text-end">completion</th>
<th class="text-end">tokens</th></tr></thead>
<tbody>
{% for row in user_days %}<tr><td>{{ row["day"] }}</td><td>{{ row["username"] }}</td>
<td class="text-end">{{ row["requests"] }}</td><td class="text-end">{{ row["rejected"] }}</td>
<td class="text-end">{{ row["failed"] }}</td><td class="text-end">{{ row["prompt_tokens"] }}</td>
<td class="text-end">{{ row["completion_tokens"] }}</td><td class="text-end">{{ row["total_tokens"] }}</td></tr>
{% endfor %}</tbody></table>

<h2 class="h4">Per model and day</h2>
<table class="table table-sm table-striped table-hover">
<thead><tr><th>day</th><th>provider</th><th>model</th><th class="text-end">users</th>
<th class="text-end">requests</th><th class="text-end">prompt</th><th class="text-end">completion</th>
<th class="text-end">tokens</th></tr></thead>
<tbody>
{% for row in model_days %}<tr><td>{{ row["day"] }}</td><td>{{ row["provider"] }}</td>
<td>{{ row["model"] }}</td><td class="text-end">{{ row["users"] }}</td>
<td class="text-end">{{ row["requests"] }}</td><td class="text-end">{{ row["prompt_tokens"] }}</td>
<td class="text-end">{{ row["completion_tokens"] }}</td><td class="text-end">{{ row["total_tokens"] }}</td></tr>
{% endfor %}</tbody></table>
</div>
{% endblock %}
"""
PAGES = hubpage.hub_environment({"ai-usage.html": USAGE_PAGE})

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
        first_day = data["today"] - timedelta(days=days - 1)
        xsrf = self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token
        self.set_header("Cache-Control", "no-store")
        self.finish(PAGES.get_template("ai-usage.html").render(
            **hubpage.hub_namespace(self.hub_auth, self.current_user, xsrf),
            days=days, admin=self.current_user["name"], default_budget=default,
            budget_text=budget_text, budget_of=lambda user: overrides.get(user, default),
            chart=chart.tokens_per_day(data["user_days"], first_day, data["today"]),
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

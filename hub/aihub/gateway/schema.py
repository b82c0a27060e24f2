"""The gateway's tables in the hub's database, as a numbered list of migrations.

`ai_schema_version` records which migrations ran. At each start the gateway applies
the missing ones, in order, in one transaction, holding an advisory lock, so two
gateways starting at once neither apply a migration twice nor see half a schema.
Append new migrations; never edit one that has shipped.

Tables (all prefixed ai_, next to the hub's own):

    ai_usage             one row per metered request (see ledger.py for its life)
    ai_budget_overrides  per-user daily token budgets, instead of AI_DAILY_TOKEN_BUDGET
    ai_usage_by_user_day, ai_usage_by_model_day   views for admins (UTC days)
"""

from __future__ import annotations

# pg_advisory_xact_lock(MIGRATION_LOCK, 0) serializes migrations across gateways.
LOCK_NAMESPACE = 0x41_49_47_57  # "AIGW"
MIGRATION_LOCK = 0

USAGE_TABLE = """
CREATE TABLE ai_usage (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username          text        NOT NULL,
    provider          text        NOT NULL,
    model             text        NOT NULL,
    endpoint          text        NOT NULL,              -- chat/completions, embeddings
    stream            boolean     NOT NULL DEFAULT false,
    prompt_tokens     integer     NOT NULL DEFAULT 0,
    completion_tokens integer     NOT NULL DEFAULT 0,
    total_tokens      integer     NOT NULL DEFAULT 0,
    estimated         boolean     NOT NULL DEFAULT false, -- no usage from the vendor
    status            text        NOT NULL DEFAULT 'started',
    http_status       smallint,                          -- what the student got
    latency_ms        integer,                           -- start to last byte
    ttft_ms           integer,                           -- start to first streamed byte
    error             text,                              -- short, scrubbed
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    instance_id       integer     NOT NULL               -- the gateway process that ran it
);
-- A user's tokens today (the budget check, every request).
CREATE INDEX ai_usage_user_started ON ai_usage (username, started_at);
-- Reports over the last days.
CREATE INDEX ai_usage_started ON ai_usage (started_at);
-- Requests still running, found at start-up and by the sweeper.
CREATE INDEX ai_usage_in_flight ON ai_usage (instance_id) WHERE status = 'started';

CREATE TABLE ai_budget_overrides (
    username     text        PRIMARY KEY,
    daily_tokens bigint      NOT NULL CHECK (daily_tokens >= 0),  -- 0 = no limit
    updated_at   timestamptz NOT NULL DEFAULT now()
);
"""

# Views for admins (README): sums per UTC day. `requests` counts calls that reached a
# vendor; `rejected` those refused by a budget or the concurrency cap; `failed` those
# that did not end well (vendor error, timeout, client gone, gateway restarted).
VIEWS = """
CREATE VIEW ai_usage_by_user_day AS
SELECT (started_at AT TIME ZONE 'UTC')::date                              AS day,
       username,
       count(*) FILTER (WHERE status NOT LIKE 'rejected%')                AS requests,
       count(*) FILTER (WHERE status LIKE 'rejected%')                    AS rejected,
       count(*) FILTER (WHERE status NOT IN ('ok', 'started')
                          AND status NOT LIKE 'rejected%')                AS failed,
       sum(prompt_tokens)::bigint                                         AS prompt_tokens,
       sum(completion_tokens)::bigint                                     AS completion_tokens,
       sum(total_tokens)::bigint                                          AS total_tokens,
       count(*) FILTER (WHERE estimated)                                  AS estimated_requests
FROM ai_usage
GROUP BY 1, 2;

CREATE VIEW ai_usage_by_model_day AS
SELECT (started_at AT TIME ZONE 'UTC')::date                              AS day,
       provider,
       model,
       count(*) FILTER (WHERE status NOT LIKE 'rejected%')                AS requests,
       count(DISTINCT username)                                           AS users,
       sum(prompt_tokens)::bigint                                         AS prompt_tokens,
       sum(completion_tokens)::bigint                                     AS completion_tokens,
       sum(total_tokens)::bigint                                          AS total_tokens,
       count(*) FILTER (WHERE estimated)                                  AS estimated_requests
FROM ai_usage
GROUP BY 1, 2, 3;
"""

# Tokens a running request holds for its answer (its cap), counted by admission and set
# back to 0 when it ends (its real usage is then in total_tokens).
RESERVATIONS = """
ALTER TABLE ai_usage ADD COLUMN reserved_tokens integer NOT NULL DEFAULT 0;
"""

# The tables that hold rows of one user (their `username`): what removing a student's
# ledger rows removes (aihub.students, aihub.rehearse).
USER_TABLES = ("ai_usage", "ai_budget_overrides")

# (version, what it does, SQL). Versions count up from 1.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "usage ledger, budget overrides, admin views", USAGE_TABLE + VIEWS),
    (2, "tokens reserved for running requests' answers", RESERVATIONS),
)

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS ai_schema_version (
    version     integer     PRIMARY KEY,
    description text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""

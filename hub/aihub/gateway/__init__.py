"""The AI gateway: vendor keys stay here, students reach the models through it.

A JupyterHub service (`ai-gateway`, http://gateway:8090) that speaks the
OpenAI-compatible API, and Ollama's own under /ollama. A student's container gets only the gateway's address and its
own JupyterHub server token; the gateway checks that token with the hub, meters every
request in PostgreSQL (table `ai_usage`), applies daily token budgets and a cap on
concurrent requests, and forwards the call to the vendor with the admin's key.

    python -m aihub.gateway        (the compose service `gateway` runs this)

One concern per module:

    config      settings + secrets -> GatewayConfig (which vendors are routable, limits)
    errors      the OpenAI-format JSON error a student sees; scrubbing of secrets
    logs        the log filter that keeps tokens and keys out of every log line
    auth        the student's token -> user name, through the hub (HubAuth)
    payloads    validating a client's JSON body; the prompt's token estimate
    metering    token usage: from the vendor's answer, else an estimate; answer caps
    sse         splitting a vendor's event stream, stripping the usage-only chunk
    upstream    the one pooled HTTP client to vendors; vendor errors -> our errors
    proxy       one request's way to the vendor and back, and the outcome it leaves
    models      GET /v1/models: every routable model, cached
    db, schema  the asyncpg pool and the versioned migrations (ai_* tables, views)
    ledger      a row per request: written at the start, completed at the end
    quotas      daily budgets (reserving each answer's cap) and per-user concurrency:
                admit() before forwarding, settle() at the end
    api         the OpenAI-compatible HTTP handlers
    ollama_api  Ollama's own API (/ollama/api/chat, ...) on api's path, NDJSON streams
    admin       the admins' page, CSV export and budget form (HubOAuth)
    reports     the admin page's queries
    app         routes (direct and under /services/ai-gateway/), start and stop
"""

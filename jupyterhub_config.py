"""JupyterHub configuration of the AI classroom bundle: what runs where, top to bottom.

Nothing to edit here: every value an admin may change comes from .env, parsed and
validated by aihub.settings (a wrong value stops the hub with one line naming it).
Secrets come from the `secrets` volume (aihub.secrets). Logic lives in the aihub
package, with its tests; this file only wires it in.
"""

from aihub import https, secrets, settings as settings_module
from aihub.auth import TEMPLATE_PATHS, BundleAuthenticator, landing_page
from aihub.database import database_url
from aihub.labels import student_container_labels
from aihub.services import (HUB_API_PORT, PROXY_PORT, hub_roles, hub_services, server_token_scopes,
                            student_networks)
from aihub.spawner import HOME_DIR, HOME_VOLUME
from aihub.swarm import spawner_class, student_image
from aihub.user_env import WITHOUT_AI, user_environment

settings = settings_module.load_or_exit()
secret = secrets.read_or_exit()
c = get_config()  # noqa: F821 (provided by JupyterHub)

# --- The hub and its proxy ----------------------------------------------------------

# People reach everything through the proxy (published as HUB_PORT).
c.JupyterHub.bind_url = f"http://:{PROXY_PORT}"
# Student servers call the hub's API by its service name on the users network.
c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{HUB_API_PORT}"
c.JupyterHub.hub_connect_url = f"http://hub:{HUB_API_PORT}"
c.JupyterHub.cookie_secret = bytes.fromhex(secret["HUB_COOKIE_SECRET"])
# Behind Caddy (HTTPS_MODE, docker-compose.https.yml) the hub knows the address students
# open: it sends them to https:// and every cookie, its own and students' servers', is
# Secure (its proxy reports plain HTTP, the hop from Caddy).
c.JupyterHub.public_url = https.public_url(settings)
c.JupyterHub.tornado_settings = {"cookie_options": https.cookie_options(settings)}
c.ConfigurableHTTPProxy.auth_token = secret["PROXY_AUTH_TOKEN"]
# Accounts, servers and tokens live in PostgreSQL, where admins can query them; a
# restarted database is reconnected to, not an error.
c.JupyterHub.db_url = database_url(settings, secret["POSTGRES_PASSWORD"])
c.JupyterHub.db_kwargs = {"pool_pre_ping": True}
# Students' servers outlive a hub restart, crash or reconfiguration: their kernels keep
# running and JupyterLab reconnects. `docker compose down`/`stop` stop them (the reaper).
c.JupyterHub.cleanup_servers = False

# --- Accounts ----------------------------------------------------------------------

# Students sign up on the hub's page; an admin approves them at /hub/authorize.
c.JupyterHub.authenticator_class = BundleAuthenticator
c.JupyterHub.template_paths = list(TEMPLATE_PATHS)
c.NativeAuthenticator.open_signup = settings.auth_mode == "open"
c.NativeAuthenticator.minimum_password_length = 8
c.Authenticator.admin_users = {settings.admin_user}
c.BundleAuthenticator.initial_admin_password = secret["ADMIN_PASSWORD"]
# NativeAuthenticator decides who is approved; the hub admits every approved account.
# Names an admin adds in the admin panel are approved when they sign up (aihub.auth).
c.Authenticator.allow_all = True
# Admins land on the hub's home page; students go straight to their server.
c.JupyterHub.default_url = landing_page

# --- Student servers ---------------------------------------------------------------

# One container per student (or, SPAWNER_MODE=swarm, one Swarm service on a worker),
# from the image docker compose builds from singleuser/ (on a Swarm, pulled from
# IMAGE_REGISTRY); a class's servers start in turns, SPAWN_CONCURRENCY at once, each
# student shown their place in line.
c.JupyterHub.spawner_class = spawner_class(settings)
c.ClassroomSpawner.start_concurrency = settings.spawn_concurrency
c.DockerSpawner.image = student_image(settings)
# docker compose builds the image; pulling could only fetch someone else's.
c.DockerSpawner.pull_policy = "never"
# Containers, volumes and the network carry the stack's name (as in docker-compose.yml).
c.DockerSpawner.prefix = settings.compose_project_name
c.DockerSpawner.network_name = f"{settings.compose_project_name}-users"
c.DockerSpawner.use_internal_ip = True
# Ollama's network too, only where no gateway stands between students and Ollama.
c.ClassroomSpawner.extra_networks = student_networks(settings)
# Labelled as this stack's student servers: the reaper and the class tools find them so.
c.DockerSpawner.extra_create_kwargs = {"labels": student_container_labels(settings.compose_project_name)}
# Containers are disposable; the student's home folder is a named volume that stays.
c.DockerSpawner.remove = True
c.DockerSpawner.volumes = {HOME_VOLUME: HOME_DIR}
c.DockerSpawner.notebook_dir = HOME_DIR
c.DockerSpawner.mem_limit = settings.user_mem_limit
c.DockerSpawner.cpu_limit = settings.user_cpu_limit
# Nothing in a student's container may gain privileges (no setuid escalation).
c.DockerSpawner.extra_host_config = {"security_opt": ["no-new-privileges"]}
c.Spawner.default_url = "/lab"
# On a Swarm: each worker pulls the image itself; the hub reaches a server by its service
# name through DNS round-robin (no IPVS needed in the nodes' kernels); a student's home
# stays on one worker node or lives on NFS (HOME_STORAGE). A service's containers carry
# the same labels as a compose stack's. (no-new-privileges has no service option on
# Engine 20.10: the students' image runs as jovyan.)
c.SwarmClassroomSpawner.pull_policy = "skip"
c.SwarmClassroomSpawner.extra_endpoint_spec = {"mode": "dnsrr"}
c.SwarmClassroomSpawner.extra_container_spec = {"labels": student_container_labels(settings.compose_project_name)}
c.SwarmClassroomSpawner.home_storage = settings.home_storage
c.SwarmClassroomSpawner.nfs_server = settings.home_nfs_server
c.SwarmClassroomSpawner.nfs_path = settings.home_nfs_path
# AI models: base URLs, keys (or the server's own token, with the gateway), proxies.
c.DockerSpawner.environment = user_environment(settings)
# ...or none of that, for a server started with the option {"ai": false}.
c.ClassroomSpawner.environment_without_ai = WITHOUT_AI
c.Spawner.server_token_scopes = server_token_scopes(settings)
# A first start on a cold machine can be slow; give up only after two minutes.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

# --- Services the hub runs ---------------------------------------------------------

# The idle culler stops servers idle for CULL_IDLE_TIMEOUT; the AI gateway holds the
# vendor keys, meters every request and enforces budgets (AI_KEY_MODE=gateway).
c.JupyterHub.services = hub_services(settings, secret)
c.JupyterHub.load_roles = hub_roles(settings)

"""How a stack's student containers are labelled, so the tools that act on them (the
reaper, the class tools, the rehearsal) find exactly those and nothing else."""

# docker compose's own labels, on the stack's services' containers.
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
PROJECT_LABEL = "org.aihub.project"
ROLE_LABEL = "org.aihub.role"
STUDENT_SERVER = "student-server"


def student_container_labels(project: str) -> dict[str, str]:
    """Labels of `project`'s student containers. The image inherits docker compose's
    labels from its build, which would make compose count students' containers as its
    own `singleuser` service; blank values override those."""
    return {
        COMPOSE_PROJECT: "",
        COMPOSE_SERVICE: "",
        PROJECT_LABEL: project,
        ROLE_LABEL: STUDENT_SERVER,
    }


def student_filter(project: str) -> dict[str, list[str]]:
    """A Docker API filter for `project`'s student containers."""
    return {"label": [f"{PROJECT_LABEL}={project}", f"{ROLE_LABEL}={STUDENT_SERVER}"]}


def compose_service_filter(project: str, service: str) -> dict[str, list[str]]:
    """A Docker API filter for the containers of `project`'s compose service `service`."""
    return {"label": [f"{COMPOSE_PROJECT}={project}", f"{COMPOSE_SERVICE}={service}"]}

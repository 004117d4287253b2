"""Serve one integration under a real HTTP server: what `make serve` runs.

    python -m integrations.serve --framework flask --host 127.0.0.1 --port 8000

Flask and Django run under gunicorn with threads, FastAPI under uvicorn. The
bearer token comes from SCIM_TOKEN; without it, a random one is made and
printed with a curl line to try the server at once. SCIM_TOKENS, when set,
gives the tokens of several tenants instead.
"""

import argparse
import os
import secrets
import shlex
import sys

from shared import auth

SERVERS = {
    "flask": "integrations.flask_app.wsgi:app",
    "django": "integrations.django_app.wsgi:application",
    "fastapi": "integrations.fastapi_app.asgi:app",
}


def server_command(
    framework: str,
    host: str,
    port: int,
    workers: int,
    target: str | None = None,
    access_log: bool = True,
) -> list[str]:
    """The command line that serves `framework` (or another app, `target`).

    With `access_log`, one line per request goes to stdout: handy while trying
    the server, and a fifth of a simple read's cost, which a reverse proxy that
    logs already pays in production.
    """
    target = target or SERVERS[framework]
    if framework == "fastapi":
        # uvicorn picks uvloop and httptools, both installed, over pure Python.
        return [
            sys.executable, "-m", "uvicorn", target,
            "--host", host, "--port", str(port), "--workers", str(workers),
            "--no-server-header", *([] if access_log else ["--no-access-log"]),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "gunicorn", target,
        "--bind", f"{host}:{port}", "--workers", str(workers),
        "--worker-class", "gthread", "--threads", "8",
        *(["--access-logfile", "-"] if access_log else []),
    ]  # fmt: skip


def django_models() -> bool:
    """Whether Django serves from models: the ORM recipe's, or auth.User."""
    return "1" in (
        os.environ.get("SCIM_DJANGO_ORM"),
        os.environ.get("SCIM_DJANGO_AUTH"),
    )


def prepare_database(framework: str) -> None:
    """Create the tables and load the demo data once, before any worker starts.

    Workers then find both in place, instead of racing to create them. The
    Django ORM recipe (SCIM_DJANGO_ORM=1) and the auth.User one
    (SCIM_DJANGO_AUTH=1) get their migrations applied.
    """
    from shared import demo
    from shared import storage

    if framework == "django" and django_models():
        import django
        from django.core.management import call_command
        from django.db import connections

        os.environ.setdefault(
            "DJANGO_SETTINGS_MODULE", "integrations.django_app.settings"
        )
        django.setup()  # its AppConfig switches the storage to the ORM
        call_command("migrate", verbosity=0)
        demo.load_if_enabled()
        connections.close_all()
    else:
        demo.load_if_enabled()  # opening the SQL backend creates its tables
        storage.backend().engine.dispose()
    os.environ["SCIM_DEMO_DATA"] = "0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=SERVERS, default="flask")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one line per request on stdout (default: on)",
    )
    args = parser.parse_args()

    database_url = os.environ.get("SCIM_DATABASE_URL")
    if args.workers > 1 and not database_url:
        parser.error(
            "the in-memory storage lives in one process: use --workers 1, "
            "or set SCIM_DATABASE_URL to a shared database"
        )
    if database_url or (args.framework == "django" and django_models()):
        prepare_database(args.framework)
    url = f"http://{args.host}:{args.port}/scim/v2"
    if os.environ.get("SCIM_TOKENS"):  # several tenants, each with its tokens
        try:
            tenants = sorted(auth.tokens_from_environment().tenants)
        except ValueError as exc:
            parser.error(f"SCIM_TOKENS: {exc}")
        print(f"Serving the {args.framework} integration at {url}/ ", end="")
        print(f"for the tenants of SCIM_TOKENS: {', '.join(tenants)}\n")
    else:
        token = os.environ.get("SCIM_TOKEN")
        if not token:
            token = secrets.token_urlsafe(32)
            os.environ["SCIM_TOKEN"] = token
            print(f"SCIM_TOKEN was not set; this run's token is:\n\n    {token}\n")
        print(f"Serving the {args.framework} integration at {url}/ ; try:\n")
        print(f"    curl -H 'Authorization: Bearer {shlex.quote(token)}' {url}/Users\n")
    sys.stdout.flush()
    command = server_command(
        args.framework, args.host, args.port, args.workers, access_log=args.access_log
    )
    os.execv(command[0], command)  # noqa: S606 - the server replaces this process


if __name__ == "__main__":
    main()

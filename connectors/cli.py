"""The `connectors` command: `serve` the API locally, `invoke` a function with an event, `list` connectors,
`tasks` in the table."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="connectors", description="Flyte connector service tools")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the whole API on 127.0.0.1 with an embedded DynamoDB")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    serve.add_argument("--dynamodb-port", type=int, default=int(os.environ.get("DYNAMODB_PORT", "8000")))

    invoke = commands.add_parser("invoke", help="run an event through a function's handler, as `sam local invoke`")
    invoke.add_argument("function", help="the function's logical id in template.yaml, e.g. CreateTaskFunction")
    invoke.add_argument("event", help="an API Gateway event file, e.g. events/create_task.json")
    invoke.add_argument("--template", default="template.yaml")

    commands.add_parser("list", help="list the connectors this deployment serves (built-ins and CONNECTOR_MODULES)")

    relay = commands.add_parser(
        "relay", help="serve gRPC for a stock Flyte executor, forwarding each call SigV4-signed to the API"
    )
    relay.add_argument(
        "--endpoint", required=True, help="the API URL, e.g. https://<api-id>.execute-api.<region>.amazonaws.com"
    )
    relay.add_argument("--listen", default="0.0.0.0:8000", help="host:port the executor dials (default 0.0.0.0:8000)")
    relay.add_argument("--region", help="region to sign for (default: from the endpoint's host, else AWS_REGION)")
    relay.add_argument(
        "--unsigned", action="store_true", help="send requests unsigned (a local endpoint such as `make serve`)"
    )
    relay.add_argument(
        "--max-attempts",
        type=int,
        default=4,
        metavar="N",
        help="send a call at most N times when the API "
        "fails in passing (unavailable, 429, a 5xx without a Connect code), within its deadline; 1: no "
        "retries (default 4)",
    )
    relay.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: not served)",
    )

    tasks = commands.add_parser(
        "tasks", help="what the task table says: `tasks list`, `tasks show HANDLE` (see docs/tasks-command.md)"
    )
    tasks_commands = tasks.add_subparsers(dest="tasks_command", required=True)
    tasks_list = tasks_commands.add_parser(
        "list", help="tasks in the table, newest first (a Scan; --active reads the index)"
    )
    tasks_list.add_argument(
        "--active", action="store_true", help="only tasks not ended (the active-by-heartbeat index)"
    )
    tasks_list.add_argument("--run", help="only the tasks of this execution run name (a filtered Scan of the table)")
    tasks_list.add_argument("--limit", type=int, help="show at most N tasks (the newest)")
    tasks_list.add_argument(
        "--handles",
        action="store_true",
        help="also print each task's handle (lets its holder call GetTask and DeleteTask)",
    )
    tasks_show = tasks_commands.add_parser("show", help="one task, by the handle CreateTask answered (resource_meta)")
    tasks_show.add_argument("handle", help="the task's handle, t1...")
    for tasks_parser in (tasks_list, tasks_show):
        tasks_parser.add_argument("--json", action="store_true", help="print JSON instead of text")
        tasks_parser.add_argument(
            "--table", help="the table (default: TASKS_TABLE; connector-tasks for a local endpoint)"
        )

    args = parser.parse_args(argv)
    if args.command == "tasks":
        from .dev.tasks import run as tasks_run

        return tasks_run(args)
    if args.command == "relay":
        from .relay import main as relay_main

        return relay_main(
            args.listen,
            args.endpoint,
            region=args.region,
            unsigned=args.unsigned,
            max_attempts=args.max_attempts,
            metrics_listen=args.metrics_listen,
        )
    if args.command == "serve":
        from .dev.serve import serve as run

        run(args.port, args.dynamodb_port)
        return 0
    if args.command == "invoke":
        from .dev.invoke import main as invoke_main

        return invoke_main([args.function, args.event, "--template", args.template])
    from .runtime import load_default_connectors

    for connector in load_default_connectors().list_connectors():
        for category in connector.supported_task_categories:
            print(f"{category.name}\t{category.version}\t{connector.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

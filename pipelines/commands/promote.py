"""``leadcast promote`` and ``leadcast rollback``: move the ``champion`` alias by hand.

Automatic promotion (a challenger against the champion on the same held-out rows) runs
inside training/evaluation through :func:`models.registry.promote_if_better`; these two
commands are the analyst's manual controls. Both record a decision in the promotion
history. The registry is the one ``LEADCAST_HOME`` / ``MLFLOW_TRACKING_URI`` point at.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from models.registry import (
    KINDS,
    PromotionDecision,
    RegistryError,
    RegistrySettings,
    promote,
    rollback,
)

EXIT_OK, EXIT_USAGE = 0, 2

PROMOTE_EPILOG = """\
Examples:
  leadcast promote lead-conversion --version 3
  leadcast promote deal-close-time --version 7 --reason "v8 mis-ranks Q4 renewals" --json

Serving loads the champion at start: restart or reload the service to pick up the change.
Exit codes: 0 done (or the version already was champion); 2 unknown kind or version.
"""

ROLLBACK_EPILOG = """\
Examples:
  leadcast rollback lead-conversion
  leadcast rollback lead-conversion --reason "grades drifted after v5" --json

Rollback follows the promotion history: two rollbacks after promoting v1, v2, v3 return to
v1. Exit codes: 0 done; 2 no champion, no earlier champion, or the alias was moved outside
Leadcast (then use leadcast promote KIND --version N).
"""


def register(sub: Any) -> None:
    """Add the ``promote`` and ``rollback`` subcommands to the ``leadcast`` subparsers."""
    parser = sub.add_parser(
        "promote",
        help="make a registered model version the champion (the version that serves)",
        description=(
            "Point the 'champion' alias of a model kind at a registered version, recording "
            "the decision (who, when, from which version, why) in the promotion history."
        ),
        epilog=PROMOTE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=KINDS, help="model kind")
    parser.add_argument(
        "--version", required=True, type=int, metavar="N", help="registered version number"
    )
    parser.add_argument("--reason", default=None, help="why, for the promotion history")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    parser.set_defaults(func=execute_promote)

    parser = sub.add_parser(
        "rollback",
        help="move the champion back to the previous champion",
        description=(
            "Point the 'champion' alias back at the champion before the current one, "
            "following the promotion history, and record the rollback."
        ),
        epilog=ROLLBACK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=KINDS, help="model kind")
    parser.add_argument("--reason", default=None, help="why, for the promotion history")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    parser.set_defaults(func=execute_rollback)


def _report(decision: PromotionDecision, as_json: bool) -> None:
    if as_json:
        print(json.dumps(decision.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    print(decision.reason)
    if decision.promoted:
        print(f"{decision.kind}: champion is now v{decision.to_version}")


def execute_promote(args: argparse.Namespace) -> int:
    """Run ``leadcast promote``; 0 ok, 2 unknown kind/version."""
    if args.version < 1:
        print("leadcast promote: error: --version must be a positive number", file=sys.stderr)
        return EXIT_USAGE
    try:
        decision = promote(RegistrySettings.from_env(), args.kind, args.version, reason=args.reason)
    except RegistryError as exc:
        print(f"leadcast promote: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _report(decision, args.json)
    return EXIT_OK


def execute_rollback(args: argparse.Namespace) -> int:
    """Run ``leadcast rollback``; 0 ok, 2 nothing to roll back to."""
    try:
        decision = rollback(RegistrySettings.from_env(), args.kind, reason=args.reason)
    except RegistryError as exc:
        print(f"leadcast rollback: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _report(decision, args.json)
    return EXIT_OK

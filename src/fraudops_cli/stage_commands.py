"""``fraudops status`` and ``fraudops stage``: where each version stands in staged promotion.

Composition only: the stage record (:mod:`fraudops.registry.stage`) and the online gate
(``monitoring/online.py``) do the work.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fraudops.settings import Settings
from fraudops_cli.failure import fail

#: ``fraudops stage``'s actions: enter a live stage, or end one.
ACTIONS = ("shadow", "canary", "reject", "promote")


def _settings() -> Settings:
    from fraudops_cli.main import _require
    from fraudops_cli.main import _settings as read
    from fraudops_cli.quiet import registry_exists

    settings = read()
    _require(settings, registry_exists)
    return settings


def status() -> None:
    """Every version of the model: its aliases, the offline gate's verdict and its stage
    (shadow, canary, promoted, rejected, rolled_back), since when and why."""
    from fraudops import registry
    from fraudops.registry.stage import Stage

    settings = _settings()
    registry.configure_mlflow(settings)
    client = registry.client_for(settings)
    try:
        registry.require_model(client, settings.model_name)
    except registry.RegistryError as exc:
        raise fail(str(exc)) from None
    found = client.search_model_versions(f"name='{settings.model_name}'")
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(settings.model_name).aliases.items():
        aliases.setdefault(str(version), []).append(f"@{alias}")
    typer.echo(f"{settings.model_name}: {len(found)} version(s)")
    for version in sorted(found, key=lambda v: int(v.version), reverse=True):
        tags = dict(version.tags)
        stage = Stage.from_tags(tags)
        where = (
            "-"
            if stage is None
            else f"{stage.stage} since {stage.since:%Y-%m-%d %H:%M} UTC"
            + (f" (share {stage.share:.0%})" if stage.stage == "canary" else "")
            + (f" vs v{stage.champion_version}" if stage.champion_version else "")
        )
        names = " ".join(sorted(aliases.get(str(version.version), [])))
        typer.echo(
            f"  v{version.version:<4} {names:<24} gate {tags.get('gate', '-'):<9} stage {where}"
        )
        if stage is not None and stage.reason:
            typer.echo(f"        {stage.reason[:160]}")


def stage(
    version: Annotated[str, typer.Argument(help="The version to act on.")],
    action: Annotated[
        str,
        typer.Argument(
            help="shadow or canary: make it @challenger in that stage (a live challenger "
            "changes mode, keeping its evidence); reject: end its stage; promote: end it "
            "by moving @champion to it."
        ),
    ],
    share: Annotated[
        float | None,
        typer.Option(help="Canary: share of entities it decides for (FRAUDOPS_CANARY_SHARE)."),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, recorded with the stage.")] = "operator",
) -> None:
    """Move a version between stages by hand; the service follows at its next poll."""
    from fraudops import registry
    from fraudops.registry import stage as stages

    if action not in ACTIONS:
        raise fail(f"action {action!r}: one of {', '.join(ACTIONS)}")
    settings = _settings()
    registry.configure_mlflow(settings)
    client = registry.client_for(settings)
    why = f"operator: {reason}"
    try:
        if action in stages.LIVE_STAGES:
            entered = stages.enter(
                client,
                settings.model_name,
                version,
                action,
                reason=why,
                share=settings.canary_share if share is None else share,
            )
            typer.echo(f"v{version} @challenger in {entered.stage}")
            return
        outcome = stages.REJECTED if action == "reject" else stages.PROMOTED
        stages.conclude(client, settings.model_name, version, outcome, reason=why)
    except registry.RegistryError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"v{version} {outcome}")

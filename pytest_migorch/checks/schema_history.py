"""The schema model before each migration: a service's up files replayed in resolved order.

:func:`models_before` walks an order (``ProjectGraph.order_all(environment, [service])``, or a
service's migrations by version) and keeps a copy of the :class:`~pytest_migorch.checks.
schema_model.SchemaModel` as it stood before each migration, which
:func:`~pytest_migorch.checks.migration.check_migration` takes as ``model``. Every service in the
order starts from an empty schema of its own, which is what makes absence knowledge there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pytest_migorch.checks.schema_model import Effect, SchemaModel, replay
from pytest_migorch.model import Migration, MigrationFile, Service, schema_name
from pytest_migorch.sql.analysis import AnalysisCache, SqlAnalysis, analyse_sql
from pytest_migorch.sql.schema_facts import file_details

__all__ = ["models_before", "file_effects", "service_models", "read_migration_file"]

logger = logging.getLogger(__name__)


def file_effects(model: SchemaModel, analysis: SqlAnalysis, text: str,
                 schema: str) -> list[Effect]:
    """Replay one up file into ``model``; the effect of each statement, in order."""
    return replay(model, analysis.statements, schema,
                  file_details(text, len(analysis.statements)))


def read_migration_file(file: MigrationFile | None) -> str | None:
    if file is None:
        return None
    try:
        return file.read_text()
    except OSError as exc:  # discovery reports unreadable files
        logger.debug("cannot read %s: %s", file.path, exc)
        return None


def models_before(order: Iterable[Migration], cache: AnalysisCache | None = None
                  ) -> dict[tuple[str, int], SchemaModel]:
    """``migration.key`` -> a copy of the model as it stood before that migration."""
    model = SchemaModel()
    found: dict[tuple[str, int], SchemaModel] = {}
    for migration in order:
        schema = schema_name(migration.service)
        model.known_schemas.add(schema)
        found[migration.key] = model.copy()
        text = read_migration_file(migration.up)
        if text is None:
            model.exact = False
            continue
        file_effects(model, analyse_sql(text, cache), text, schema)
    return found


def service_models(service: Service, cache: AnalysisCache | None = None
                   ) -> dict[tuple[str, int], SchemaModel]:
    """The models before each of ``service``'s migrations, replayed in version order.

    Without a graph at hand (``migorch validate``, the plugin's static items) a service's own
    migrations by version are the order golang-migrate applies them in; an environment's extra
    migrations are replayed as if every environment had them."""
    return models_before((m for _, m in sorted(service.migrations.items())), cache)

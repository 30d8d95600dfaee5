"""Config as code: the YAML file layout (schema), `config_import` and `config_export`."""

from routing.config_io.exporter import config_export
from routing.config_io.importer import ConfigImportError, ImportReport, config_import

__all__ = ["ConfigImportError", "ImportReport", "config_export", "config_import"]

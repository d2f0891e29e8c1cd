"""Compatibility name for :mod:`gateway.core.schemas` (the config sources import this)."""

from gateway.core.schemas import (
                                  ROUTE,
                                  SCHEMAS,
                                  SERVICE,
                                  UPSTREAM,
                                  check,
                                  check_upstream,
                                  schema_error,
                                  validate,
)

__all__ = ["ROUTE", "SCHEMAS", "SERVICE", "UPSTREAM", "check", "check_upstream",
           "schema_error", "validate"]

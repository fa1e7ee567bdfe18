"""The payment connector this installation is configured with (settings), if any."""

from __future__ import annotations

from callvault.config import Settings
from callvault.errors import ConfigError, InvalidInputError, UnavailableError
from callvault.payments._connector import HttpPaymentConnector

CONNECTOR_NAME = "default"


def configured_connector(settings: Settings) -> HttpPaymentConnector:
    """The connector of ``CALLVAULT_PAYMENT_CONNECTOR_*``; UnavailableError when unset."""
    if settings.payment_connector_url is None or settings.payment_connector_secret is None:
        raise UnavailableError("no payment connector is configured")
    try:
        return HttpPaymentConnector(
            CONNECTOR_NAME,
            settings.payment_connector_url,
            secret=settings.payment_connector_secret,
            ca_file=settings.payment_connector_ca_file,
        )
    except (InvalidInputError, ValueError):
        raise ConfigError(
            "CALLVAULT_PAYMENT_CONNECTOR_URL must be an https:// URL without credentials",
            field="CALLVAULT_PAYMENT_CONNECTOR_URL",
        ) from None

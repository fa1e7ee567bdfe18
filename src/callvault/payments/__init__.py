"""Payments: the PAN tokenization vault (separate keys, separate store) and card hand-off.

- :class:`TokenVault` turns a card number heard in a call into a
  :class:`CardToken` (``[CARD tok_… ending 4242]`` plus digit count, Luhn
  result and brand); the number itself is sealed under the deployment vault's
  own keys in ``payment_tokens``, never under the call's.
- :meth:`TokenVault.detokenize_to_connector` is the one way a number leaves:
  to a :class:`PaymentConnector` (:class:`HttpPaymentConnector` over verified
  HTTPS), with a grant for ``payments:detokenize`` and a committed audit entry
  first. The caller gets the processor's reference, never the number.
- :class:`EphemeralCvv` holds a security code in memory for one hand-off and
  wipes it; it is never stored.
"""

from callvault.payments._card import (
    BRANDS,
    MAX_DIGITS,
    MIN_DIGITS,
    CardFacts,
    card_brand,
    card_facts,
    normalise_pan,
)
from callvault.payments._connector import (
    ConnectorRequest,
    ConnectorResult,
    HttpPaymentConnector,
    PaymentConnector,
    PaymentConnectorError,
)
from callvault.payments._cvv import CvvUnavailableError, EphemeralCvv
from callvault.payments._token import CardToken, Source, is_token_id
from callvault.payments._vault import (
    FINGERPRINT_PURPOSE,
    PAN_PURPOSE,
    VAULT_OWNER_KIND,
    TokenVault,
)

__all__ = [
    "BRANDS",
    "FINGERPRINT_PURPOSE",
    "MAX_DIGITS",
    "MIN_DIGITS",
    "PAN_PURPOSE",
    "VAULT_OWNER_KIND",
    "CardFacts",
    "CardToken",
    "ConnectorRequest",
    "ConnectorResult",
    "CvvUnavailableError",
    "EphemeralCvv",
    "HttpPaymentConnector",
    "PaymentConnector",
    "PaymentConnectorError",
    "Source",
    "TokenVault",
    "card_brand",
    "card_facts",
    "is_token_id",
    "normalise_pan",
]

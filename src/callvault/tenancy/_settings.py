"""The configuration a version holds: tenant, deployment and agent settings.

These models are the only way configuration enters the system, so a version
cannot be written in an invalid state. Unknown fields are refused.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

#: I-JSON (RFC 7493) / RFC 8785: the integers every JSON peer represents exactly.
_I_JSON_MAX_INT = 2**53 - 1


def _i_json(value: Any) -> Any:
    """Refuse numbers canonical JSON cannot carry (big integers, NaN, infinities)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, bool) or node is None or isinstance(node, str):
            continue
        if isinstance(node, int):
            if abs(node) > _I_JSON_MAX_INT:
                raise ValueError("integers must be within +/-(2^53 - 1)")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError("numbers must be finite")
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return value


#: A free-form JSON object that canonical JSON (RFC 8785) can serialise.
JsonObject = Annotated[dict[str, Any], AfterValidator(_i_json)]


class Region(StrEnum):
    EU_WEST_2 = "eu-west-2"
    EU_WEST_1 = "eu-west-1"
    EU_CENTRAL_1 = "eu-central-1"
    US_EAST_1 = "us-east-1"
    US_WEST_2 = "us-west-2"
    AP_SOUTHEAST_2 = "ap-southeast-2"
    CA_CENTRAL_1 = "ca-central-1"
    SA_EAST_1 = "sa-east-1"
    AP_NORTHEAST_1 = "ap-northeast-1"


Name = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
ToolName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantSettings(_Strict):
    name: Name


class Retention(_Strict):
    recordings_days: Annotated[StrictInt, Field(ge=1, le=3650)] = 90
    transcripts_days: Annotated[StrictInt, Field(ge=1, le=3650)] = 365


class DeploymentSettings(_Strict):
    name: Name
    region: Region = Region.EU_WEST_2
    retention: Retention = Retention()
    #: Which key provider holds this deployment's KEK (KMS ones in the
    #: deployment's own region). Fixed once the deployment exists.
    key_provider: Literal["local", "aws-kms", "gcp-kms", "pkcs11", "vault-transit"] = "local"
    #: The customer's own key at that provider (bring your own key): an AWS key
    #: ARN, a GCP CryptoKey name, an HSM key label or a transit key name.
    key_ref: (
        Annotated[StrictStr, Field(min_length=1, max_length=400, pattern=r"^[\x21-\x7e]+$")] | None
    ) = None


class KnowledgeDocument(_Strict):
    name: Name
    text: Annotated[StrictStr, Field(max_length=2_000_000)]


class ToolDefinition(_Strict):
    name: ToolName
    description: Annotated[StrictStr, Field(max_length=4000)] = ""
    #: JSON Schema of the tool's arguments.
    parameters: JsonObject = Field(default_factory=dict)


class AgentSettings(_Strict):
    name: Name
    prompt: Annotated[StrictStr, Field(max_length=200_000)] = ""
    documents: Annotated[list[KnowledgeDocument], Field(max_length=100)] = Field(
        default_factory=list
    )
    tools: Annotated[list[ToolDefinition], Field(max_length=64)] = Field(default_factory=list)

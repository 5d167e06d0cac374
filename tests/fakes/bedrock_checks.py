"""What the fake Bedrock runtime checks in a request before answering, as the service does:
a SigV4 signature recomputed with botocore from the known test credentials (or a Bedrock
API key as a bearer token), and a Converse body's shape (ValidationException messages as
Bedrock words them)."""
from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import re
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from services.router.providers.bedrock import payloads as p

_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
                   r"/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?Signature=(?P<signature>[0-9a-f]{64})$")
MAX_SKEW = datetime.timedelta(minutes=5)
KNOWN_BLOCKS = {"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint",
                "reasoningContent"}
CONVERSE_FIELDS = {"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
                   "additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
                   "requestMetadata", "performanceConfig", "serviceTier", "outputConfig"}


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def signature_problem(method: str, host_url: str, raw_path: str, query: str, headers: dict[str, str], body: bytes,
                      credentials: AwsCredentials, region: str) -> p.ErrorSpec | None:
    """None when the request is signed by `credentials` for `region` and service `bedrock`."""
    match = _AUTH.match(headers.get("authorization", ""))
    if match is None:
        return ("MissingAuthenticationTokenException", 403, "Missing Authentication Token")
    if match["key"] != credentials.access_key_id:
        return p.UNRECOGNIZED_CLIENT
    if credentials.session_token is not None and headers.get("x-amz-security-token") != credentials.session_token:
        return p.UNRECOGNIZED_CLIENT
    if match["region"] != region or match["service"] != "bedrock":
        return p.INVALID_SIGNATURE
    signed = match["signed"].split(";")
    stamp = headers.get("x-amz-date", "")
    if "host" not in signed or "x-amz-date" not in signed or not stamp.startswith(match["date"]):
        return p.INVALID_SIGNATURE
    try:
        when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return p.INVALID_SIGNATURE
    if abs(datetime.datetime.now(datetime.UTC) - when) > MAX_SKEW:
        return ("InvalidSignatureException", 403, "Signature expired")
    if any(name not in headers for name in signed):
        return p.INVALID_SIGNATURE
    url = host_url + raw_path + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in signed})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token),
                       "bedrock", region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return None if hmac.compare_digest(expected, match["signature"]) else p.INVALID_SIGNATURE


def converse_problem(body: Any, model: str) -> str | None:
    """A ValidationException message for a Converse body the service would refuse; None when it is fine."""
    if not isinstance(body, dict):
        return "Malformed input request, please reformat your input and try again."
    for field in body:
        if field not in CONVERSE_FIELDS:
            return (f"Malformed input request: extraneous key [{field}] is not permitted, please reformat your input "
                    "and try again.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "The model returned the following errors: messages: at least one message is required"
    for block in body.get("system") or ():
        if not isinstance(block, dict) or not (block.get("text") or "cachePoint" in block):
            return "The text field in the SystemContentBlock is blank. Add text to the text field, and try again."
    previous_uses: set[str] = set()
    has_tool_blocks = False
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            return ("A conversation must alternate between user and assistant roles. Make sure the conversation "
                    "alternates between user and assistant roles and try again.")
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return f"The content field in the Message object at messages.{index} is empty. Add a ContentBlock object " \
                   "to the content field and try again."
        uses: set[str] = set()
        for block in content:
            problem = _block_problem(block, index, previous_uses, uses)
            if problem is not None:
                return problem
            has_tool_blocks = has_tool_blocks or "toolUse" in block or "toolResult" in block
        previous_uses = uses
    if has_tool_blocks and not body.get("toolConfig"):
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    return _config_problem(body, model)


def _block_problem(block: Any, index: int, previous_uses: set[str], uses: set[str]) -> str | None:
    if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in KNOWN_BLOCKS:
        return f"Malformed input request: #/messages/{index}/content: a ContentBlock must hold exactly one known member"
    if "text" in block and not (isinstance(block["text"], str) and block["text"].strip()):
        return f"The text field in the ContentBlock object at messages.{index}.content is blank. Add text to the " \
               "text field, and try again."
    if "image" in block:
        image = block["image"]
        if image.get("format") not in ("png", "jpeg", "gif", "webp"):
            return f"Malformed input request: #/messages/{index}: image format is not one of png, jpeg, gif, webp"
        try:
            base64.b64decode((image.get("source") or {}).get("bytes") or "", validate=True)
        except (binascii.Error, ValueError):
            return f"Malformed input request: #/messages/{index}: image bytes are not valid base64"
    if "toolUse" in block:
        uses.add(str(block["toolUse"].get("toolUseId")))
        if not isinstance(block["toolUse"].get("input"), dict):
            return "The format of the value at toolUse.input is invalid: it must be a JSON object."
    if "toolResult" in block and block["toolResult"].get("toolUseId") not in previous_uses:
        return (f"The number of toolResult blocks at messages.{index}.content exceeds the number of toolUse blocks "
                "of previous turn.")
    return None


def _config_problem(body: dict[str, Any], model: str) -> str | None:
    inference = body.get("inferenceConfig") or {}
    temperature = inference.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "1 validation error detected: Value at 'inferenceConfig.temperature' failed to satisfy constraint: " \
               "Member must have value less than or equal to 1"
    choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
    if model.startswith(("meta.llama", "us.meta.llama")) and ("any" in choice or "tool" in choice):
        kind = "any" if "any" in choice else "tool"
        return f"This model doesn't support the toolConfig.toolChoice.{kind} field. Remove toolConfig.toolChoice.{kind} " \
               "and try again."
    for tool in (body.get("toolConfig") or {}).get("tools") or ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if not isinstance(spec, dict) or not spec.get("name") or "json" not in (spec.get("inputSchema") or {}):
            return "The value at toolConfig.tools must be a toolSpec with a name and an inputSchema.json"
    return None

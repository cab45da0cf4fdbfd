"""The OpenAPI 3.1 document of the HTTP intake, served at ``/openapi.json``.

Built in code next to the routes it describes, so a route and its description change together
(``tests/test_intake.py`` checks that every route is described).
"""

from __future__ import annotations

from typing import Any

from jobs.enqueue import STATES
from worker.jobstore import COUNTS

ERROR = {"$ref": "#/components/schemas/Error"}
JOB_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
BROADCAST_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "A broadcast job's id (acts on its open broadcasts) or a provider broadcast id",
    "schema": {"type": "string"},
}

SEND_FIELDS: dict[str, Any] = {
    "text": {"type": "string", "description": "Message; {0}, {1}... are the file's columns."},
    "from": {"type": "string", "description": "Short/long code to send from."},
    "region": {"type": "string", "description": "Country of national numbers (ISO, e.g. US)."},
    "phone_column": {"type": "string", "description": "Phone column: header name or 1-based."},
    "chunk_size": {"type": "integer", "minimum": 1, "maximum": 100000},
    "resend_unknown": {"type": "boolean", "default": False},
    "at": {
        "type": "string",
        "format": "date-time",
        "description": "Start the job then (no zone: SMSPIPE_TIMEZONE).",
    },
}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed request",
        401: "Missing or wrong bearer token",
        404: "No such job or object",
        409: "Not possible in the job's current state",
        413: "Upload larger than SMSPIPE_MAX_UPLOAD_MB",
        415: "Unsupported content type",
        422: "Invalid settings (the message names each field)",
        502: "The provider did not answer",
        503: "Redis is not reachable",
    }
    return {
        str(code): {
            "description": reasons[code],
            "content": {"application/json": {"schema": ERROR}},
        }
        for code in codes
    }


def _accepted(what: str) -> dict[str, Any]:
    return {
        "202": {
            "description": f"{what} accepted; the same file and settings give the same id.",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        }
    }


def _upload_body(extra: dict[str, Any]) -> dict[str, Any]:
    fields = {**SEND_FIELDS, **extra}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "text"],
                    "properties": {
                        "file": {"type": "string", "contentMediaType": "application/octet-stream"},
                        **fields,
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["key", "text"],
                    "additionalProperties": False,
                    "properties": {
                        "key": {"type": "string", "description": "A file already in the bucket."},
                        **fields,
                    },
                }
            },
        },
    }


def _control(action: str, description: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": description,
            "operationId": f"{action}Broadcast",
            "parameters": [BROADCAST_ID],
            "responses": {
                "200": {"description": "The broadcast job after the action", "content": _json()},
                **_errors(401, 404, 409, 502),
            },
        }
    }


def _json(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"application/json": {"schema": schema or {"type": "object"}}}


def document(version: str) -> dict[str, Any]:
    """The whole document; ``version`` is smspipe's."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "smspipe intake",
            "version": version,
            "description": "Start bulk SMS jobs and follow them. Every path except /healthz and "
            "/openapi.json needs `Authorization: Bearer <SMSPIPE_API_TOKEN>`.",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/sends": {
                "post": {
                    "summary": "Send one SMS to every valid number of a recipient file",
                    "operationId": "createSend",
                    "requestBody": _upload_body({}),
                    "responses": {**_accepted("Send job"), **_errors(400, 401, 404, 413, 415, 422)},
                }
            },
            "/v1/broadcasts": {
                "post": {
                    "summary": "Create a broadcast job from a recipient file",
                    "operationId": "createBroadcast",
                    "requestBody": _upload_body(
                        {"campaign": {"type": "string", "description": "Campaign name."}}
                    ),
                    "responses": {
                        **_accepted("Broadcast job"),
                        **_errors(400, 401, 404, 413, 415, 422),
                    },
                }
            },
            "/v1/jobs/{id}": {
                "get": {
                    "summary": "A job's state and counts (the JSON of `smspipe status --json`)",
                    "operationId": "getJob",
                    "parameters": [JOB_ID],
                    "responses": {
                        "200": {
                            "description": "The job",
                            "content": _json({"$ref": "#/components/schemas/Job"}),
                        },
                        **_errors(401, 404),
                    },
                }
            },
            "/v1/jobs/{id}/results": {
                "get": {
                    "summary": "The results file: one line per input row",
                    "operationId": "getJobResults",
                    "parameters": [JOB_ID],
                    "responses": {
                        "200": {
                            "description": "CSV: row, input, msisdn, state, reason, message_id, "
                            "provider_status, segments, chunk",
                            "content": {"text/csv": {"schema": {"type": "string"}}},
                        },
                        **_errors(401, 404, 409),
                    },
                }
            },
            "/v1/broadcasts/{id}/suspend": _control("suspend", "Pause a broadcast job"),
            "/v1/broadcasts/{id}/resume": _control("resume", "Resume a suspended broadcast job"),
            "/v1/broadcasts/{id}/stop": _control("stop", "Stop a broadcast job for good"),
            "/v1/broadcasts/{id}": {
                "delete": {
                    "summary": "Delete a broadcast job's broadcasts",
                    "operationId": "deleteBroadcast",
                    "parameters": [BROADCAST_ID],
                    "responses": {
                        "200": {
                            "description": "The broadcast job after deleting",
                            "content": _json(),
                        },
                        **_errors(401, 404, 409, 502),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: the intake answers and Redis is reachable",
                    "operationId": "health",
                    "security": [],
                    "responses": {"200": {"description": "OK", "content": _json()}, **_errors(503)},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(401),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": _json()}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Accepted": {
                    "type": "object",
                    "required": ["job"],
                    "properties": {
                        "job": {"type": "string"},
                        "status_url": {"type": "string"},
                        "results_url": {"type": "string"},
                    },
                },
                "Job": {
                    "type": "object",
                    "required": ["job", "state", "counts"],
                    "properties": {
                        "job": {"type": "string"},
                        "kind": {"enum": ["send", "broadcast"]},
                        "name": {"type": ["string", "null"]},
                        "state": {"enum": list(STATES)},
                        "counts": {
                            "type": "object",
                            "properties": {k: {"type": "integer"} for k in COUNTS},
                        },
                        "rows": {"type": "integer"},
                        "results": {"type": ["string", "null"]},
                        "error": {"type": ["string", "null"]},
                    },
                },
            },
        },
    }

"""Errors the batch client raises; each carries the exit code the command returns."""

from ..errors import TempoError


class ClientError(TempoError):
    """A problem the user can fix; the message names it and the fix."""

    exit_code = 2


class WorkflowError(ClientError):
    """The workflow file is not JSON, not a workflow, or uses nodes the server lacks."""


class ServerUnreachable(ClientError):
    exit_code = 3


class ValidationFailed(ClientError):
    """The server refused a prompt (its ``node_errors``), already formatted for people."""


class JobFailed(ClientError):
    """A queued job failed while running on the server."""

    exit_code = 1

"""Dependencies the routes share."""

from typing import Annotated

from fastapi import Depends, Request

from xero_sandbox.gateway import CallContext, call_context
from xero_sandbox.state import Sandbox


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(sandbox_of)]
CallDep = Annotated[CallContext, Depends(call_context)]
"""The caller and organisation of an Accounting or Bank Feeds API call."""

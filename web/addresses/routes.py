"""`/addresses`: the caller's own shipping addresses (another user's address is 404)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from models.accounts import addresses
from models.tables import User
from web.addresses.render import address_json
from web.addresses.schemas import AddressIn, AddressListOut, AddressOut, AddressPatch
from web.api import Registry, run

api = Registry()
TAGS = ["addresses"]


@api.route(
    "GET",
    "/addresses",
    summary="The caller's addresses, the default first",
    tags=TAGS,
    response=AddressListOut,
    auth="user",
)
async def list_addresses(request: Request, user: User) -> dict[str, Any]:
    return {"items": [address_json(a) for a in await run(addresses.list_addresses, user.id)]}


@api.route(
    "POST",
    "/addresses",
    summary="Add an address (is_default: true replaces the previous default)",
    tags=TAGS,
    body=AddressIn,
    response=AddressOut,
    status=201,
    auth="user",
)
async def create_address(request: Request, body: AddressIn, user: User) -> dict[str, Any]:
    return address_json(await run(addresses.create_address, user.id, body.model_dump()))


@api.route(
    "PATCH",
    "/addresses/{address_id:int}",
    summary="Change an address",
    tags=TAGS,
    body=AddressPatch,
    response=AddressOut,
    auth="user",
    errors=["address_not_found"],
)
async def update_address(request: Request, address_id: int, body: AddressPatch, user: User) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return address_json(await run(addresses.update_address, user.id, address_id, changes))


@api.route(
    "DELETE",
    "/addresses/{address_id:int}",
    summary="Delete an address",
    tags=TAGS,
    status=204,
    auth="user",
    errors=["address_not_found"],
)
async def delete_address(request: Request, address_id: int, user: User) -> Response:
    await run(addresses.delete_address, user.id, address_id)
    return Response(status_code=204)

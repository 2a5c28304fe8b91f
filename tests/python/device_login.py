"""A device login with requests-oauth2client, a third-party OAuth client: it discovers the
service from its RFC 8414 metadata, asks for a device code, and polls with its own job.

    python device_login.py SERVICE_BASE_URL CLIENT_ID

Prints one JSON line with what a person needs (user code, verification URI), then, once the
login is done, one JSON line with the token and the pair a refresh gave. Exits non-zero with the
error otherwise.
"""

import json
import sys

import requests
from requests_oauth2client import DeviceAuthorizationPollingJob, OAuth2Client

base, client_id = sys.argv[1].rstrip("/"), sys.argv[2]
metadata = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
client = OAuth2Client.from_discovery_document(
    metadata,
    issuer=base,
    client_id=client_id,
    # The library's discovery reads no device endpoint (1.8); hand it the one the metadata lists.
    device_authorization_endpoint=metadata["device_authorization_endpoint"],
    testing=True,  # the service runs on plain http://127.0.0.1 in the tests
)
authorization = client.authorize_device()
print(
    json.dumps(
        {
            "user_code": authorization.user_code,
            "verification_uri": authorization.verification_uri,
            "verification_uri_complete": authorization.verification_uri_complete,
        }
    ),
    flush=True,
)
job = DeviceAuthorizationPollingJob(client, authorization)
token = None
while token is None:
    token = job()
refreshed = client.refresh_token(token)  # a new pair, with no secret on this side
print(
    json.dumps(
        {
            "access_token": token.access_token,
            "refresh_token": token.refresh_token,
            "refreshed_access_token": refreshed.access_token,
            "refreshed_refresh_token": refreshed.refresh_token,
        }
    ),
    flush=True,
)

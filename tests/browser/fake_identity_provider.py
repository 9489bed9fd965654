"""A minimal OpenID Connect provider on localhost, so the browser tests sign in through
Streamlit's real `st.login` flow (authorization code, signed ID token, JWKS) without a network.

It signs in whoever `next_email` names, with no password: a test sets it, then clicks Sign in.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID, CLIENT_SECRET = "itscm-tests", "not-a-secret"


class FakeIdentityProvider:
    def __init__(self) -> None:
        self.next_email = "someone@example.com"
        self._key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self._codes: dict[str, dict] = {}    # code -> {email, nonce}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the endpoints --------------------------------------------------------------------------

    def _metadata(self) -> dict:
        return {
            "issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "userinfo_endpoint": f"{self.url}/userinfo", "response_types_supported": ["code"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def _authorize(self, query: dict) -> str:
        code = secrets.token_urlsafe(16)
        self._codes[code] = {"email": self.next_email, "nonce": query.get("nonce")}
        return query["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": query.get("state", "")})

    def _token(self, form: dict) -> dict:
        grant = self._codes.pop(form.get("code", ""))
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "sub": grant["email"], "email": grant["email"],
                  "email_verified": True, "name": grant["email"].split("@")[0].title(), "iat": now,
                  "exp": now + 600, "nonce": grant["nonce"]}
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self._key)
        return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 600,
                "id_token": id_token}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:   # quiet
                pass

            def _json(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/.well-known/openid-configuration":
                    self._json(provider._metadata())
                elif path == "/jwks":
                    self._json({"keys": [provider._key.as_dict(private=False)]})
                elif path == "/authorize":
                    self.send_response(302)
                    self.send_header("Location", provider._authorize(dict(urllib.parse.parse_qsl(query))))
                    self.end_headers()
                else:
                    self._json({"error": "not_found"}, 404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                if self.path.startswith("/token"):
                    credentials = self.headers.get("Authorization", "")
                    if credentials.startswith("Basic "):
                        client_id = base64.b64decode(credentials[6:]).decode().partition(":")[0]
                    else:
                        client_id = form.get("client_id")
                    if client_id != CLIENT_ID or form.get("code") not in provider._codes:
                        self._json({"error": "invalid_grant"}, 400)
                    else:
                        self._json(provider._token(form))
                else:
                    self._json({"error": "not_found"}, 404)

        return Handler

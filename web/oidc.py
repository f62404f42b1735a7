"""Sign-in with an OpenID Connect identity provider (OIDC_ISSUER), through Authlib's Flask client.

The authorization-code flow with PKCE: `/login/oidc` sends the person to the provider with a fresh
`state`, `nonce` and code challenge (kept in the session); `/login/oidc/callback` checks the
`state`, exchanges the code (with the verifier), and verifies the ID token (signature by the
provider's published keys, issuer, audience, expiry, nonce) before `accounts.sign_in_with_provider`
finds or makes the account. Every refusal is a 401 page saying why, never a 500.
"""

from __future__ import annotations

import logging

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, redirect, request, session, url_for
from flask_login import login_user
from joserfc.errors import JoseError

import accounts
from web.auth import safe_next

bp = Blueprint("oidc", __name__)
log = logging.getLogger(__name__)
PROVIDER = "company"
LEEWAY_SECONDS = 60  # clock difference tolerated between the provider and the app


def init_app(app: Flask) -> None:
    """Register the identity provider when OIDC_ISSUER is set (its metadata is read at the first sign-in)."""
    issuer = app.config.get("OIDC_ISSUER")
    if not issuer:
        return
    oauth = OAuth(app)
    oauth.register(
        PROVIDER,
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config.get("OIDC_CLIENT_SECRET") or None,
        server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": app.config["OIDC_SCOPES"], "code_challenge_method": "S256", "timeout": 10},
    )
    app.extensions["oidc_client"] = oauth.create_client(PROVIDER)


def enabled() -> bool:
    """Is sign-in with an identity provider configured?"""
    return "oidc_client" in current_app.extensions


def _client():
    if not enabled():
        abort(404, "Sign-in with an identity provider is not configured (OIDC_ISSUER).")
    return current_app.extensions["oidc_client"]


def _refuse(reason: str, detail: object = "") -> None:
    log.warning("OIDC sign-in refused: %s %s", reason, detail)
    accounts.provider_sign_in_failed(reason)
    abort(401, f"Sign-in with {current_app.config['OIDC_NAME']} failed: {reason} Try again from the sign-in page.")


@bp.route("/login/oidc")
def start():
    """Send the person to the identity provider (state, nonce and PKCE kept in the session)."""
    client = _client()
    session["oidc_next"] = safe_next(request.args.get("next"))
    try:
        return client.authorize_redirect(url_for("oidc.callback", _external=True))
    except (requests.RequestException, AuthlibBaseError, ValueError) as exc:
        abort(503, f"The identity provider cannot be reached ({type(exc).__name__}); try again later.")


@bp.route("/login/oidc/callback")
def callback():
    """Back from the identity provider: check state, exchange the code, verify the ID token, sign in."""
    client = _client()
    if "error" in request.args:
        _refuse(f"the identity provider answered {request.args.get('error')!r}.", request.args.get("error_description"))
    try:
        token = client.authorize_access_token(claims_options=_claims_options(client), leeway=LEEWAY_SECONDS)
    except AuthlibBaseError as exc:
        _refuse(_reason(exc), exc)
    except JoseError as exc:
        _refuse("the identity token did not verify (signature, issuer, audience, expiry or nonce).", exc)
    except requests.RequestException as exc:
        abort(503, f"The identity provider cannot be reached ({type(exc).__name__}); try again later.")
    claims = dict(token.get("userinfo") or {})
    if not claims:
        _refuse("the identity provider sent no ID token.")
    user = _sign_in(client, token, claims)
    target = session.pop("oidc_next", None)
    session.clear()  # a fresh session: a new CSRF token, nothing kept from before sign-in
    login_user(user)
    return redirect(safe_next(target))


def _claims_options(client) -> dict:
    """The ID token's claims Authlib must check besides signature, expiry and nonce: the issuer
    the discovery document names, and this app as the audience."""
    metadata = client.load_server_metadata()
    return {
        "iss": {"essential": True, "value": metadata.get("issuer")},
        "aud": {"essential": True, "value": current_app.config["OIDC_CLIENT_ID"]},
        "exp": {"essential": True},
    }


def _reason(exc: AuthlibBaseError) -> str:
    """Words for what Authlib refused."""
    error = getattr(exc, "error", "") or ""
    if error == "mismatching_state":
        return "the answer does not belong to a sign-in started here (state mismatch)."
    if error == "invalid_grant":
        return "the sign-in code was refused (already used, expired or not ours)."
    if error in ("invalid_claim", "missing_claim", "expired_token", "invalid_token"):
        return f"the identity token did not verify ({exc.description or error})."
    return f"the identity provider refused ({error or type(exc).__name__})."


def _sign_in(client, token: dict, claims: dict):
    """The account of the verified claims (userinfo fills in what the ID token left out)."""
    config = current_app.config
    group_claim = config["OIDC_GROUPS_CLAIM"]
    if not (claims.get("preferred_username") or claims.get("email")) or group_claim not in claims:
        try:
            extra = client.userinfo(token=token)
        except (AuthlibBaseError, requests.RequestException):
            extra = {}
        if extra.get("sub") == claims.get("sub"):
            claims = {**extra, **claims}
    groups = claims.get(group_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    try:
        return accounts.sign_in_with_provider(
            str(claims["sub"]),
            str(claims.get("preferred_username") or claims.get("email") or ""),
            claims.get("email") if isinstance(claims.get("email"), str) else None,
            [str(g) for g in groups],
        )
    except accounts.SignInRefused as exc:
        abort(403, str(exc))

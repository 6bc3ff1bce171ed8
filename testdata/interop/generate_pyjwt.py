#!/usr/bin/env python3
"""Writes pyjwt_writs.json: writs made by PyJWT, and what writ's verifier must say of each.

Run from the repository root (see README.md for the versions used):

    python3 testdata/interop/generate_pyjwt.py

Everything is fixed (Ed25519 seeds, jti bytes, times), and Ed25519 and HMAC signatures are
deterministic, so running it again rewrites the same file byte for byte.
"""

import base64
import hashlib
import json
import os

import cryptography
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "pyjwt_writs.json")

ISSUER = "https://authority.example"
AUDIENCE = "gate-1"
ACTION = "exec"
RESOURCE = "/usr/bin/git"
NOW = 1_800_000_000
WRIT_TYP = "writ+jwt"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def seed(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def key_from_seed(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed(label))


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def thumbprint(public: bytes) -> str:
    """RFC 7638 thumbprint of an Ed25519 JWK: required members, sorted, no whitespace."""
    members = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": b64u(public)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return b64u(hashlib.sha256(members.encode()).digest())


def args_sha256(args) -> str:
    # Equals RFC 8785 canonical JSON for these args (ASCII keys, strings, small integers).
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def header_of(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


ISSUER_KEY = key_from_seed("writ interop: pyjwt issuer")
OTHER_KEY = key_from_seed("writ interop: pyjwt attacker")
ISSUER_PUBLIC = raw_public(ISSUER_KEY)
KID = thumbprint(ISSUER_PUBLIC)
OTHER_KID = thumbprint(raw_public(OTHER_KEY))
WRIT_HEADERS = {"typ": WRIT_TYP, "kid": KID}

ARGS = {"argv": ["git", "status", "--short"], "cwd": "/work", "env": {"PATH": "/usr/bin"}, "timeout": 30}
OTHER_ARGS = {"argv": ["git", "push", "--force"], "cwd": "/work", "env": {"PATH": "/usr/bin"}, "timeout": 30}


def claims(**overrides) -> dict:
    c = {
        "iss": ISSUER,
        "sub": "build-agent",
        "aud": AUDIENCE,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 60,
        "jti": b64u(bytes(range(16))),
        "scope": {"action": ACTION, "resource": RESOURCE, "args_sha256": args_sha256(ARGS)},
        "pol": {"digest": hashlib.sha256(b"policy set v1").hexdigest(), "ids": ["allow-git"]},
        "uses": 1,
    }
    c.update(overrides)
    return c


def eddsa(payload: dict, key=ISSUER_KEY, headers=None) -> str:
    token = jwt.encode(payload, key, algorithm="EdDSA", headers=headers or WRIT_HEADERS)
    header = header_of(token)
    if set(header) != {"alg", "typ", "kid"} and headers is None:
        raise SystemExit(f"PyJWT emitted unexpected header parameters: {header}")
    return token


def expect(args=ARGS, audience=AUDIENCE, now=NOW) -> dict:
    return {"audience": audience, "action": ACTION, "resource": RESOURCE, "args": args, "now": now}


def case(description, writ, decision, code=None, **expect_overrides) -> dict:
    return {
        "description": description,
        "writ": writ,
        "expect": expect(**expect_overrides),
        "decision": decision,
        "code": code,
    }


def main() -> None:
    valid = eddsa(claims())

    # alg confusion: HS256 keyed with the issuer's public key bytes, which an attacker knows.
    hs256 = jwt.encode(claims(), ISSUER_PUBLIC, algorithm="HS256", headers=WRIT_HEADERS)
    assert header_of(hs256)["alg"] == "HS256"

    # alg none: PyJWT makes it when asked with no key (an empty signature part).
    none = jwt.encode(claims(), None, algorithm="none", headers=WRIT_HEADERS)
    assert none.endswith(".") and header_of(none)["alg"] == "none"

    # A different key, claiming the trusted key's kid.
    forged = eddsa(claims(), key=OTHER_KEY)

    # A different key under its own kid: not in the key set.
    untrusted = eddsa(claims(), key=OTHER_KEY, headers={"typ": WRIT_TYP, "kid": OTHER_KID})

    # PyJWT's default header ({"alg":"EdDSA","typ":"JWT"}): not a writ.
    plain_jwt = jwt.encode(claims(), ISSUER_KEY, algorithm="EdDSA")
    assert header_of(plain_jwt) == {"alg": "EdDSA", "typ": "JWT"}

    # A claim writ does not define, correctly signed.
    extra_claim = eddsa(claims(role="admin"))

    cases = [
        case("valid writ signed by PyJWT (EdDSA)", valid, "permit"),
        case(
            "alg confusion: HS256 with the issuer's Ed25519 public key as HMAC secret",
            hs256,
            "deny",
            "unsupported_algorithm",
        ),
        case("alg none, unsigned", none, "deny", "unsupported_algorithm"),
        case(
            "valid writ presented for other arguments",
            valid,
            "deny",
            "scope_mismatch",
            args=OTHER_ARGS,
        ),
        case(
            "signed by another Ed25519 key under the trusted kid",
            forged,
            "deny",
            "invalid_signature",
        ),
        case("signed by an untrusted key under its own kid", untrusted, "deny", "unknown_key"),
        case("valid writ presented to another gate", valid, "deny", "audience_mismatch", audience="gate-2"),
        case("valid writ presented after exp", valid, "deny", "expired", now=NOW + 3600),
        case("PyJWT default header typ JWT and no kid", plain_jwt, "deny", "malformed"),
        case("unknown claim `role`", extra_claim, "deny", "malformed"),
    ]

    doc = {
        "generator": f"testdata/interop/generate_pyjwt.py (PyJWT {jwt.__version__}, cryptography {cryptography.__version__})",
        "issuer": ISSUER,
        "jwks": {
            "keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": b64u(ISSUER_PUBLIC), "kid": KID, "alg": "EdDSA", "use": "sig"}
            ]
        },
        "cases": cases,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUT)}; header of the valid writ: {header_of(valid)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks with PyJWT that writ_core_writ.json (a writ made by writ_core::sign) verifies.

Run from the repository root:

    python3 testdata/interop/verify_with_pyjwt.py

The writ's times are fixed (the file is reproducible), so PyJWT's clock checks are switched
off and the times are checked here against the fixture's `now` instead.
"""

import base64
import hashlib
import json
import os
import sys

import jwt

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    with open(os.path.join(HERE, "writ_core_writ.json"), encoding="utf-8") as f:
        doc = json.load(f)
    writ, expect = doc["writ"], doc["expect"]

    header = jwt.get_unverified_header(writ)
    assert set(header) == {"alg", "typ", "kid"}, header
    assert header["alg"] == "EdDSA" and header["typ"] == "writ+jwt", header
    jwks = jwt.PyJWKSet.from_dict(doc["jwks"])
    key = jwks[header["kid"]]

    claims = jwt.decode(
        writ,
        key,
        algorithms=["EdDSA"],
        audience=expect["audience"],
        issuer=doc["issuer"],
        options={
            "require": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"],
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
        },
    )
    assert claims == doc["claims"], (claims, doc["claims"])
    assert claims["nbf"] <= expect["now"] < claims["exp"]
    canonical = json.dumps(expect["args"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert claims["scope"]["args_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()

    # A flipped signature bit must fail.
    head, payload, sig = writ.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[0] ^= 1
    tampered = ".".join([head, payload, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])
    try:
        jwt.decode(
            tampered,
            key,
            algorithms=["EdDSA"],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        pass
    else:
        raise AssertionError("PyJWT accepted a tampered writ")

    print(f"PyJWT {jwt.__version__} verified the writ_core writ (kid {header['kid']}) and refused a tampered copy")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Verifies a writ from a running `writ serve` with PyJWT, using only the JWKS it serves.

    python3 verify_served_writ.py WRIT_FILE JWKS_FILE ISSUER AUDIENCE

Prints the verified claims as JSON on success; exits non-zero on any failure. PyJWT checks
the signature, `exp`, `nbf`, `iat`, `iss` and `aud`.
"""

import json
import sys

import jwt


def main() -> int:
    writ_file, jwks_file, issuer, audience = sys.argv[1:5]
    with open(writ_file, encoding="utf-8") as f:
        writ = f.read().strip()
    with open(jwks_file, encoding="utf-8") as f:
        jwks = jwt.PyJWKSet.from_json(f.read())
    header = jwt.get_unverified_header(writ)
    if header.get("alg") != "EdDSA" or header.get("typ") != "writ+jwt":
        print(f"unexpected header {header}", file=sys.stderr)
        return 1
    key = jwks[header["kid"]]
    claims = jwt.decode(writ, key, algorithms=["EdDSA"], issuer=issuer, audience=audience, leeway=5)
    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

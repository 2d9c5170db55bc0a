"""Authorization: who is calling, and what their token lets them see and change.

::

    tokens       bearer JWT validation (trusted issuers, algorithms, iss/aud/exp/nbf)
    jwks         key sets cached per issuer, refreshed on an unknown kid at a bounded rate
    scopes       SMART v1/v2 scope strings -> Scope
    access       Access: allows / alternatives / restrictions; the patient compartment
    reach        a token's restrictions as search criteria, for every match of records
    records      one record against a token's criteria; WriteGuard, the write hook enforcing it
    server       the built-in token endpoint (client_credentials) and token introspection
    client_auth  how a client proves who it is (private_key_jwt, client secret basic/post)
    grants       the scopes a token gets: those asked for that the client is registered for
    oauth_errors the RFC 6749 error answers
    clients      registered clients and their credentials (scrypt-hashed secrets)
    keys         the built-in issuer's signing keys (database or key file), rotation, JWKS
    setup        the services one app instance runs, built from Settings
    commands     ``keyworker clients …`` and ``keyworker keys rotate``
"""

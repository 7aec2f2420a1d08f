"""Schemathesis hooks for scripts/api-fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

The pass runs with one broad credential, a service principal holding admin, revealer,
data_officer and auditor. Schemathesis reuses values it saw in earlier responses (for example
the ids that GET /v1/principals lists) as path parameters, so without a guard it may rotate its
own API key with a grace of 0 seconds, or give it an expiry a second away, and every request
after that would be a 401 that tests nothing. The vault already refuses a principal disabling
itself or restricting itself out of the very request; these two are legitimate operations, so
the guard is here: a request that would change a principal named in TIJORI_FUZZ_PROTECTED (a
comma-separated list of ids) is sent to an id that does not exist instead, and is answered 404,
which the document allows.
"""

import os

import schemathesis

PROTECTED = {p for p in os.environ.get("TIJORI_FUZZ_PROTECTED", "").split(",") if p}
STAND_IN = "prn_protected_from_the_fuzzer"


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if not path.startswith("/v1/principals/{id}/"):
        return
    params = case.path_parameters or {}
    if str(params.get("id")) in PROTECTED:
        case.path_parameters = {**params, "id": STAND_IN}

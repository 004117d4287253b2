"""Run scim2-tester against a running SCIM server, yours or one of these.

    SCIM_TOKEN=... python -m integrations.check_live [http://127.0.0.1:8000/scim/v2]

It prints the checks that did not succeed, then a count, and exits 1 unless
every check succeeded.
"""

import os
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status
from scim2_tester import check_server


def main(url: str) -> int:
    # --8<-- [start:check-live]
    with httpx2.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {os.environ['SCIM_TOKEN']}"},
    ) as http:
        results = check_server(SyncSCIMClient(http))

    for result in results:
        if result.status != Status.SUCCESS:
            print(result.status.name, result.title, result.reason)
    passed = sum(result.status == Status.SUCCESS for result in results)
    print(f"{passed}/{len(results)} checks passed")
    # --8<-- [end:check-live]
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(
        main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/scim/v2")
    )

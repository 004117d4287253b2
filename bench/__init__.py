"""`make bench`: throughput of the three integrations against scim2-server."""

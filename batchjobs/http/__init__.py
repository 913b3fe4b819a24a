"""The hardened outbound HTTP client: one URL parse for the check and the connection, the SSRF
guard with address pinning, the response size cap and the redirect policy (DESIGN.md §4.9)."""

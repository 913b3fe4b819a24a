"""The hardened outbound HTTP client: one URL parse for the check and the connection, the SSRF
guard with address pinning, the response size cap and the redirect policy (DESIGN.md §4.9).

guard.py decides which destinations may be called (blocked ranges, the allowlist); client.py
makes the call (the pinned connection, the deadline, the size cap, redirects). The URL is read
by batchjobs.rules.url. Nothing here imports above batchjobs.models.
"""
